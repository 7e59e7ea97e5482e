// squeeze-bench-upload: upload + analysis throughput and the server's peak memory.
//
// Starts the real squeezed (a child process on 127.0.0.1, fresh data dir), uploads each model
// through ModelService.UploadModel several times (deleting it in between, so every upload is
// analysed), and reports the median wall time from first byte to the stored model, the
// throughput in MB/s, and the server's peak RSS (VmHWM). Models: PP-OCRv4 det and cls from
// .cache/models, plus a generated ~256 MB MatMul/Conv model to show large-file behaviour.
#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <onnx/onnx_pb.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "squeeze/v1/model.grpc.pb.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A model of `layers` MatMul layers, each [1, width] x [width, width] fp32, ~4·width² bytes each.
std::string LargeModel(int layers, int width) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("large");
  auto add_io = [width](onnx::ValueInfoProto* v, const std::string& name) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_value(1);
    t->mutable_shape()->add_dim()->set_dim_value(width);
  };
  add_io(g->add_input(), "x");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 0.02f);
  std::string previous = "x";
  for (int i = 0; i < layers; ++i) {
    onnx::TensorProto* w = g->add_initializer();
    w->set_name(fmt::format("w{}", i));
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(width);
    w->add_dims(width);
    std::string raw(static_cast<size_t>(width) * width * sizeof(float), '\0');
    float* values = reinterpret_cast<float*>(raw.data());
    for (size_t k = 0; k < static_cast<size_t>(width) * width; ++k) values[k] = normal(rng);
    w->set_raw_data(std::move(raw));
    onnx::NodeProto* n = g->add_node();
    n->set_op_type("MatMul");
    n->set_name(fmt::format("matmul{}", i));
    n->add_input(previous);
    n->add_input(w->name());
    previous = fmt::format("h{}", i);
    n->add_output(previous);
  }
  add_io(g->add_output(), previous);
  return model.SerializeAsString();
}

