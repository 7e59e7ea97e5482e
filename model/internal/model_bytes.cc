#include "model/internal/model_bytes.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace squeeze::model::internal {
namespace {

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// ModelProto's fields (onnx.proto), with the wire type each must have.
struct KnownField {
  uint32_t number;
  const char* name;
  int wire_type;
};
constexpr KnownField kModelFields[] = {
    {1, "ir_version", kVarint},
    {2, "producer_name", kLengthDelimited},
    {3, "producer_version", kLengthDelimited},
    {4, "domain", kLengthDelimited},
    {5, "model_version", kVarint},
    {6, "doc_string", kLengthDelimited},
    {7, "graph", kLengthDelimited},
    {8, "opset_import", kLengthDelimited},
    {14, "metadata_props", kLengthDelimited},
    {20, "training_info", kLengthDelimited},
    {25, "functions", kLengthDelimited},
};

const KnownField* FindField(uint32_t number) {
  for (const KnownField& f : kModelFields) {
    if (f.number == number) return &f;
  }
  return nullptr;
}

enum class Read { kOk, kTruncated, kMalformed };

Read ReadVarint(absl::string_view bytes, size_t* pos, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= bytes.size()) return Read::kTruncated;
    const uint8_t byte = static_cast<uint8_t>(bytes[(*pos)++]);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *value = result;
      return Read::kOk;
    }
  }
  return Read::kMalformed;
}

absl::Status Truncated(absl::string_view bytes, size_t field_start, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("the model is truncated: ", what, " at byte ", field_start,
                                                 " runs past the end of the ", bytes.size(), " bytes"));
}

absl::Status NotOnnx(size_t field_start, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("not an ONNX model: at byte ", field_start, ", ", why));
}

// Reads a varint at `*pos` of the field starting at `start`: InvalidArgument saying `what` was cut
// short, or `malformed` when it is no varint.
absl::Status ReadFieldVarint(absl::string_view bytes, size_t start, absl::string_view what, absl::string_view malformed,
                             size_t* pos, uint64_t* value) {
  switch (ReadVarint(bytes, pos, value)) {
    case Read::kOk:
      return absl::OkStatus();
    case Read::kTruncated:
      return Truncated(bytes, start, what);
    case Read::kMalformed:
      return NotOnnx(start, malformed);
  }
  return absl::OkStatus();
}

// Reads the tag of the field starting at `*pos`; InvalidArgument when it is cut short or no varint.
absl::Status ReadTag(absl::string_view bytes, size_t* pos, uint64_t* tag) {
  return ReadFieldVarint(bytes, *pos, "a field tag", "the bytes are not protobuf wire format", pos, tag);
}

// Moves `*pos` past the value of the field starting at `start` (named `field` in messages), whose
// tag it follows; InvalidArgument when the value is cut short or malformed, or the wire type is one
// ONNX never uses.
absl::Status SkipValue(absl::string_view bytes, size_t start, int wire_type, const std::string& field, size_t* pos) {
  uint64_t value = 0;
  switch (wire_type) {
    case kVarint:
      return ReadFieldVarint(bytes, start, field, absl::StrCat(field, " holds a malformed varint"), pos, &value);
    case kFixed64:
    case kFixed32: {
      const size_t size = wire_type == kFixed64 ? 8 : 4;
      if (bytes.size() - *pos < size) return Truncated(bytes, start, field);
      *pos += size;
      break;
    }
    case kLengthDelimited:
      if (absl::Status s =
              ReadFieldVarint(bytes, start, field, absl::StrCat(field, " has a malformed length"), pos, &value);
          !s.ok()) {
        return s;
      }
      if (value > bytes.size() - *pos) {
        return Truncated(bytes, start, absl::StrCat(field, " of ", value, " bytes"));
      }
      *pos += static_cast<size_t>(value);
      break;
    default:
      // Groups (3, 4) are not used by ONNX; 6 and 7 do not exist.
      return NotOnnx(start, absl::StrCat(field, " has wire type ", wire_type, ", which ONNX never uses"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckModelBytes(absl::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("the model is empty (0 bytes)");
  bool has_graph = false;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t start = pos;
    uint64_t tag = 0;
    if (absl::Status s = ReadTag(bytes, &pos, &tag); !s.ok()) return s;
    const uint64_t number = tag >> 3;
    const int wire_type = static_cast<int>(tag & 7);
    if (number == 0 || number > 536870911) return NotOnnx(start, "the bytes are not protobuf wire format");
    const KnownField* known = FindField(static_cast<uint32_t>(number));
    const std::string field =
        known ? absl::StrCat("field ", number, " (", known->name, ")") : absl::StrCat("field ", number);
    if (known && known->wire_type != wire_type) {
      return NotOnnx(start, absl::StrCat(field, " has wire type ", wire_type, " instead of ", known->wire_type));
    }
    if (absl::Status s = SkipValue(bytes, start, wire_type, field, &pos); !s.ok()) return s;
    if (number == 7 && wire_type == kLengthDelimited) has_graph = true;
  }
  if (!has_graph) return absl::InvalidArgumentError("not an ONNX model: it has no graph");
  return absl::OkStatus();
}

}  // namespace squeeze::model::internal
