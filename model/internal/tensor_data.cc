#include "model/internal/tensor_data.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/weight_math.h"

namespace squeeze::model::internal {
namespace {

using onnx::TensorProto;

// Types newer than the libonnx 1.12 enum (IR 9 and later), by number.
constexpr int32_t kFloat8E4M3FN = 17;
constexpr int32_t kFloat8E4M3FNUZ = 18;
constexpr int32_t kFloat8E5M2 = 19;
constexpr int32_t kFloat8E5M2FNUZ = 20;
constexpr int32_t kUint4 = 21;
constexpr int32_t kInt4 = 22;
constexpr int32_t kFloat4E2M1 = 23;
constexpr int32_t kFloat8E8M0 = 24;

bool IsPacked4Bit(int32_t type) { return type == kUint4 || type == kInt4 || type == kFloat4E2M1; }

// Elements in raw or int32_data storage units: packed 4-bit types hold two per unit.
int64_t StorageUnits(int64_t count, int32_t type) { return IsPacked4Bit(type) ? (count + 1) / 2 : count; }

std::string DimsString(const TensorProto& tensor) { return absl::StrCat("[", absl::StrJoin(tensor.dims(), ","), "]"); }

float BFloat16ToFloat(uint16_t bits) {
  const uint32_t word = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof(value));
  return value;
}

// Calls fn(double) on every value of a decodable float tensor, in storage order.
template <typename Fn>
void ForEachFloat(const TensorProto& tensor, Fn fn) {
  const int32_t type = tensor.data_type();
  const std::string& raw = tensor.raw_data();
  const bool use_raw = !raw.empty();
  const int64_t count = ElementCount(tensor);
  switch (type) {
    case TensorProto::FLOAT:
      if (use_raw) {
        for (int64_t i = 0; i < count; ++i) {
          float v;
          std::memcpy(&v, raw.data() + i * sizeof(float), sizeof(float));
          fn(v);
        }
      } else {
        for (float v : tensor.float_data()) fn(v);
      }
      break;
    case TensorProto::DOUBLE:
      if (use_raw) {
        for (int64_t i = 0; i < count; ++i) {
          double v;
          std::memcpy(&v, raw.data() + i * sizeof(double), sizeof(double));
          fn(v);
        }
      } else {
        for (double v : tensor.double_data()) fn(v);
      }
      break;
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16: {
      const bool half = type == TensorProto::FLOAT16;
      auto convert = [half](uint16_t bits) { return half ? HalfBitsToFloat(bits) : BFloat16ToFloat(bits); };
      if (use_raw) {
        for (int64_t i = 0; i < count; ++i) {
          uint16_t bits;
          std::memcpy(&bits, raw.data() + i * sizeof(uint16_t), sizeof(uint16_t));
          fn(convert(bits));
        }
      } else {
        // Typed 16-bit floats live in int32_data, one value per element, in the low 16 bits.
        for (int32_t v : tensor.int32_data()) fn(convert(static_cast<uint16_t>(v & 0xffff)));
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

std::string DataTypeName(int32_t data_type) {
  switch (data_type) {
    case TensorProto::FLOAT:
      return "float";
    case TensorProto::UINT8:
      return "uint8";
    case TensorProto::INT8:
      return "int8";
    case TensorProto::UINT16:
      return "uint16";
    case TensorProto::INT16:
      return "int16";
    case TensorProto::INT32:
      return "int32";
    case TensorProto::INT64:
      return "int64";
    case TensorProto::STRING:
      return "string";
    case TensorProto::BOOL:
      return "bool";
    case TensorProto::FLOAT16:
      return "float16";
    case TensorProto::DOUBLE:
      return "double";
    case TensorProto::UINT32:
      return "uint32";
    case TensorProto::UINT64:
      return "uint64";
    case TensorProto::COMPLEX64:
      return "complex64";
    case TensorProto::COMPLEX128:
      return "complex128";
    case TensorProto::BFLOAT16:
      return "bfloat16";
    case kFloat8E4M3FN:
      return "float8e4m3fn";
    case kFloat8E4M3FNUZ:
      return "float8e4m3fnuz";
    case kFloat8E5M2:
      return "float8e5m2";
    case kFloat8E5M2FNUZ:
      return "float8e5m2fnuz";
    case kUint4:
      return "uint4";
    case kInt4:
      return "int4";
    case kFloat4E2M1:
      return "float4e2m1";
    case kFloat8E8M0:
      return "float8e8m0";
    default:
      return absl::StrCat("type ", data_type);
  }
}

int ElementBits(int32_t data_type) {
  switch (data_type) {
    case TensorProto::UINT8:
    case TensorProto::INT8:
    case TensorProto::BOOL:
    case kFloat8E4M3FN:
    case kFloat8E4M3FNUZ:
    case kFloat8E5M2:
    case kFloat8E5M2FNUZ:
    case kFloat8E8M0:
      return 8;
    case TensorProto::UINT16:
    case TensorProto::INT16:
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16:
      return 16;
    case TensorProto::FLOAT:
    case TensorProto::INT32:
    case TensorProto::UINT32:
      return 32;
    case TensorProto::INT64:
    case TensorProto::DOUBLE:
    case TensorProto::UINT64:
    case TensorProto::COMPLEX64:
      return 64;
    case TensorProto::COMPLEX128:
      return 128;
    case kUint4:
    case kInt4:
    case kFloat4E2M1:
      return 4;
    default:
      return 0;
  }
}

bool IsDecodableFloat(int32_t data_type) {
  return data_type == TensorProto::FLOAT || data_type == TensorProto::FLOAT16 || data_type == TensorProto::BFLOAT16 ||
         data_type == TensorProto::DOUBLE;
}

int64_t ElementCount(const TensorProto& tensor) {
  int64_t count = 1;
  for (int64_t d : tensor.dims()) count *= d;
  return count;
}

int64_t StoredBytes(const TensorProto& tensor) {
  return (ElementCount(tensor) * ElementBits(tensor.data_type()) + 7) / 8;
}

absl::Status CheckTensorData(const TensorProto& tensor, absl::string_view name) {
  if (tensor.data_location() == TensorProto::EXTERNAL) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' keeps its data in an external file; upload a model with its ",
                     "weights embedded (onnx.save_model(..., save_as_external_data=False))"));
  }
  const int32_t type = tensor.data_type();
  if (type == TensorProto::UNDEFINED) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has no data type"));
  }
  // Element counts beyond 2^48 cannot be real tensors; refusing them keeps products in range.
  constexpr int64_t kMaxElements = int64_t{1} << 48;
  int64_t count = 1;
  for (int64_t d : tensor.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' has a negative dimension: ", DimsString(tensor)));
    }
    if (d > 0 && count > kMaxElements / d) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is impossibly large: ", DimsString(tensor)));
    }
    count *= d;
  }
  const std::string shape = absl::StrCat(DimsString(tensor), " of ", DataTypeName(type));

  int typed_fields = 0;
  typed_fields += tensor.float_data_size() > 0;
  typed_fields += tensor.int32_data_size() > 0;
  typed_fields += tensor.string_data_size() > 0;
  typed_fields += tensor.int64_data_size() > 0;
  typed_fields += tensor.double_data_size() > 0;
  typed_fields += tensor.uint64_data_size() > 0;
  if (!tensor.raw_data().empty()) {
    if (typed_fields > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' stores its values twice, in raw_data and in a typed field"));
    }
    const int bits = ElementBits(type);
    if (bits == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' of ", DataTypeName(type), " cannot be stored in raw_data"));
    }
    const int64_t expected = (count * bits + 7) / 8;
    const int64_t actual = static_cast<int64_t>(tensor.raw_data().size());
    if (actual != expected) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has ", actual,
                                                     " bytes of raw_data, but its shape ", shape, " needs ", expected));
    }
    return absl::OkStatus();
  }
  if (typed_fields > 1) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' stores values in more than one typed field"));
  }

  // Which typed field the type uses, and how many values it must hold.
  const char* field = nullptr;
  int64_t actual = 0;
  int64_t expected = count;
  switch (type) {
    case TensorProto::FLOAT:
    case TensorProto::COMPLEX64:
      field = "float_data";
      actual = tensor.float_data_size();
      if (type == TensorProto::COMPLEX64) expected = 2 * count;
      break;
    case TensorProto::DOUBLE:
    case TensorProto::COMPLEX128:
      field = "double_data";
      actual = tensor.double_data_size();
      if (type == TensorProto::COMPLEX128) expected = 2 * count;
      break;
    case TensorProto::INT64:
      field = "int64_data";
      actual = tensor.int64_data_size();
      break;
    case TensorProto::UINT32:
    case TensorProto::UINT64:
      field = "uint64_data";
      actual = tensor.uint64_data_size();
      break;
    case TensorProto::STRING:
      field = "string_data";
      actual = tensor.string_data_size();
      break;
    default:
      if (ElementBits(type) == 0) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has an unknown data type (", type, ")"));
      }
      field = "int32_data";
      actual = tensor.int32_data_size();
      expected = StorageUnits(count, type);
      break;
  }
  if (actual != expected) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has ", actual, " values in ", field,
                                                   ", but its shape ", shape, " needs ", expected));
  }
  return absl::OkStatus();
}

NonFiniteCount CountNonFinite(const TensorProto& tensor) {
  NonFiniteCount result;
  ForEachFloat(tensor, [&result](double v) {
    if (std::isnan(v)) {
      ++result.nan;
    } else if (std::isinf(v)) {
      ++result.inf;
    }
  });
  return result;
}

std::vector<float> DecodeFloats(const TensorProto& tensor) {
  std::vector<float> values;
  if (!IsDecodableFloat(tensor.data_type())) return values;
  values.reserve(static_cast<size_t>(ElementCount(tensor)));
  ForEachFloat(tensor, [&values](double v) { values.push_back(static_cast<float>(v)); });
  return values;
}

}  // namespace squeeze::model::internal
