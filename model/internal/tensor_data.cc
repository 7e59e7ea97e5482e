#include "model/internal/tensor_data.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/status/statusor.h"
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

// The element count of `tensor`'s dims; InvalidArgument for a negative dim, or a count past 2^48,
// which no real tensor has (refusing it keeps products in range).
absl::StatusOr<int64_t> CheckedElementCount(const TensorProto& tensor, absl::string_view name) {
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
  return count;
}

// How many of the typed value fields (float_data, int32_data, ...) hold values.
int TypedFieldsUsed(const TensorProto& tensor) {
  int typed_fields = 0;
  typed_fields += tensor.float_data_size() > 0;
  typed_fields += tensor.int32_data_size() > 0;
  typed_fields += tensor.string_data_size() > 0;
  typed_fields += tensor.int64_data_size() > 0;
  typed_fields += tensor.double_data_size() > 0;
  typed_fields += tensor.uint64_data_size() > 0;
  return typed_fields;
}

// InvalidArgument unless raw_data holds exactly the bytes of `count` elements of the tensor's type
// (`shape` describes both), and no typed field holds values too.
absl::Status CheckRawData(const TensorProto& tensor, absl::string_view name, int64_t count, int typed_fields,
                          const std::string& shape) {
  const int32_t type = tensor.data_type();
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

// Which typed field a type stores its values in, how many the tensor holds there, and how many
// `count` elements need.
struct TypedField {
  const char* field = nullptr;
  int64_t actual = 0;
  int64_t expected = 0;
};
absl::StatusOr<TypedField> TypedFieldOf(const TensorProto& tensor, absl::string_view name, int64_t count) {
  const int32_t type = tensor.data_type();
  TypedField f;
  f.expected = count;
  switch (type) {
    case TensorProto::FLOAT:
    case TensorProto::COMPLEX64:
      f.field = "float_data";
      f.actual = tensor.float_data_size();
      if (type == TensorProto::COMPLEX64) f.expected = 2 * count;
      break;
    case TensorProto::DOUBLE:
    case TensorProto::COMPLEX128:
      f.field = "double_data";
      f.actual = tensor.double_data_size();
      if (type == TensorProto::COMPLEX128) f.expected = 2 * count;
      break;
    case TensorProto::INT64:
      f.field = "int64_data";
      f.actual = tensor.int64_data_size();
      break;
    case TensorProto::UINT32:
    case TensorProto::UINT64:
      f.field = "uint64_data";
      f.actual = tensor.uint64_data_size();
      break;
    case TensorProto::STRING:
      f.field = "string_data";
      f.actual = tensor.string_data_size();
      break;
    default:
      if (ElementBits(type) == 0) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has an unknown data type (", type, ")"));
      }
      f.field = "int32_data";
      f.actual = tensor.int32_data_size();
      f.expected = StorageUnits(count, type);
      break;
  }
  return f;
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
  absl::StatusOr<int64_t> count = CheckedElementCount(tensor, name);
  if (!count.ok()) return count.status();
  const std::string shape = absl::StrCat(DimsString(tensor), " of ", DataTypeName(type));

  const int typed_fields = TypedFieldsUsed(tensor);
  if (!tensor.raw_data().empty()) return CheckRawData(tensor, name, *count, typed_fields, shape);
  if (typed_fields > 1) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' stores values in more than one typed field"));
  }
  absl::StatusOr<TypedField> field = TypedFieldOf(tensor, name, *count);
  if (!field.ok()) return field.status();
  if (field->actual != field->expected) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has ", field->actual, " values in ",
                                                   field->field, ", but its shape ", shape, " needs ",
                                                   field->expected));
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

std::vector<int64_t> DecodeIntegers(const TensorProto& t) {
  const int32_t type = t.data_type();
  if (type != kInt4 && type != TensorProto::INT8 && type != TensorProto::UINT8 && type != TensorProto::INT32) return {};
  std::vector<int64_t> out;
  if (!t.has_raw_data()) {
    out.assign(t.int32_data().begin(), t.int32_data().end());
    return out;
  }
  const std::string& raw = t.raw_data();
  const int64_t count = ElementCount(t);
  for (int64_t i = 0; i < count; ++i) {
    if (type == kInt4) {
      if (static_cast<size_t>(i / 2) >= raw.size()) break;
      const uint8_t byte = static_cast<uint8_t>(raw[static_cast<size_t>(i / 2)]);
      const int nibble = i % 2 ? byte >> 4 : byte & 0x0F;
      out.push_back(nibble >= 8 ? nibble - 16 : nibble);
    } else if (type == TensorProto::INT32) {
      if (static_cast<size_t>(4 * i + 4) > raw.size()) break;
      int32_t v;
      std::memcpy(&v, raw.data() + 4 * i, 4);
      out.push_back(v);
    } else {
      if (static_cast<size_t>(i) >= raw.size()) break;
      out.push_back(type == TensorProto::INT8
                        ? static_cast<int64_t>(static_cast<int8_t>(raw[static_cast<size_t>(i)]))
                        : static_cast<int64_t>(static_cast<uint8_t>(raw[static_cast<size_t>(i)])));
    }
  }
  return out;
}

}  // namespace squeeze::model::internal
