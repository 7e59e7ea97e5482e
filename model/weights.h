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

// A float tensor's values as float (fp32, fp16, bf16, fp64 storage; raw or typed data).
// InvalidArgument naming `name` when its data does not fill its shape or it is not a float type.
absl::StatusOr<std::vector<float>> DecodeFloatTensor(const onnx::TensorProto& tensor, absl::string_view name);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_WEIGHTS_H_