int64_t PeakRssKiB(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

struct Result {
  std::string name;
  int64_t bytes = 0;
  int layers = 0;
  double median_s = 0;
  double mb_per_s = 0;
  int64_t server_peak_rss_kib = 0;
};

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  int repeats = 3;
  std::string bin_dir = fs::path(argv[0]).parent_path().string();
  std::string models_dir = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models";
  CLI::App app{"squeeze-bench-upload: upload + analysis throughput (MB/s) and squeezed's peak RSS"};
  app.add_flag("--json", json, "Print the figures as JSON");
  app.add_option("--repeats", repeats, "Uploads per model (median reported)")->capture_default_str();
  app.add_option("--models-dir", models_dir, "Where the PP-OCR models are")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<std::pair<std::string, std::string>> models;
  for (const char* file : {"ch_ppocr_mobile_v2.0_cls_infer.onnx", "ch_PP-OCRv4_det_infer.onnx"}) {
    std::string bytes = ReadAll(models_dir + "/" + file);
    if (bytes.empty()) {
      std::cerr << "missing " << models_dir << "/" << file << ": run deploy/install-deps.sh\n";
      return 1;
    }
    models.emplace_back(file, std::move(bytes));
  }
  models.emplace_back("generated-matmul-16x2048 (256 MiB)", LargeModel(16, 2048));

  // One server for all uploads, so its peak RSS covers the largest model.
  std::string data_dir = fs::temp_directory_path() / fmt::format("squeeze-bench-upload-{}", getpid());
  std::string port_file = data_dir + ".port";
  std::vector<std::string> args = {bin_dir + "/squeezed", "--data-dir",  data_dir,  "--listen",
                                   "127.0.0.1:0",         "--port-file", port_file, "--max-model-bytes",
                                   "1073741824"};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  if (posix_spawn(&pid, cargs[0], &actions, nullptr, cargs.data(), environ) != 0) {
    std::cerr << "cannot start " << cargs[0] << "\n";
    return 1;
  }
  std::string port;
  for (int i = 0; i < 300 && port.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    port = ReadAll(port_file);
  }
  if (port.empty()) {
    std::cerr << "squeezed did not start\n";
    kill(pid, SIGKILL);
    return 1;
  }
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + port.substr(0, port.find('\n')), grpc::InsecureChannelCredentials());
  auto stub = squeeze::v1::ModelService::NewStub(channel);
  std::string key = ReadAll(data_dir + "/initial-api-key");
  key = key.substr(0, key.find('\n'));

  std::vector<Result> results;
  int status_code = 0;
  for (const auto& [name, bytes] : models) {
    Result r;
    r.name = name;
    r.bytes = static_cast<int64_t>(bytes.size());
    std::vector<double> seconds;
    for (int i = 0; i < repeats; ++i) {
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Bearer " + key);
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
      squeeze::v1::Model model;
      const auto start = std::chrono::steady_clock::now();
      auto writer = stub->UploadModel(&context, &model);
      squeeze::v1::UploadModelRequest request;
      request.mutable_metadata()->set_name(name);
      // The PP-OCR models have symbolic H/W: analyse them at the sizes their pipelines use.
      std::vector<int> dims;
      if (name.rfind("ch_PP-OCRv4_det", 0) == 0) dims = {1, 3, 640, 640};
      if (name.rfind("ch_ppocr_mobile", 0) == 0) dims = {1, 3, 48, 192};
      if (!dims.empty()) {
        squeeze::v1::InputShape* shape = request.mutable_metadata()->add_input_shapes();
        shape->set_name("x");
        for (int d : dims) shape->add_dims(d);
      }
      writer->Write(request);
      for (size_t offset = 0; offset < bytes.size(); offset += 1 << 20) {
        request.set_chunk(bytes.data() + offset, std::min<size_t>(1 << 20, bytes.size() - offset));
        if (!writer->Write(request)) break;
      }
      writer->WritesDone();
      grpc::Status status = writer->Finish();
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!status.ok()) {
        std::cerr << name << ": " << status.error_message() << "\n";
        status_code = 1;
        break;
      }
      seconds.push_back(elapsed);
      r.layers = model.analysis().layer_count();
      grpc::ClientContext del_context;
      squeeze::v1::DeleteModelRequest del;
      del.set_id(model.id());
      squeeze::v1::DeleteModelResponse del_response;
      (void)stub->DeleteModel(&del_context, del, &del_response);
    }
    if (seconds.empty()) continue;
    std::sort(seconds.begin(), seconds.end());
    r.median_s = seconds[seconds.size() / 2];
    r.mb_per_s = r.bytes / 1e6 / r.median_s;
    r.server_peak_rss_kib = PeakRssKiB(pid);
    results.push_back(r);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  fs::remove_all(data_dir);
  fs::remove(port_file);

  if (json) {
    std::cout << "[\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::cout << fmt::format(
          "  {{\"model\": \"{}\", \"bytes\": {}, \"layers\": {}, \"median_seconds\": {:.4f}, \"mb_per_s\": {:.1f}, "
          "\"server_peak_rss_mib\": {:.1f}}}{}\n",
          r.name, r.bytes, r.layers, r.median_s, r.mb_per_s, r.server_peak_rss_kib / 1024.0,
          i + 1 < results.size() ? "," : "");
    }
    std::cout << "]\n";
  } else {
    std::cout << fmt::format("{:<40} {:>10} {:>7} {:>10} {:>9} {:>14}\n", "model", "size", "layers", "median", "MB/s",
                             "server peak RSS");
    for (const Result& r : results) {
      std::cout << fmt::format("{:<40} {:>8.1f}MB {:>7} {:>9.3f}s {:>9.1f} {:>11.1f} MiB\n", r.name, r.bytes / 1e6,
                               r.layers, r.median_s, r.mb_per_s, r.server_peak_rss_kib / 1024.0);
    }
  }
  return status_code;
}
