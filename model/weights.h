// Reading the real weights of a loaded model's compressible layers, for the weight math.
#ifndef SQUEEZE_MODEL_WEIGHTS_H_
#define SQUEEZE_MODEL_WEIGHTS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "model/loader.h"
#include "model/weight_math.h"

namespace squeeze::model {

// Every compressible layer's weight as float rows by output channel (fp16/bf16 decoded), in
// Analysis::layers order. Internal when the model no longer holds a layer the analysis names.
absl::StatusOr<std::vector<ChannelMatrix>> ReadLayerWeights(const LoadedModel& model);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_WEIGHTS_H_
