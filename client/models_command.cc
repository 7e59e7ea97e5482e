// squeeze models upload | list | show | delete
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/table.h"
#include "squeeze/v1/model.grpc.pb.h"

namespace squeeze::client {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

std::string Count(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f} G", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f} M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f} K", n / 1e3);
  return std::to_string(n);
}

std::string Dims(const google::protobuf::RepeatedField<int64_t>& dims) { return absl::StrJoin(dims, "x"); }

const char* ShapeSourceName(v1::ShapeSource s) {
  switch (s) {
    case v1::SHAPE_SOURCE_DECLARED:
      return "declared";
    case v1::SHAPE_SOURCE_INFERRED:
      return "inferred";
    case v1::SHAPE_SOURCE_ONNX_RUNTIME:
      return "onnxruntime";
    default:
      return "unknown";
  }
}

// "x=1,3,640,640" -> InputShape; false with a message when malformed.
bool ParseShape(const std::string& text, v1::InputShape* shape, std::string* error) {
  std::pair<std::string, std::string> kv = absl::StrSplit(text, absl::MaxSplits('=', 1));
  if (kv.first.empty() || kv.second.empty()) {
    *error = fmt::format("--input-shape '{}' is not NAME=D0,D1,... (e.g. x=1,3,640,640)", text);
    return false;
  }
  shape->set_name(kv.first);
  for (absl::string_view d : absl::StrSplit(kv.second, ',')) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(d, &value) || value < 1) {
      *error = fmt::format("--input-shape '{}': '{}' is not a positive integer", text, std::string(d));
      return false;
    }
    shape->add_dims(value);
  }
  return true;
}

void PrintSummary(const v1::Model& m) {
  const v1::ModelAnalysis& a = m.analysis();
  std::cout << fmt::format("{}  {}  {}  sha256 {}\n", m.id(), m.name(), FormatBytes(m.size_bytes()),
                           m.sha256().substr(0, 16));
  std::vector<std::string> inputs;
  for (const v1::InputShape& s : a.input_shapes()) inputs.push_back(s.name() + "=" + Dims(s.dims()));
  std::cout << fmt::format("  {} compressible layers ({} grouped, {} depthwise), {} params, {} MACs, inputs {}\n",
                           a.layer_count(), a.grouped_layers(), a.depthwise_layers(), Count(a.total_params()),
                           Count(a.total_macs()), absl::StrJoin(inputs, " "));
  if (a.outputs_size() > 0) {
    std::vector<std::string> outputs;
    for (const v1::ModelOutput& o : a.outputs()) outputs.push_back(o.name() + (o.is_float() ? "" : " (not float)"));
    std::cout << "  outputs " << absl::StrJoin(outputs, ", ") << "\n";
  }
  for (const std::string& d : a.defaulted_dims()) std::cout << "  default: " << d << "\n";
  for (const std::string& w : a.warnings()) std::cout << "  warning: " << w << "\n";
}

int Upload(const Connection& connection, const std::string& path, std::string name,
           const std::vector<std::string>& shapes) {
  v1::UploadMetadata metadata;
  for (const std::string& text : shapes) {
    std::string error;
    if (!ParseShape(text, metadata.add_input_shapes(), &error)) {
      std::cerr << "squeeze: " << error << "\n";
      return 2;
    }
  }
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) {
    std::cerr << "squeeze: cannot open " << path << "\n";
    return 2;
  }
  const int64_t size = static_cast<int64_t>(file.tellg());
  file.seekg(0);
  if (name.empty()) name = path.substr(path.find_last_of('/') + 1);
  metadata.set_name(name);
  metadata.set_size_bytes(size);

  auto stub = v1::ModelService::NewStub(connection.channel());
  auto context = connection.NewContext();
  // A large upload gets time for its bytes on top of --timeout (at 10 MB/s).
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(
                                                               connection.options().timeout_s * 1000 + size / 10'000)));
  v1::Model model;
  std::unique_ptr<grpc::ClientWriter<v1::UploadModelRequest>> writer = stub->UploadModel(context.get(), &model);
  v1::UploadModelRequest request;
  *request.mutable_metadata() = metadata;
  const bool show_progress = isatty(STDERR_FILENO) && size > 4 * static_cast<int64_t>(kChunkBytes);
  const auto start = std::chrono::steady_clock::now();
  bool open = writer->Write(request);
  std::string buffer(kChunkBytes, '\0');
  int64_t sent = 0;
  while (open && sent < size) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = file.gcount();
    if (n <= 0) break;
    request.set_chunk(buffer.data(), static_cast<size_t>(n));
    open = writer->Write(request);
    sent += n;
    if (show_progress) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cerr << fmt::format("\ruploading {}  {:3.0f}%  {} / {}  {:.0f} MB/s ", name, 100.0 * sent / size,
                               FormatBytes(sent), FormatBytes(size), seconds > 0 ? sent / seconds / 1e6 : 0.0)
                << std::flush;
    }
  }
  if (show_progress)
    std::cerr << "\n"
              << "analysing on the server...\n";
  if (open) writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return connection.Fail(status, "models upload");
  if (connection.options().json) {
    std::cout << ToJson(model);
    return 0;
  }
  PrintSummary(model);
  std::cout << "'squeeze models show " << model.id() << "' lists the layers.\n";
  return 0;
}

