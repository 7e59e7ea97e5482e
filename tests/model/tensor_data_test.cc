#include "model/internal/tensor_data.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "model/internal/model_bytes.h"
#include "model/weight_math.h"

namespace squeeze::model::internal {
namespace {

TEST_CASE("fp16 conversion is exact where fp16 can be, and rounds to nearest even", "[model]") {
  CHECK(HalfBitsToFloat(0x3c00) == 1.0f);
  CHECK(HalfBitsToFloat(0xc000) == -2.0f);
  CHECK(HalfBitsToFloat(0x7bff) == 65504.0f);
  CHECK(HalfBitsToFloat(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(std::isinf(HalfBitsToFloat(0x7c00)));
  CHECK(std::isnan(HalfBitsToFloat(0x7e00)));
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float value = HalfBitsToFloat(static_cast<uint16_t>(bits));
    if (std::isnan(value)) continue;
    INFO(bits);
    REQUIRE(FloatToHalfBits(value) == bits);
  }
  CHECK(FloatToHalfBits(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // a tie rounds to even
  CHECK(FloatToHalfBits(1e6f) == 0x7c00);
}

TEST_CASE("CountNonFinite and DecodeFloats read every float encoding", "[model]") {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto::BFLOAT16);
  t.add_dims(3);
  for (int32_t bits : {0x3f80, 0x7fc0, 0xff80}) t.add_int32_data(bits);  // 1, NaN, −Inf
  NonFiniteCount count = CountNonFinite(t);
  CHECK(count.nan == 1);
  CHECK(count.inf == 1);
  CHECK(DecodeFloats(t).at(0) == 1.0f);

  onnx::TensorProto d;
  d.set_data_type(onnx::TensorProto::DOUBLE);
  d.add_dims(2);
  const double values[] = {0.5, 1e300};
  d.set_raw_data(std::string(reinterpret_cast<const char*>(values), sizeof(values)));
  CHECK(CheckTensorData(d, "d").ok());
  CHECK(CountNonFinite(d).inf == 0);  // finite as a double
  CHECK(DecodeFloats(d).at(0) == 0.5f);
}

TEST_CASE("CheckModelBytes names what is wrong with the bytes", "[model]") {
  CHECK(CheckModelBytes("").message() == "the model is empty (0 bytes)");
  // ir_version 8, then a graph field claiming 100 bytes with 2 present.
  const std::string truncated("\x08\x08\x3a\x64\x0a\x00", 6);
  CHECK(CheckModelBytes(truncated).message() ==
        "the model is truncated: field 7 (graph) of 100 bytes at byte 2 runs past the end of the 6 bytes");
  CHECK(CheckModelBytes(std::string("\x08\x08", 2)).message() == "not an ONNX model: it has no graph");
  CHECK(CheckModelBytes(std::string("\x08\x08\x3a\x00", 4)).ok());
}

}  // namespace
}  // namespace squeeze::model::internal
