// model/image_tensor.h on hand-made netpbm images, values checked against the formula by hand.
#include "model/image_tensor.h"

#include <catch2/catch.hpp>
#include <cstring>

namespace squeeze::model {
namespace {

using Catch::Matchers::Contains;

std::vector<float> Values(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / sizeof(float));
  std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
  return v;
}

// A 2x1 PPM: a red pixel, then a blue one; with a comment in the header, as GIMP writes.
const std::string kPpm = std::string("P6\n# made by hand\n2 1\n255\n") + std::string("\xff\x00\x00\x00\x00\xff", 6);

TEST_CASE("A PPM becomes a normalized NCHW tensor, RGB or BGR", "[image_tensor]") {
  ImageTensorOptions options;
  options.input = "x";
  options.shape = {1, 3, 1, 2};
  options.mean = {0.5f};
  options.std = {0.5f};
  absl::StatusOr<onnx::TensorProto> t = ImageToTensor(kPpm, options);
  REQUIRE(t.ok());
  CHECK(t->name() == "x");
  CHECK(t->data_type() == onnx::TensorProto::FLOAT);
  CHECK(std::vector<int64_t>(t->dims().begin(), t->dims().end()) == std::vector<int64_t>{1, 3, 1, 2});
  // (p/255 − 0.5)/0.5: 255 → 1, 0 → −1. Planes R, G, B; pixels red then blue.
  CHECK(Values(*t) == std::vector<float>{1, -1, -1, -1, -1, 1});
  options.bgr = true;
  t = ImageToTensor(kPpm, options);
  REQUIRE(t.ok());
  CHECK(Values(*t) == std::vector<float>{-1, 1, -1, -1, 1, -1});
}

TEST_CASE("Per-channel mean and std apply per plane, a PGM fills 1 or 3 channels", "[image_tensor]") {
  ImageTensorOptions options;
  options.shape = {1, 3, 1, 2};
  options.mean = {0, 0.5f, 1};
  options.std = {1, 0.25f, 2};
  absl::StatusOr<onnx::TensorProto> t = ImageToTensor(kPpm, options);
  REQUIRE(t.ok());
  CHECK(Values(*t) == std::vector<float>{1, 0, -2, -2, -0.5f, 0});
  const std::string pgm = std::string("P5 2 1 255\n") + std::string("\x00\xff", 2);
  options.mean = {0};
  options.std = {1};
  t = ImageToTensor(pgm, options);
  REQUIRE(t.ok());
  CHECK(Values(*t) == std::vector<float>{0, 1, 0, 1, 0, 1});
  options.shape = {1, 1, 1, 2};
  t = ImageToTensor(pgm, options);
  REQUIRE(t.ok());
  CHECK(Values(*t) == std::vector<float>{0, 1});
}

TEST_CASE("Images that do not fit the input are refused with what to do", "[image_tensor]") {
  ImageTensorOptions options;
  options.shape = {1, 3, 1, 2};
  options.mean = {0};
  options.std = {1};
  auto refused = [&](const std::string& bytes, const std::string& says) {
    absl::StatusOr<onnx::TensorProto> t = ImageToTensor(bytes, options);
    REQUIRE(t.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(t.status().message()), Contains(says));
  };
  refused("\x89PNG\r\n", "not a binary PPM or PGM");
  refused("P6\n2 1\n", "header");
  refused("P6\n2 1\n65535\n", "8-bit");
  refused(kPpm.substr(0, kPpm.size() - 1), "cut short");
  options.shape = {1, 3, 4, 4};
  refused(kPpm, "-resize 4x4!");
  options.shape = {1, 1, 1, 2};
  refused(kPpm, "1-channel");
  options.shape = {2, 3, 1, 2};
  refused(kPpm, "[1, C, H, W]");
  options.shape = {1, 3, 1, 2};
  options.mean = {0, 0};
  refused(kPpm, "1 or 3 values");
  options.mean = {0};
  options.std = {0};
  refused(kPpm, "std of 0");
}

}  // namespace
}  // namespace squeeze::model
