// squeeze export JOB --device ID (--candidate N | --recommendation NAME) -o FILE [--report FILE]
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "client/commands.h"
#include "client/fidelity_text.h"
#include "client/table.h"
#include "squeeze/v1/export.grpc.pb.h"

namespace squeeze::client {
namespace {

struct ExportArgs {
  std::string job;
  std::string device;
  int candidate = -1;
  std::string recommendation;
  std::string output;
  std::string report;
  std::string range = "percentile";
  std::string flavour;
  double deadline_s = 1800;
};

std::string Db(double db) { return std::isinf(db) ? "lossless" : fmt::format("{:.2f}", db); }

void PrintReport(const v1::ExportReport& r, const std::string& output) {
  std::cout << fmt::format("exported candidate {} of search {} for {} to {} ({}, sha256 {}){}\n", r.candidate(),
                           r.job_id(), r.device_id(), output, FormatBytes(static_cast<double>(r.file_bytes())),
                           r.file_sha256().substr(0, 12), r.from_cache() ? ", from an earlier export" : "");
  std::cout << "  plan: " << r.plan_summary() << "\n";
  const v1::Measurement& m = r.measured();
  Table table({"", "PREDICTED", "MEASURED"});
  table.AlignRight({1, 2});
  table.AddRow({"latency ms", fmt::format("{:.3f}", r.predicted_latency_ms()),
                m.latency_measured() ? fmt::format("{:.3f} (fp32 {:.3f}, {} threads)", m.latency_ms(),
                                                   m.original_latency_ms(), m.threads())
                                     : std::string("- (measured on 'host' only)")});
  table.AddRow({"size", FormatBytes(static_cast<double>(r.predicted_size_bytes())),
                fmt::format("{} packed, {} file", FormatBytes(static_cast<double>(r.packed_model_bytes())),
                            FormatBytes(static_cast<double>(r.file_bytes())))});
  table.AddRow(
      {"output SQNR dB", Db(r.predicted_sqnr_db()), fmt::format("{} (cosine {:.4f})", Db(m.sqnr_db()), m.cosine())});
  table.Print(std::cout);
  if (WorthShowing(m.outputs())) {
    std::cout << "  measured per output"
              << (m.weighted_over().empty() ? std::string() : " (the SQNR above: " + m.weighted_over() + ")") << ":\n";
    for (const v1::OutputFidelity& o : m.outputs()) std::cout << "    " << OutputFigures(o) << "\n";
  }
  std::string kernels;
  for (const auto& [op, count] : m.integer_ops())
    kernels += fmt::format("{}{}×{}", kernels.empty() ? "" : ", ", count, op);
  std::cout << fmt::format(
      "  ONNX Runtime integer kernels: {}; activations quantized: {}{}; float ops between quantized tensors: {}; "
      "channels removed: {}\n",
      kernels.empty() ? "none" : kernels, r.quantized_activations(),
      r.quantized_constants() > 0 ? fmt::format(" (and {} constants)", r.quantized_constants()) : "",
      r.float_ops_between_quantized(), r.removed_channels());
  if (!r.conformance().empty()) std::cout << "  conformance: " << r.conformance() << "\n";
  std::cout << fmt::format("  measured on {} {} samples, {} activation ranges; opset {}{}\n", m.samples(),
                           m.synthetic_calibration() ? "synthetic" : "uploaded", m.range_method(), r.opset(),
                           r.original_opset() != r.opset() ? fmt::format(" (from {})", r.original_opset()) : "");
  for (const v1::LayerExport& l : r.layers()) {
    if (!l.note().empty()) std::cout << "  " << l.layer() << " (" << l.option() << "): " << l.note() << "\n";
  }
  for (const std::string& w : r.warnings()) std::cout << "  note: " << w << "\n";
}

int Export(const Connection& connection, const ExportArgs& args) {
  v1::ExportRequest request;
  request.set_job_id(args.job);
  request.set_device_id(args.device);
  if (!args.recommendation.empty()) {
    request.set_recommendation(args.recommendation);
  } else {
    request.set_candidate(args.candidate);
  }
  request.set_range_method(args.range == "minmax" ? v1::RANGE_METHOD_MINMAX : v1::RANGE_METHOD_PERCENTILE);
  request.set_flavour(args.flavour);
  auto stub = v1::ExportService::NewStub(connection.channel());
  grpc::ClientContext context;
  connection.Authorize(context);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(args.deadline_s * 1000)));
  auto reader = stub->ExportModel(&context, request);
  // Written next to the target and renamed at the end: a failed export leaves no partial file.
  const std::string temp = args.output + ".partial";
  std::ofstream out;
  const bool tty = isatty(STDERR_FILENO);
  int64_t expected = 0, received = 0;
  v1::ExportReport report;
  bool have_report = false;
  v1::ExportChunk chunk;
  while (reader->Read(&chunk)) {
    switch (chunk.payload_case()) {
      case v1::ExportChunk::kProgress:
        if (chunk.progress().phase() == "sending") expected = std::atoll(chunk.progress().detail().c_str());
        if (!connection.options().json || tty) {
          std::cerr << chunk.progress().phase() << (chunk.progress().detail().empty() ? "" : ": ")
                    << chunk.progress().detail() << "\n";
        }
        break;
      case v1::ExportChunk::kData:
        if (!out.is_open()) out.open(temp, std::ios::binary | std::ios::trunc);
        out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
        received += static_cast<int64_t>(chunk.data().size());
        if (tty && expected > 0)
          std::cerr << fmt::format("\rreceiving {:3.0f}%", 100.0 * received / expected) << std::flush;
        break;
      case v1::ExportChunk::kReport:
        report = chunk.report();
        have_report = true;
        break;
      default:
        break;
    }
  }
  if (tty && expected > 0) std::cerr << "\n";
  grpc::Status status = reader->Finish();
  if (out.is_open()) out.close();
  if (!status.ok() || !have_report || !out || received != report.file_bytes()) {
    std::remove(temp.c_str());
    if (!status.ok()) return connection.Fail(status, "export");
    std::cerr << "export: the stream ended without the whole file and its report\n";
    return 1;
  }
  if (std::rename(temp.c_str(), args.output.c_str()) != 0) {
    std::remove(temp.c_str());
    std::cerr << "export: cannot write " << args.output << "\n";
    return 1;
  }
  if (!args.report.empty()) {
    std::ofstream r(args.report);
    r << ToJson(report);
    if (!r) {
      std::cerr << "export: cannot write " << args.report << "\n";
      return 1;
    }
  }
  if (connection.options().json) {
    std::cout << ToJson(report);
  } else {
    PrintReport(report, args.output);
  }
  return 0;
}

}  // namespace