int List(const Connection& connection) {
  auto stub = v1::ModelService::NewStub(connection.channel());
  v1::ListModelsResponse response;
  grpc::Status status = stub->ListModels(connection.NewContext().get(), v1::ListModelsRequest(), &response);
  if (!status.ok()) return connection.Fail(status, "models list");
  if (connection.options().json) {
    std::cout << ToJson(response);
    return 0;
  }
  Table table({"ID", "NAME", "SIZE", "LAYERS", "PARAMS", "MACS", "UPLOADED"});
  table.AlignRight({2, 3, 4, 5});
  for (const v1::Model& m : response.models()) {
    table.AddRow({m.id(), m.name(), FormatBytes(m.size_bytes()), std::to_string(m.analysis().layer_count()),
                  Count(m.analysis().total_params()), Count(m.analysis().total_macs()), m.created_at()});
  }
  table.Print(std::cout);
  std::cout << response.models_size() << " models.\n";
  return 0;
}

int Show(const Connection& connection, const std::string& id) {
  auto stub = v1::ModelService::NewStub(connection.channel());
  v1::GetModelRequest request;
  request.set_id(id);
  v1::Model m;
  grpc::Status status = stub->GetModel(connection.NewContext().get(), request, &m);
  if (!status.ok()) return connection.Fail(status, "models show");
  if (connection.options().json) {
    std::cout << ToJson(m);
    return 0;
  }
  PrintSummary(m);
  std::cout << "\n";
  Table table({"#", "LAYER", "OP", "WEIGHT", "PARAMS", "MACS", "INPUT", "OUTPUT", "NOTES"});
  table.AlignRight({0, 4, 5});
  int index = 0;
  for (const v1::Layer& l : m.analysis().layers()) {
    std::vector<std::string> notes;
    if (l.depthwise()) {
      notes.push_back("depthwise");
    } else if (l.grouped()) {
      notes.push_back(fmt::format("groups={}", l.groups()));
    }
    if (l.weight_type() != "float32") notes.push_back(l.weight_type());
    if (!l.subgraph().empty()) notes.push_back("in " + l.subgraph());
    if (l.channel_pruning() == v1::CHANNEL_PRUNING_NOT_ALLOWED)
      notes.push_back("channels kept: " + l.channel_pruning_note());
    if (l.shape_source() != v1::SHAPE_SOURCE_INFERRED)
      notes.push_back(std::string("shapes ") + ShapeSourceName(l.shape_source()));
    table.AddRow({std::to_string(index++), l.name(), l.op_type(), Dims(l.weight_shape()), Count(l.params()),
                  Count(l.macs()), Dims(l.input_shape()), Dims(l.output_shape()), absl::StrJoin(notes, ", ")});
  }
  table.Print(std::cout);
  const v1::ModelAnalysis& a = m.analysis();
  std::cout << fmt::format("\nTotals: {} params ({} of weights), {} MACs; other constants {}.\n",
                           Count(a.total_params()), FormatBytes(a.compressible_weight_bytes()), Count(a.total_macs()),
                           FormatBytes(a.other_initializer_bytes()));
  std::vector<std::string> ops;
  for (const auto& [op, count] : a.uncompressed_ops()) ops.push_back(fmt::format("{} x{}", op, count));
  std::sort(ops.begin(), ops.end());
  if (!ops.empty()) std::cout << "Not compressed: " << absl::StrJoin(ops, ", ") << "\n";
  return 0;
}

int Delete(const Connection& connection, const std::string& id) {
  auto stub = v1::ModelService::NewStub(connection.channel());
  v1::DeleteModelRequest request;
  request.set_id(id);
  v1::DeleteModelResponse response;
  grpc::Status status = stub->DeleteModel(connection.NewContext().get(), request, &response);
  if (!status.ok()) return connection.Fail(status, "models delete");
  if (connection.options().json) {
    std::cout << ToJson(response);
  } else {
    std::cout << "deleted " << id << "\n";
  }
  return 0;
}

}  // namespace

void AddModelsCommands(CLI::App& app, const GlobalOptions& options, int* exit_code) {
  CLI::App* models = app.add_subcommand("models", "Upload ONNX models and see what Squeeze understood of them");
  models->require_subcommand(1);

  CLI::App* upload = models->add_subcommand("upload", "Upload an ONNX model; prints its analysis");
  auto path = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto shapes = std::make_shared<std::vector<std::string>>();
  upload->add_option("FILE", *path, "The .onnx file")->required()->check(CLI::ExistingFile);
  upload->add_option("--name", *name, "Name to show (default: the file name)");
  upload->add_option("--input-shape", *shapes,
                     "Concrete shape of a symbolic input, NAME=D0,D1,... (repeatable), e.g. x=1,3,640,640");
  upload->callback(
      [&options, exit_code, path, name, shapes] { *exit_code = Upload(Connection(options), *path, *name, *shapes); });

  CLI::App* list = models->add_subcommand("list", "List your models");
  list->callback([&options, exit_code] { *exit_code = List(Connection(options)); });

  auto id = std::make_shared<std::string>();
  CLI::App* show = models->add_subcommand("show", "Show a model's compressible layers and totals");
  show->add_option("ID", *id, "Model id (from 'squeeze models list')")->required();
  show->callback([&options, exit_code, id] { *exit_code = Show(Connection(options), *id); });

  CLI::App* del = models->add_subcommand("delete", "Delete a model");
  del->add_option("ID", *id, "Model id")->required();
  del->callback([&options, exit_code, id] { *exit_code = Delete(Connection(options), *id); });
}

}  // namespace squeeze::client
