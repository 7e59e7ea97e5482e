// Images as model inputs, for calibration samples: an 8-bit binary netpbm image (PPM for colour,
// PGM for grey; ImageMagick writes either from any format) decoded and normalized into the NCHW
// float TensorProto a model input takes, the way torchvision-style preprocessing does:
// (pixel / 255 − mean[c]) / std[c]. Pure functions: thread safe.
#ifndef SQUEEZE_MODEL_IMAGE_TENSOR_H_
#define SQUEEZE_MODEL_IMAGE_TENSOR_H_

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace squeeze::model {

struct ImageTensorOptions {
  std::string input;           // the model input's name (the TensorProto's name)
  std::vector<int64_t> shape;  // [1, C, H, W]: C is 3 for a PPM, 1 for a PGM (or 3: grey repeated)
  // Per channel, in the tensor's channel order; one value applies to every channel.
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  std::vector<float> std = {0.229f, 0.224f, 0.225f};
  bool bgr = false;  // channel 0 is blue (OpenCV-trained models)
};

// `image` (the file's bytes) as a float TensorProto of options.shape. InvalidArgument naming what
// is wrong for: bytes that are not a binary 8-bit PPM/PGM, an image whose size is not the shape's
// H×W (resize it first: convert IN -resize WxH! ppm:OUT), a shape that is not [1, C, H, W] with C
// 1 or 3, a PPM for a 1-channel input, mean/std of another length than 1 or C, a zero std.
absl::StatusOr<onnx::TensorProto> ImageToTensor(absl::string_view image, const ImageTensorOptions& options);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_IMAGE_TENSOR_H_
