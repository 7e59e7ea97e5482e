// The rows each MatMul layer reads on the calibration inputs: what GPTQ weighs a layer's rounding
// errors by (model/rounding.h), for the predictor's distortions and the exporter's codes alike.
//
// Thread safe: every call builds its own session.
#ifndef SQUEEZE_RUNTIME_LAYER_INPUTS_H_
#define SQUEEZE_RUNTIME_LAYER_INPUTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/analysis.h"
#include "model/loader.h"
#include "model/rounding.h"
#include "runtime/calibration.h"

namespace squeeze::runtime {

struct LayerInputOptions {
  int threads = 1;  // ONNX Runtime intra-op threads
  // What the rows of all layers may hold together, and the most rows one value keeps: beyond
  // either, every n-th row is kept (the same rows on every run).
  int64_t max_bytes = int64_t{256} << 20;
  int64_t max_rows = 2048;
};

// The main-graph MatMul layers of `analysis` whose weight is a [K, N] matrix: the layers
// WritesMatMulNBits can write, whose rows CollectLayerInputs collects.
std::vector<std::string> RowReadingLayers(const model::Analysis& analysis);

// The rows of X each of `layers` (names from RowReadingLayers of model.analysis; others are skipped) reads on every
// sample of `calibration`: its input 0 flattened to [.., K]. Layers reading one value share its
// rows. InvalidArgument for an empty calibration set; what ONNX Runtime refuses comes back with its
// message.
absl::StatusOr<model::LayerInputs> CollectLayerInputs(const model::LoadedModel& model,
                                                      const std::vector<std::string>& layers,
                                                      const CalibrationSet& calibration,
                                                      const LayerInputOptions& options = {});

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_LAYER_INPUTS_H_
