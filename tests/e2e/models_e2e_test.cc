// Model upload, listing and deletion through the real server; every bad input is refused with
// its status code and leaves the store as it was.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel.h>
#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>
#include <thread>

#include "squeeze/v1/model.grpc.pb.h"
#include "tests/e2e/server_fixture.h"

namespace squeeze::testing {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

const std::string kDetModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_PP-OCRv4_det_infer.onnx";
const std::string kClsModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

// Files in the blob store: committed blobs and unfinished uploads.
struct StoreFiles {
  int blobs = 0;
  int temporary = 0;
  bool operator==(const StoreFiles& o) const { return blobs == o.blobs && temporary == o.temporary; }
};

StoreFiles CountStoreFiles(const std::string& data_dir) {
  StoreFiles files;
  std::error_code error;
  for (const auto& entry : fs::recursive_directory_iterator(data_dir + "/blobs", error)) {
    if (!entry.is_regular_file()) continue;
    if (entry.path().parent_path().filename() == "tmp") {
      ++files.temporary;
    } else {
      ++files.blobs;
    }
  }
  return files;
}

class ModelClient {
 public:
  ModelClient(const std::string& address, std::string key)
      : stub_(v1::ModelService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
        key_(std::move(key)) {}

  void Authorize(grpc::ClientContext& context) const { context.AddMetadata("authorization", "Bearer " + key_); }

  grpc::Status Upload(const std::string& bytes, v1::Model* model, const std::string& name = "test.onnx",
                      std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {}) {
    grpc::ClientContext context;
    Authorize(context);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto writer = stub_->UploadModel(&context, model);
    v1::UploadModelRequest request;
    request.mutable_metadata()->set_name(name);
    for (const auto& [input, dims] : shapes) {
      v1::InputShape* shape = request.mutable_metadata()->add_input_shapes();
      shape->set_name(input);
      for (int64_t d : dims) shape->add_dims(d);
    }
    bool open = writer->Write(request);
    for (size_t offset = 0; open && offset < bytes.size(); offset += 1 << 20) {
      request.set_chunk(bytes.substr(offset, 1 << 20));
      open = writer->Write(request);
    }
    if (open) writer->WritesDone();
    return writer->Finish();
  }

  int ListCount() {
    grpc::ClientContext context;
    Authorize(context);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListModelsResponse response;
    REQUIRE(stub_->ListModels(&context, v1::ListModelsRequest(), &response).ok());
    return response.models_size();
  }

  v1::ModelService::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<v1::ModelService::Stub> stub_;
  std::string key_;
};

std::string ReadBinary(const std::string& path) {
  std::string bytes = ReadText(path);
  REQUIRE_FALSE(bytes.empty());
  return bytes;
}

std::string ParseText(const char* text) {
  onnx::ModelProto model;
  REQUIRE(onnx::OnnxParser::Parse(model, text).IsOK());
  return model.SerializeAsString();
}

constexpr char kTinyConv[] = R"onnx(
  <ir_version: 8, opset_import: ["" : 17]>
  tiny (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
    w = Constant <value = float[3, 2, 1, 1] w_init {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> ()
    y = Conv (x, w)
  }
)onnx";

TEST_CASE("Uploading PP-OCRv4 det reports its 62 Conv and 2 ConvTranspose layers", "[e2e][models]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  CommandResult upload = server.Cli({"--json", "models", "upload", kDetModel, "--input-shape", "x=1,3,640,640"});
  INFO(upload.err << server.log());
  REQUIRE(upload.exit_code == 0);
  v1::Model model;
  REQUIRE(google::protobuf::util::JsonStringToMessage(upload.out, &model).ok());
  const v1::ModelAnalysis& a = model.analysis();
  int conv = 0, conv_transpose = 0, grouped = 0;
  int64_t params = 0, macs = 0;
  for (const v1::Layer& l : a.layers()) {
    conv += l.op_type() == "Conv";
    conv_transpose += l.op_type() == "ConvTranspose";
    grouped += l.grouped();
    params += l.params();
    macs += l.macs();
    CHECK(l.macs() > 0);
    CHECK(l.weight_storage() == "constant_node");
  }
  CHECK(conv == 62);
  CHECK(conv_transpose == 2);
  CHECK(grouped > 0);
  CHECK(a.grouped_layers() == grouped);
  CHECK(params == a.total_params());
  CHECK(macs == a.total_macs());
  CHECK(model.sha256().size() == 64);
  CHECK(model.size_bytes() == static_cast<int64_t>(fs::file_size(kDetModel)));

  // The table view, the listing, and the same upload answered with the same model.
  CommandResult show = server.Cli({"models", "show", model.id()});
  REQUIRE(show.exit_code == 0);
  CHECK_THAT(show.out, Contains("ConvTranspose") && Contains("Totals"));
  CommandResult again = server.Cli({"--json", "models", "upload", kDetModel, "--input-shape", "x=1,3,640,640"});
  REQUIRE(again.exit_code == 0);
  v1::Model second;
  REQUIRE(google::protobuf::util::JsonStringToMessage(again.out, &second).ok());
  CHECK(second.id() == model.id());
  CHECK(CountStoreFiles(dir.File("data")).blobs == 1);

  CommandResult list = server.Cli({"models", "list"});
  REQUIRE(list.exit_code == 0);
  CHECK_THAT(list.out, Contains(model.id()) && Contains("1 models"));

  CommandResult del = server.Cli({"models", "delete", model.id()});
  REQUIRE(del.exit_code == 0);
  CHECK(CountStoreFiles(dir.File("data")) == StoreFiles{});
  CHECK(server.Cli({"models", "show", model.id()}).exit_code == 1);
}

TEST_CASE("A symbolic batch gets batch 1 and says so while other symbolic dims need a shape", "[e2e][models]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  ModelClient client(server.address(), server.admin_key());
  v1::Model model;
  grpc::Status status = client.Upload(ParseText(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    batched (float[N, 2, 4, 4] x) => (float[N, 3, 4, 4] y) {
      w = Constant <value = float[3, 2, 1, 1] w_init {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> ()
      y = Conv (x, w)
    }
  )onnx"),
                                      &model, "batched.onnx");
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(model.analysis().defaulted_dims_size() == 1);
  CHECK_THAT(model.analysis().defaulted_dims(0), Contains("batch"));
  CHECK(model.analysis().layers(0).macs() == 1 * 3 * 4 * 4 * 2);
  // Its one Conv writes the graph output: its channels are what the task means, never pruned.
  CHECK(model.analysis().layers(0).channel_pruning() == v1::CHANNEL_PRUNING_NOT_ALLOWED);
  CHECK_THAT(model.analysis().layers(0).channel_pruning_note(), Contains("graph output 'y'"));

  // The PP-OCR classifier's height and width are symbolic: the error says how to give them.
  status = client.Upload(ReadBinary(kClsModel), &model, "cls.onnx");
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Contains("--input-shape x="));
  status = client.Upload(ReadBinary(kClsModel), &model, "cls.onnx", {{"x", {1, 3, 48, 192}}});
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(model.analysis().layer_count() == 54);
  // Its convs may be pruned; its classifier head (a MatMul whose outputs are the class scores) not.
  int allowed = 0;
  for (const v1::Layer& l : model.analysis().layers()) {
    allowed += l.channel_pruning() == v1::CHANNEL_PRUNING_ALLOWED ? 1 : 0;
    if (l.channel_pruning() == v1::CHANNEL_PRUNING_NOT_ALLOWED) CHECK_FALSE(l.channel_pruning_note().empty());
  }
  CHECK(allowed > 0);
  const v1::Layer& head = model.analysis().layers(model.analysis().layers_size() - 1);
  CHECK(head.channel_pruning() == v1::CHANNEL_PRUNING_NOT_ALLOWED);
  CommandResult show = server.Cli({"models", "show", model.id()});
  REQUIRE(show.exit_code == 0);
  CHECK_THAT(show.out, Contains("channels kept: " + head.channel_pruning_note()));
}

TEST_CASE("Bad uploads are refused with their status code and change nothing", "[e2e][models]") {
  TempDir dir;
  RunningServer server(dir.File("data"), {"--max-model-bytes", "3000000"});
  ModelClient client(server.address(), server.admin_key());
  v1::Model kept;
  REQUIRE(client.Upload(ParseText(kTinyConv), &kept, "tiny.onnx").ok());
  const StoreFiles before = CountStoreFiles(dir.File("data"));
  REQUIRE(before.blobs == 1);

  auto expect_refused = [&](const std::string& bytes, grpc::StatusCode code, const std::string& words,
                            std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {}) {
    v1::Model model;
    grpc::Status status = client.Upload(bytes, &model, "bad.onnx", shapes);
    INFO(status.error_message());
    CHECK(status.error_code() == code);
    CHECK_THAT(status.error_message(), Contains(words, Catch::CaseSensitive::No));
    CHECK(CountStoreFiles(dir.File("data")) == before);
    CHECK(client.ListCount() == 1);
  };

  SECTION("bytes that are not ONNX") {
    expect_refused(std::string(5000, '\x07') + "not a model", grpc::StatusCode::INVALID_ARGUMENT, "onnx");
  }
  SECTION("an empty file") { expect_refused("", grpc::StatusCode::INVALID_ARGUMENT, "empty"); }
  SECTION("a truncated file") {
    std::string cls = ReadBinary(kClsModel);
    expect_refused(cls.substr(0, cls.size() / 2), grpc::StatusCode::INVALID_ARGUMENT, "");
  }
  SECTION("a graph that fails validation") {
    expect_refused(ParseText(R"onnx(
      <ir_version: 8, opset_import: ["" : 17]>
      broken (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
        y = Conv (x, missing_weight)
      }
    )onnx"),
                   grpc::StatusCode::INVALID_ARGUMENT, "missing_weight");
  }
  SECTION("weights with NaN") {
    onnx::ModelProto model;
    REQUIRE(model.ParseFromString(ParseText(kTinyConv)));
    onnx::TensorProto* w = model.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_t();
    w->set_float_data(1, std::numeric_limits<float>::quiet_NaN());
    expect_refused(model.SerializeAsString(), grpc::StatusCode::INVALID_ARGUMENT, "NaN");
  }
  SECTION("no compressible layer") {
    expect_refused(ParseText(R"onnx(
      <ir_version: 8, opset_import: ["" : 17]>
      relu_only (float[1, 4] x) => (float[1, 4] y) {
        y = Relu (x)
      }
    )onnx"),
                   grpc::StatusCode::INVALID_ARGUMENT, "compressible");
  }
  SECTION("a tensor whose data does not match its shape") {
    onnx::ModelProto model;
    REQUIRE(model.ParseFromString(ParseText(kTinyConv)));
    onnx::TensorProto* w = model.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_t();
    w->clear_float_data();
    w->set_raw_data(std::string(5 * sizeof(float), '\0'));  // 5 values for a 3x2x1x1 tensor
    expect_refused(model.SerializeAsString(), grpc::StatusCode::INVALID_ARGUMENT, "");
  }
  SECTION("an input shape of the wrong rank") {
    expect_refused(ParseText(kTinyConv), grpc::StatusCode::INVALID_ARGUMENT, "x", {{"x", {1, 2, 4}}});
  }
  SECTION("an IR version newer than ONNX Runtime loads") {
    onnx::ModelProto model;
    REQUIRE(model.ParseFromString(ParseText(kTinyConv)));
    model.set_ir_version(int64_t{1} << 40);
    expect_refused(model.SerializeAsString(), grpc::StatusCode::INVALID_ARGUMENT, "ir_version 1099511627776");
  }
  SECTION("a model over the size limit") {
    expect_refused(ReadBinary(kDetModel), grpc::StatusCode::RESOURCE_EXHAUSTED, "3000000");
  }
}

TEST_CASE("An upload cancelled half-way leaves nothing behind", "[e2e][models]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  ModelClient client(server.address(), server.admin_key());
  const std::string bytes = ReadBinary(kDetModel);
  {
    grpc::ClientContext context;
    client.Authorize(context);
    v1::Model model;
    auto writer = client.stub().UploadModel(&context, &model);
    v1::UploadModelRequest request;
    request.mutable_metadata()->set_name("det.onnx");
    REQUIRE(writer->Write(request));
    request.set_chunk(bytes.substr(0, bytes.size() / 2));
    REQUIRE(writer->Write(request));
    // The server has begun storing the upload before the client gives up.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (CountStoreFiles(dir.File("data")).temporary == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(CountStoreFiles(dir.File("data")).temporary == 1);
    context.TryCancel();
    CHECK(writer->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(CountStoreFiles(dir.File("data")) == StoreFiles{}) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(CountStoreFiles(dir.File("data")) == StoreFiles{});
  CHECK(client.ListCount() == 0);
}

TEST_CASE("A stalled upload is ended after the idle timeout, and uploads in flight count against the quota",
          "[e2e][models][quota]") {
  TempDir dir;
  const std::string cls = ReadBinary(kClsModel);
  const int64_t quota = static_cast<int64_t>(cls.size()) * 3 / 2;
  RunningServer server(dir.File("data"), {"--upload-idle-timeout", "1", "--quota-stored-bytes", std::to_string(quota)});
  ModelClient client(server.address(), server.admin_key());
  // A stream that announces the whole file, sends 1 KiB and stalls.
  grpc::ClientContext stalled_context;
  client.Authorize(stalled_context);
  v1::Model stalled_model;
  auto stalled = client.stub().UploadModel(&stalled_context, &stalled_model);
  v1::UploadModelRequest request;
  request.mutable_metadata()->set_name("stalled.onnx");
  request.mutable_metadata()->set_size_bytes(static_cast<int64_t>(cls.size()));
  REQUIRE(stalled->Write(request));
  request.set_chunk(cls.substr(0, 1024));
  REQUIRE(stalled->Write(request));
  // While it is in flight, its announced bytes are held: the same file again would pass the quota.
  v1::Model model;
  grpc::Status second = client.Upload(cls, &model, "second.onnx");
  CHECK(second.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK_THAT(second.error_message(), Contains("in flight") && Contains("--quota-stored-bytes"));
  // The server ends the stalled stream by itself and drops its bytes.
  const grpc::Status ended = stalled->Finish();
  CHECK(ended.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK_THAT(ended.error_message(), Contains("--upload-idle-timeout") && Contains("1024 bytes"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (CountStoreFiles(dir.File("data")).temporary != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(CountStoreFiles(dir.File("data")) == StoreFiles{});
  // Its quota is free again, and an upload that keeps sending is never cut off.
  const grpc::Status third = client.Upload(cls, &model, "cls.onnx", {{"x", {1, 3, 48, 192}}});
  INFO(third.error_message());
  REQUIRE(third.ok());
  CHECK(client.ListCount() == 1);
}

TEST_CASE("An upload that ends short of its announced size stores nothing", "[e2e][models]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  ModelClient client(server.address(), server.admin_key());
  const std::string cls = ReadBinary(kClsModel);
  grpc::ClientContext context;
  client.Authorize(context);
  v1::Model model;
  auto writer = client.stub().UploadModel(&context, &model);
  v1::UploadModelRequest request;
  request.mutable_metadata()->set_name("cls.onnx");
  request.mutable_metadata()->set_size_bytes(static_cast<int64_t>(cls.size()));
  REQUIRE(writer->Write(request));
  request.set_chunk(cls.substr(0, cls.size() / 2));
  REQUIRE(writer->Write(request));
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(),
             Contains(std::to_string(cls.size() / 2) + " of the " + std::to_string(cls.size())));
  CHECK(client.ListCount() == 0);
  CHECK(CountStoreFiles(dir.File("data")) == StoreFiles{});
}

TEST_CASE("The CLI checks --input-shape before sending anything", "[e2e][models]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  CommandResult result = server.Cli({"models", "upload", kClsModel, "--input-shape", "x=1,three"});
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.err, Contains("positive integer"));
  CHECK(CountStoreFiles(dir.File("data")) == StoreFiles{});
}

}  // namespace
}  // namespace squeeze::testing
