#include "runtime/shape_probe.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <new>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"
#include "common/subprocess.h"
#include "model/loader.h"
#include "runtime/session.h"

namespace squeeze::runtime {
namespace {

ElementType FromOnnx(int32_t type) {
  switch (type) {
    case onnx::TensorProto::FLOAT:
      return ElementType::kFloat32;
    case onnx::TensorProto::FLOAT16:
      return ElementType::kFloat16;
    case onnx::TensorProto::INT64:
      return ElementType::kInt64;
    case onnx::TensorProto::INT32:
      return ElementType::kInt32;
    case onnx::TensorProto::INT8:
      return ElementType::kInt8;
    case onnx::TensorProto::UINT8:
      return ElementType::kUint8;
    case onnx::TensorProto::BOOL:
      return ElementType::kBool;
    default:
      return ElementType::kUnsupported;
  }
}

}  // namespace

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> ProbeShapes(
    const onnx::ModelProto& model, const std::map<std::string, std::vector<int64_t>>& input_shapes,
    const std::vector<std::string>& value_names, const ShapeProbeOptions& options) {
  std::map<std::string, std::vector<int64_t>> shapes;
  std::set<std::string> initializers;
  for (const onnx::TensorProto& t : model.graph().initializer()) initializers.insert(t.name());

  // Zero-filled inputs; a graph input asked for is answered from its given shape.
  std::vector<Tensor> inputs;
  for (const onnx::ValueInfoProto& input : model.graph().input()) {
    if (initializers.count(input.name())) continue;
    auto shape = input_shapes.find(input.name());
    if (shape == input_shapes.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no shape given for input '", input.name(), "'"));
    }
    Tensor t;
    t.name = input.name();
    t.type = FromOnnx(input.type().tensor_type().elem_type());
    if (t.type == ElementType::kUnsupported) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", input.name(), "' has an element type the shape ", "probe cannot feed"));
    }
    t.shape = shape->second;
    t.bytes.assign(static_cast<size_t>(t.ElementCount()) * ElementSize(t.type), '\0');
    inputs.push_back(std::move(t));
  }

  // The values to expose, as extra graph outputs. Serialized messages concatenate as a merge, so
  // appending a ModelProto that holds only those outputs adds them without copying the model.
  std::set<std::string> outputs;
  for (const onnx::ValueInfoProto& output : model.graph().output()) outputs.insert(output.name());
  std::set<std::string> computed;
  for (const onnx::NodeProto& node : model.graph().node()) computed.insert(node.output().begin(), node.output().end());
  onnx::ModelProto extra;
  std::vector<std::string> fetch;
  for (const std::string& name : value_names) {
    if (auto given = input_shapes.find(name); given != input_shapes.end()) {
      shapes[name] = given->second;
      continue;
    }
    if (!computed.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("no node of the main graph computes '", name, "'"));
    }
    if (!outputs.count(name)) extra.mutable_graph()->add_output()->set_name(name);
    outputs.insert(name);
    fetch.push_back(name);
  }
  if (fetch.empty()) return shapes;
  const std::string bytes = model.SerializeAsString() + extra.SerializeAsString();

  SessionOptions session_options;
  session_options.intra_op_threads = options.intra_op_threads;
  session_options.optimize = false;  // every node as written; nothing fused away
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(bytes, session_options);
  if (!session.ok()) return session.status();
  absl::StatusOr<std::vector<Tensor>> values = (*session)->Run(inputs, fetch);
  if (!values.ok()) return values.status();
  for (Tensor& value : *values) shapes[value.name] = std::move(value.shape);
  return shapes;
}

model::ShapeProbe OnnxRuntimeShapeProbe(const ShapeProbeOptions& options) {
  return [options](const onnx::ModelProto& model, const std::map<std::string, std::vector<int64_t>>& input_shapes,
                   const std::vector<std::string>& value_names) {
    return ProbeShapes(model, input_shapes, value_names, options);
  };
}

