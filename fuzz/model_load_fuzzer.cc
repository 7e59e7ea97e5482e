// libFuzzer target: ONNX ingestion. Any bytes go through what an upload runs before ONNX Runtime
// sees the model (parse, canonical names, topological order, tensor checks, libonnx's checker,
// shape inference, layers, weight statistics, the activation budget) and must come back as a
// model or a status, never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>

#include "model/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  squeeze::model::AnalyzeOptions options;
  options.threads = 1;
  options.max_activation_bytes = int64_t{256} << 20;  // as a server would, well inside -rss_limit_mb
  absl::StatusOr<squeeze::model::LoadedModel> loaded =
      squeeze::model::LoadModel(absl::string_view(reinterpret_cast<const char*>(data), size), options);
  if (loaded.ok() && loaded->analysis.layers.size() > 1u << 20) __builtin_trap();  // not a model this small makes
  return 0;
}
