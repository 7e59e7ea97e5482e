#include "model/image_tensor.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace squeeze::model {
namespace {

// Reads the next header number of a netpbm file at `*pos`, skipping whitespace and # comments.
bool NextNumber(absl::string_view bytes, size_t* pos, int* value) {
  while (*pos < bytes.size()) {
    const char c = bytes[*pos];
    if (c == '#') {
      while (*pos < bytes.size() && bytes[*pos] != '\n') ++*pos;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++*pos;
    } else {
      break;
    }
  }
  int v = 0, digits = 0;
  while (*pos < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[*pos])) && digits < 9) {
    v = v * 10 + (bytes[*pos] - '0');
    ++*pos;
    ++digits;
  }
  *value = v;
  return digits > 0;
}

// InvalidArgument unless the options describe a [1, C, H, W] input with C 1 or 3, and 1 or C
// means and stds, none of them 0.
absl::Status CheckOptions(const ImageTensorOptions& options) {
  const std::vector<int64_t>& shape = options.shape;
  if (shape.size() != 4 || shape[0] != 1 || (shape[1] != 1 && shape[1] != 3) || shape[2] < 1 || shape[3] < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("an image fills a [1, C, H, W] input with C 1 or 3, not [", absl::StrJoin(shape, ","), "]"));
  }
  const int64_t channels = shape[1];
  for (const std::vector<float>* v : {&options.mean, &options.std}) {
    if (v->size() != 1 && static_cast<int64_t>(v->size()) != channels) {
      return absl::InvalidArgumentError(
          absl::StrCat("mean and std take 1 or ", channels, " values, one per channel; ", v->size(), " given"));
    }
  }
  for (float s : options.std) {
    if (!(s != 0)) return absl::InvalidArgumentError("a std of 0 divides by zero");
  }
  return absl::OkStatus();
}

// The header of a binary PPM (P6) or PGM (P5) image: its channels, width, height and maximum
// value, and the offset of its pixels.
struct NetpbmHeader {
  int channels = 0;
  int width = 0, height = 0, maxval = 0;
  size_t pixels = 0;
};
absl::StatusOr<NetpbmHeader> ReadNetpbmHeader(absl::string_view image) {
  if (image.size() < 2 || image[0] != 'P' || (image[1] != '6' && image[1] != '5')) {
    return absl::InvalidArgumentError(
        "not a binary PPM or PGM image (convert IMAGE -depth 8 ppm:OUT.ppm makes one from any format)");
  }
  NetpbmHeader header;
  header.channels = image[1] == '6' ? 3 : 1;
  size_t pos = 2;
  if (!NextNumber(image, &pos, &header.width) || !NextNumber(image, &pos, &header.height) ||
      !NextNumber(image, &pos, &header.maxval) || pos >= image.size() ||
      !std::isspace(static_cast<unsigned char>(image[pos]))) {
    return absl::InvalidArgumentError("the PPM/PGM header is cut short or malformed");
  }
  header.pixels = pos + 1;
  return header;
}

// InvalidArgument unless the image (`header` read from it) is 8-bit, of the input's height and
// width, not colour for a 1-channel input, and holds all its pixels.
absl::Status CheckImageFits(absl::string_view image, const NetpbmHeader& header, int64_t channels, int64_t height,
                            int64_t width) {
  if (header.maxval != 255) {
    return absl::InvalidArgumentError(absl::StrCat("the image has ", header.maxval,
                                                   " as its maximum value; only 8-bit "
                                                   "images (255) are read: convert IMAGE -depth 8 ppm:OUT.ppm"));
  }
  if (header.width != width || header.height != height) {
    return absl::InvalidArgumentError(absl::StrCat("the image is ", header.width, "x", header.height,
                                                   "; the input takes ", width, "x", height, ": convert IMAGE -resize ",
                                                   width, "x", height, "! ppm:OUT.ppm"));
  }
  if (header.channels == 3 && channels == 1) {
    return absl::InvalidArgumentError("a colour PPM for a 1-channel input: convert IMAGE -colorspace Gray pgm:OUT.pgm");
  }
  const size_t plane = static_cast<size_t>(width) * static_cast<size_t>(height);
  if (image.size() - header.pixels < plane * header.channels) {
    return absl::InvalidArgumentError(absl::StrCat("the image's pixels are cut short: ", image.size() - header.pixels,
                                                   " bytes for ", plane * header.channels));
  }
  return absl::OkStatus();
}

// The image's pixels as the input's channel planes, each scaled to [0, 1], less its mean, over its std.
std::vector<float> NormalizedPlanes(absl::string_view image, const NetpbmHeader& header,
                                    const ImageTensorOptions& options) {
  const int64_t channels = options.shape[1], height = options.shape[2], width = options.shape[3];
  const int image_channels = header.channels;
  const size_t plane = static_cast<size_t>(width) * static_cast<size_t>(height);
  const auto* pixels = reinterpret_cast<const unsigned char*>(image.data() + header.pixels);
  std::vector<float> values(plane * static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const float mean = options.mean.size() == 1 ? options.mean[0] : options.mean[static_cast<size_t>(c)];
    const float stddev = options.std.size() == 1 ? options.std[0] : options.std[static_cast<size_t>(c)];
    const int64_t source = image_channels == 1 ? 0 : (options.bgr ? 2 - c : c);
    float* out = values.data() + static_cast<size_t>(c) * plane;
    for (size_t p = 0; p < plane; ++p) {
      out[p] = (pixels[p * image_channels + static_cast<size_t>(source)] / 255.f - mean) / stddev;
    }
  }
  return values;
}

}  // namespace

absl::StatusOr<onnx::TensorProto> ImageToTensor(absl::string_view image, const ImageTensorOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  const std::vector<int64_t>& shape = options.shape;
  absl::StatusOr<NetpbmHeader> header = ReadNetpbmHeader(image);
  if (!header.ok()) return header.status();
  if (absl::Status s = CheckImageFits(image, *header, shape[1], shape[2], shape[3]); !s.ok()) return s;
  const std::vector<float> values = NormalizedPlanes(image, *header, options);
  onnx::TensorProto tensor;
  tensor.set_name(options.input);
  tensor.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) tensor.add_dims(d);
  tensor.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return tensor;
}

}  // namespace squeeze::model