namespace {

// The helper's exit code when it ran out of memory.
constexpr int kOutOfMemory = 3;
// What the helper needs besides the model and its values: ONNX Runtime, thread stacks, protobuf.
constexpr int64_t kRuntimeAllowance = int64_t{512} << 20;

bool LooksOutOfMemory(absl::string_view message) {
  return absl::StrContains(message, "bad_alloc") || absl::StrContains(message, "bad allocation") ||
         absl::StrContains(message, "Failed to allocate memory");
}

}  // namespace

model::ShapeProbe IsolatedShapeProbe(IsolatedProbeOptions options) {
  return
      [options](
          const onnx::ModelProto& model, const std::map<std::string, std::vector<int64_t>>& input_shapes,
          const std::vector<std::string>& value_names) -> absl::StatusOr<std::map<std::string, std::vector<int64_t>>> {
        const char* tmp = std::getenv("TMPDIR");
        const std::string parent = !options.temp_dir.empty() ? options.temp_dir : tmp && *tmp ? tmp : "/tmp";
        std::string dir = absl::StrCat(parent, "/squeeze-probe-XXXXXX");
        if (::mkdtemp(dir.data()) == nullptr)
          return common::ErrnoStatus(errno, "cannot create a directory for the shape probe");
        absl::Cleanup remove_dir = [&dir] {
          std::error_code ignored;
          std::filesystem::remove_all(dir, ignored);
        };
        onnx::GraphProto request;  // inputs with their shapes; outputs: the values asked for
        for (const auto& [name, dims] : input_shapes) {
          onnx::ValueInfoProto* input = request.add_input();
          input->set_name(name);
          for (int64_t d : dims)
            input->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
        }
        for (const std::string& name : value_names) request.add_output()->set_name(name);
        const std::string model_path = dir + "/model.onnx", request_path = dir + "/request.pb",
                          answer_path = dir + "/answer.pb";
        if (absl::Status s = common::WriteFileAtomically(model_path, model.SerializeAsString(), 0600); !s.ok())
          return s;
        if (absl::Status s = common::WriteFileAtomically(request_path, request.SerializeAsString(), 0600); !s.ok())
          return s;

        const int64_t memory =
            options.activation_bytes + 3 * static_cast<int64_t>(model.ByteSizeLong()) + kRuntimeAllowance;
        std::vector<std::string> argv = options.helper_argv;
        for (const std::string& arg :
             {std::string("--model"), model_path, std::string("--request"), request_path, std::string("--output"),
              answer_path, std::string("--memory-limit"), std::to_string(memory), std::string("--threads"),
              std::to_string(options.intra_op_threads)}) {
          argv.push_back(arg);
        }
        absl::StatusOr<common::ChildExit> child = common::RunChild(argv, options.time_limit);
        if (!child.ok()) return child.status();
        const std::string budget = absl::StrCat("this server's budget of ", model::Gibibytes(options.activation_bytes),
                                                " of values per model (squeezed ", options.memory_flag, ")");
        if (child->timed_out) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "running the model once in ONNX Runtime to find the shapes libonnx cannot infer took longer than ",
              absl::FormatDuration(options.time_limit), " (squeezed ", options.time_flag,
              "): give a smaller --input-shape, or ask the operator to raise the limit"));
        }
        if (child->exit_code == kOutOfMemory || child->signal != 0) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "running the model once in ONNX Runtime to find the shapes libonnx cannot infer needs more memory than ",
              budget, child->signal != 0 ? absl::StrCat(" (the run ended with signal ", child->signal, ")") : "",
              ": at this input shape its values are too large, or they grow with the data (NonZero, a computed "
              "ConstantOfShape...); give a smaller --input-shape, or ask the operator to raise the budget"));
        }
        if (child->exit_code != 0) {
          absl::StatusOr<std::string> error = common::ReadFile(answer_path + ".error");
          if (!error.ok()) {
            return absl::InternalError(absl::StrCat("the shape probe helper failed (exit code ", child->exit_code,
                                                    "): ", common::Printable(child->output, 1000)));
          }
          int code = static_cast<int>(absl::StatusCode::kInternal);
          const size_t newline = error->find('\n');
          if (!absl::SimpleAtoi(error->substr(0, newline), &code)) code = static_cast<int>(absl::StatusCode::kInternal);
          return absl::Status(static_cast<absl::StatusCode>(code),
                              newline == std::string::npos ? "" : error->substr(newline + 1));
        }
        absl::StatusOr<std::string> answer_bytes = common::ReadFile(answer_path);
        if (!answer_bytes.ok()) return answer_bytes.status();
        onnx::GraphProto answer;
        if (!answer.ParseFromString(*answer_bytes))
          return absl::InternalError("the shape probe's answer does not parse");
        std::map<std::string, std::vector<int64_t>> shapes;
        for (const onnx::ValueInfoProto& value : answer.value_info()) {
          std::vector<int64_t>& dims = shapes[value.name()];
          for (const auto& d : value.type().tensor_type().shape().dim()) dims.push_back(d.dim_value());
        }
        return shapes;
      };
}