void AddExportCommand(CLI::App& app, const GlobalOptions& options, int* exit_code) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Export a search candidate as a compressed (QDQ) ONNX file, run it and measure it against the prediction");
  cmd->add_option("JOB", args->job, "Search id")->required();
  cmd->add_option("--device", args->device, "Device of the front")->required();
  auto* candidate = cmd->add_option("--candidate", args->candidate, "Candidate index ('#' in 'squeeze search show')");
  auto* recommendation = cmd->add_option("--recommendation", args->recommendation,
                                         "A named pick instead: fastest, smallest, most accurate, balanced knee");
  candidate->excludes(recommendation);
  cmd->add_option("-o,--output", args->output, "Where to write the ONNX file")->required();
  cmd->add_option("--report", args->report, "Also write the export report (JSON) here");
  cmd->add_option("--range", args->range, "Activation ranges: percentile (default) or minmax")
      ->check(CLI::IsMember({"percentile", "minmax"}));
  cmd->add_option("--flavour", args->flavour,
                  "Export flavour instead of the device's ('squeeze devices show DEVICE' names it): ort-cpu, "
                  "tensorrt, qnn or runtime-precision; the predicted figures stay the device flavour's")
      ->check(CLI::IsMember({"ort-cpu", "tensorrt", "qnn", "runtime-precision"}));
  cmd->add_option("--deadline", args->deadline_s, "Seconds the export may take (default 1800)");
  cmd->callback([&options, exit_code, args] {
    if (args->candidate < 0 && args->recommendation.empty()) {
      std::cerr << "export: give --candidate N or --recommendation NAME\n";
      *exit_code = 1;
      return;
    }
    *exit_code = Export(Connection(options), *args);
  });
}

}  // namespace squeeze::client
