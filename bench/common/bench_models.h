// The real models the benchmarks measure by default, and `--model LABEL:FILE[:INPUT=SHAPE]`.
#ifndef SQUEEZE_BENCH_COMMON_BENCH_MODELS_H_
#define SQUEEZE_BENCH_COMMON_BENCH_MODELS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/loader.h"
#include "runtime/shape_probe.h"

namespace squeeze::bench {

struct ModelSpec {
  std::string label, file, input_shape;  // input_shape "" for a model whose shapes are all fixed
};

// Six real models of four families, installed by deploy/install-deps.sh from npm packages into
// `dir` (.cache/models/).
inline std::vector<ModelSpec> DefaultModels(const std::string& dir) {
  return {{"det", dir + "ch_PP-OCRv4_det_infer.onnx", "x=1,3,640,640"},
          {"cls", dir + "ch_ppocr_mobile_v2.0_cls_infer.onnx", "x=1,3,48,192"},
          {"rec", dir + "bench/ppocrv4_rec.onnx", "x=1,3,48,320"},
          {"ultraface", dir + "bench/ultraface_rfb320_fr_detect.onnx", ""},
          {"liveness", dir + "bench/face_liveness_cls.onnx", ""},
          {"oww-embedding", dir + "bench/oww_embedding.onnx", "input_1=1,76,32,1"}};
}

// "label:file[:name=d0,d1,...]".
inline absl::StatusOr<ModelSpec> ParseModelSpec(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits(':', 2));
  if (parts.size() < 2 || parts[0].empty() || parts[1].empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--model ", text, ": expected LABEL:FILE[:INPUT=SHAPE]"));
  }
  return ModelSpec{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
}

// How the benchmarks analyse a model at `input_shapes` ("NAME=D0,D1,...", each input at most
// once): with ONNX Runtime's shape probe for what libonnx cannot infer. InvalidArgument for a
// shape that does not parse.
inline absl::StatusOr<model::AnalyzeOptions> AnalyzeOptionsFor(const std::vector<std::string>& input_shapes) {
  model::AnalyzeOptions analyze;
  for (const std::string& text : input_shapes) {
    auto shape = model::ParseInputShape(text);
    if (!shape.ok()) return shape.status();
    analyze.input_shapes[shape->first] = shape->second;
  }
  analyze.shape_probe = runtime::OnnxRuntimeShapeProbe();
  return analyze;
}

// The same for `spec`'s model at its input shape.
inline absl::StatusOr<model::AnalyzeOptions> AnalyzeOptionsFor(const ModelSpec& spec) {
  return AnalyzeOptionsFor(spec.input_shape.empty() ? std::vector<std::string>{}
                                                    : std::vector<std::string>{spec.input_shape});
}

}  // namespace squeeze::bench

#endif  // SQUEEZE_BENCH_COMMON_BENCH_MODELS_H_
