// A first look at uploaded bytes before protobuf parses them, so that empty, truncated and
// foreign files are rejected with a precise reason instead of protobuf's bare "parse failed".
#ifndef SQUEEZE_MODEL_INTERNAL_MODEL_BYTES_H_
#define SQUEEZE_MODEL_INTERNAL_MODEL_BYTES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace squeeze::model::internal {

// Walks the top-level protobuf fields of a serialized ModelProto. InvalidArgument when `bytes` is
// empty, when a field runs past the end (a truncated file), when they are not protobuf wire
// format or have a field of the wrong wire type (not ONNX), and when no graph field is present.
absl::Status CheckModelBytes(absl::string_view bytes);

}  // namespace squeeze::model::internal

#endif  // SQUEEZE_MODEL_INTERNAL_MODEL_BYTES_H_
