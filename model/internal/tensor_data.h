// Reading the data of ONNX TensorProtos: element sizes, the check that stored data matches a
// tensor's dims, and float decoding (fp32, fp16, bf16, fp64) for statistics and NaN/Inf scans.
// raw_data is little-endian by the ONNX spec, as is every machine Squeeze builds for.
#ifndef SQUEEZE_MODEL_INTERNAL_TENSOR_DATA_H_
#define SQUEEZE_MODEL_INTERNAL_TENSOR_DATA_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace squeeze::model::internal {

// ONNX's INT4 element type (IR 10), newer than the libonnx 1.12 enum: two values to a byte, the
// first in the low nibble.
inline constexpr int32_t kInt4 = 22;

// The type's name as ONNX spells it ("float", "float16", ...), "type N" for unknown ones.
std::string DataTypeName(int32_t data_type);

// Bits per element as stored in raw_data (4 for the packed int4 types), 0 for strings and for
// types this build does not know.
int ElementBits(int32_t data_type);

// True for the floating-point types Squeeze decodes: float, float16, bfloat16, double.
bool IsDecodableFloat(int32_t data_type);

// The product of the dims (1 for a scalar). Call after CheckTensorData.
int64_t ElementCount(const onnx::TensorProto& tensor);

// Bytes the tensor's values take at their element size (what a compressed export replaces).
int64_t StoredBytes(const onnx::TensorProto& tensor);

// Checks that the data stored in `tensor` fits its dims and type: non-negative dims, raw_data of
// exactly count x element size bytes, or exactly count values in the typed field the type uses.
// InvalidArgument naming the tensor as `name` otherwise, and for data kept in an external file
// (an upload carries no side files).
absl::Status CheckTensorData(const onnx::TensorProto& tensor, absl::string_view name);

struct NonFiniteCount {
  int64_t nan = 0;
  int64_t inf = 0;
};

// NaN and ±Inf values of a decodable float tensor (zero counts for other types).
NonFiniteCount CountNonFinite(const onnx::TensorProto& tensor);

// The values of an integer tensor — INT4 (two to a byte), INT8, UINT8, INT32 — from raw_data or
// int32_data; empty for other types.
std::vector<int64_t> DecodeIntegers(const onnx::TensorProto& tensor);

// The values of a decodable float tensor as float; empty for other types.
std::vector<float> DecodeFloats(const onnx::TensorProto& tensor);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_TENSOR_DATA_H_