int ShapeProbeHelperMain(const std::vector<std::string>& args) {
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i + 1 < args.size(); i += 2) flags[args[i]] = args[i + 1];
  const std::string output = flags["--output"];
  auto fail = [&output](const absl::Status& status) {
    if (LooksOutOfMemory(status.message())) return kOutOfMemory;
    common::WriteFileAtomically(output + ".error",
                                absl::StrCat(static_cast<int>(status.code()), "\n", status.message()), 0600)
        .IgnoreError();
    return 1;
  };
  int64_t memory = 0;
  int threads = 1;
  if (output.empty() || !absl::SimpleAtoi(flags["--memory-limit"], &memory) ||
      !absl::SimpleAtoi(flags["--threads"], &threads)) {
    std::fprintf(stderr, "probe-shapes: expects --model, --request, --output, --memory-limit and --threads\n");
    return 2;
  }
  // Private writable memory (the heap, ONNX Runtime's buffers) past the budget fails to allocate.
  const rlimit limit{static_cast<rlim_t>(memory), static_cast<rlim_t>(memory)};
  if (::setrlimit(RLIMIT_DATA, &limit) != 0) return fail(common::ErrnoStatus(errno, "cannot limit the probe's memory"));
  try {
    absl::StatusOr<std::string> model_bytes = common::ReadFile(flags["--model"]);
    if (!model_bytes.ok()) return fail(model_bytes.status());
    absl::StatusOr<std::string> request_bytes = common::ReadFile(flags["--request"]);
    if (!request_bytes.ok()) return fail(request_bytes.status());
    onnx::ModelProto model;
    onnx::GraphProto request;
    if (!model.ParseFromString(*model_bytes) || !request.ParseFromString(*request_bytes)) {
      return fail(absl::InternalError("the shape probe's model or request does not parse"));
    }
    model_bytes->clear();
    std::map<std::string, std::vector<int64_t>> input_shapes;
    for (const onnx::ValueInfoProto& input : request.input()) {
      std::vector<int64_t>& dims = input_shapes[input.name()];
      for (const auto& d : input.type().tensor_type().shape().dim()) dims.push_back(d.dim_value());
    }
    std::vector<std::string> names;
    for (const onnx::ValueInfoProto& value : request.output()) names.push_back(value.name());
    ShapeProbeOptions options;
    options.intra_op_threads = threads;
    absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes =
        ProbeShapes(model, input_shapes, names, options);
    if (!shapes.ok()) return fail(shapes.status());
    onnx::GraphProto answer;
    for (const auto& [name, dims] : *shapes) {
      onnx::ValueInfoProto* value = answer.add_value_info();
      value->set_name(name);
      for (int64_t d : dims) value->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
    }
    if (absl::Status s = common::WriteFileAtomically(output, answer.SerializeAsString(), 0600); !s.ok()) return fail(s);
    return 0;
  } catch (const std::bad_alloc&) {
    return kOutOfMemory;
  }
}

}  // namespace squeeze::runtime
