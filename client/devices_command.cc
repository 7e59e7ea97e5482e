// squeeze devices list | show ID | put PROFILE
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/table.h"
#include "device_profiles/profile_file.h"
#include "model/export_flavour.h"
#include "squeeze/v1/device.grpc.pb.h"

namespace squeeze::client {
namespace {

// The export flavour the device's runtime gets and the precisions its file can hold, e.g.
// "ort-cpu: w32a32, w16a32, w2..8a32, w2..8a8; MatMuls' w2..4a32 block-wise (MatMulNBits)".
std::string ExportFlavourSummary(const std::string& runtime) {
  const model::ExportFlavour flavour = model::FlavourForRuntime(runtime);
  std::vector<std::string> precisions;
  for (const auto& [w, a, label] :
       {std::make_tuple(32, 32, "w32a32"), std::make_tuple(16, 16, "w16a16"), std::make_tuple(16, 32, "w16a32"),
        std::make_tuple(8, 32, "w2..8a32"), std::make_tuple(8, 16, "w2..8a16"), std::make_tuple(8, 8, "w2..8a8")}) {
    if (model::Realizes(flavour, w, a)) precisions.push_back(label);
  }
  return absl::StrCat(model::FlavourName(flavour), ": ", absl::StrJoin(precisions, ", "),
                      model::WritesBlockWiseMatMuls(flavour) ? "; MatMuls' w2..4a32 block-wise (MatMulNBits)" : "");
}

// "Ampere GPU: 1024 CUDA cores ..." -> "Ampere GPU"; empty -> "CPU".
std::string ShortTarget(const std::string& accelerator) {
  if (accelerator.empty()) return "CPU";
  std::string out = accelerator.substr(0, accelerator.find_first_of(":("));
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

const char* ProvenanceName(v1::Provenance p) { return p == v1::PROVENANCE_MEASURED ? "measured" : "spec"; }

std::string OpKindName(v1::OpKind kind) {
  switch (kind) {
    case v1::OP_KIND_CONV:
      return "conv";
    case v1::OP_KIND_DEPTHWISE_CONV:
      return "depthwise";
    case v1::OP_KIND_CONV_TRANSPOSE:
      return "conv-transpose";
    case v1::OP_KIND_GEMM:
      return "gemm";
    case v1::OP_KIND_QUANTIZE_LINEAR:
      return "quantize";
    case v1::OP_KIND_DEQUANTIZE_LINEAR:
      return "dequantize";
    case v1::OP_KIND_ELEMENTWISE:
      return "elementwise";
    case v1::OP_KIND_TRANSPOSE:
      return "transpose";
    case v1::OP_KIND_MAX_POOL:
      return "max-pool";
    default:
      return "all";
  }
}

std::string SparsityName(v1::SparsityPattern s) {
  switch (s) {
    case v1::SPARSITY_PATTERN_UNSTRUCTURED:
      return "unstructured";
    case v1::SPARSITY_PATTERN_TWO_FOUR:
      return "2:4";
    case v1::SPARSITY_PATTERN_OUTPUT_CHANNEL:
      return "channel";
    default:
      return "dense";
  }
}

std::string PrecisionName(int w, int a) {
  if (w == 32 && a == 32) return "fp32";
  if (w == 16 && a == 16) return "fp16";
  if (w == 8 && a == 8) return "int8";
  return fmt::format("w{}a{}", w, a);
}

// The peak of the all-kinds dense row at (w, a), or 0.
double Peak(const v1::Device& d, int w, int a) {
  for (const v1::Capability& c : d.capabilities()) {
    if (c.op_kind() == v1::OP_KIND_UNSPECIFIED && c.weight_bits() == w && c.activation_bits() == a &&
        c.sparsity() == v1::SPARSITY_PATTERN_DENSE && c.native()) {
      return c.peak_ops_per_second();
    }
  }
  return 0;
}

int List(const Connection& connection) {
  auto stub = v1::DeviceService::NewStub(connection.channel());
  v1::ListDevicesResponse response;
  grpc::Status status = stub->ListDevices(connection.NewContext().get(), v1::ListDevicesRequest(), &response);
  if (!status.ok()) return connection.Fail(status, "devices list");
  if (connection.options().json) {
    std::cout << ToJson(response);
    return 0;
  }
  Table table({"ID", "VERSION", "NAME", "RUNTIME", "TARGET", "FP32 PEAK", "INT8 PEAK", "MEM BW", "RAM", "PROVENANCE",
               "SAMPLES"});
  table.AlignRight({1, 5, 6, 7, 8, 10});
  for (const v1::Device& d : response.devices()) {
    const double fp32 = Peak(d, 32, 32), int8 = Peak(d, 8, 8);
    table.AddRow({d.id(), std::to_string(d.version()), d.name(), d.runtime(), ShortTarget(d.accelerator()),
                  fp32 > 0 ? FormatRate(fp32, "op/s") : "-", int8 > 0 ? FormatRate(int8, "op/s") : "-",
                  FormatRate(d.memory_bandwidth_bytes_per_second(), "B/s"), FormatBytes(d.ram_bytes()),
                  ProvenanceName(d.provenance()), std::to_string(d.latency_sample_count())});
  }
  table.Print(std::cout);
  std::cout << response.devices_size() << " devices. 'squeeze devices show ID' gives sources and derivations.\n";
  return 0;
}

std::string SampleShape(const v1::LatencySample& s) {
  switch (s.op_kind()) {
    case v1::OP_KIND_GEMM:
      return fmt::format("{}x{}x{}", s.gemm_m(), s.gemm_k(), s.gemm_n());
    case v1::OP_KIND_QUANTIZE_LINEAR:
    case v1::OP_KIND_DEQUANTIZE_LINEAR:
    case v1::OP_KIND_ELEMENTWISE:
    case v1::OP_KIND_TRANSPOSE:
    case v1::OP_KIND_MAX_POOL:
      return fmt::format("{} elements", s.elements());
    default:
      return fmt::format("k{} s{} g{} {}>{} {}x{}", s.kernel(), s.stride(), s.groups(), s.in_channels(),
                         s.out_channels(), s.height(), s.width());
  }
}

void PrintConditions(const v1::ProfileConditions& c) {
  std::cout << fmt::format("\nMeasured by {} ({} mode) on {} at {}: {:.1f} s, {} thread(s), {} warm-up + {} runs",
                           c.tool(), c.mode(), c.host().empty() ? "?" : c.host(), c.measured_at(), c.duration_seconds(),
                           c.threads(), c.warmup_runs(), c.repeats());
  std::cout << fmt::format(
      "; CPU governor {}, {} (max {}); ONNX Runtime {}\n", c.cpu_governor().empty() ? "not readable" : c.cpu_governor(),
      c.cpu_frequency_khz() > 0 ? fmt::format("{:.2f} GHz", c.cpu_frequency_khz() / 1e6) : "clock not readable",
      c.cpu_max_frequency_khz() > 0 ? fmt::format("{:.2f} GHz", c.cpu_max_frequency_khz() / 1e6) : "?",
      c.runtime_version());
}

void PrintSamples(const v1::Device& d) {
  std::cout << "\nLatency samples (median, p10-p90; rate = 2 x MACs / median):\n";
  Table samples({"KIND", "SHAPE", "PRECISION", "SPARSITY", "MACS", "MEDIAN", "P10-P90", "RATE"});
  samples.AlignRight({4, 5, 6, 7});
  for (const v1::LatencySample& s : d.samples()) {
    std::string sparsity = SparsityName(s.sparsity());
    if (s.sparsity_ratio() > 0) sparsity += fmt::format(" {:.0f}%", 100 * s.sparsity_ratio());
    samples.AddRow({OpKindName(s.op_kind()), SampleShape(s), PrecisionName(s.weight_bits(), s.activation_bits()),
                    sparsity, s.macs() > 0 ? FormatRate(static_cast<double>(s.macs()), "") : "-",
                    fmt::format("{:.1f} us", s.latency_median_us()),
                    fmt::format("{:.1f}-{:.1f}", s.latency_p10_us(), s.latency_p90_us()),
                    s.macs() > 0 ? FormatRate(2.0 * s.macs() / (s.latency_median_us() * 1e-6), "op/s") : "-"});
  }
  samples.Print(std::cout);
  if (d.model_latencies_size() == 0) return;
  std::cout << "\nWhole-model latencies:\n";
  Table models({"ID", "MODEL", "SHA256", "VARIANT", "MEDIAN", "P10-P90", "SOURCE"});
  models.AlignRight({4, 5});
  for (const v1::ModelLatency& m : d.model_latencies()) {
    models.AddRow({m.id(), m.model_name(), m.model_sha256().substr(0, 12),
                   m.variant().empty() ? "as uploaded" : m.variant(),
                   fmt::format("{:.2f} ms", m.latency_median_us() / 1e3),
                   fmt::format("{:.2f}-{:.2f}", m.latency_p10_us() / 1e3, m.latency_p90_us() / 1e3), m.source()});
  }
  models.Print(std::cout);
}

int Show(const Connection& connection, const std::string& id, int64_t version, bool with_samples) {
  auto stub = v1::DeviceService::NewStub(connection.channel());
  v1::GetDeviceRequest request;
  request.set_id(id);
  request.set_version(version);
  request.set_include_samples(with_samples);
  v1::Device d;
  grpc::Status status = stub->GetDevice(connection.NewContext().get(), request, &d);
  if (!status.ok()) return connection.Fail(status, "devices show");
  if (connection.options().json) {
    std::cout << ToJson(d);
    return 0;
  }
  Table facts({"FIELD", "VALUE"});
  facts.AddRow({"id", fmt::format("{} (version {})", d.id(), d.version())});
  facts.AddRow({"name", d.name()});
  facts.AddRow({"vendor / SoC", fmt::format("{} / {}", d.vendor(), d.soc())});
  facts.AddRow({"OS", d.os()});
  facts.AddRow({"CPU", d.cpu()});
  facts.AddRow({"cores", std::to_string(d.cpu_cores())});
  facts.AddRow({"SIMD", absl::StrJoin(d.simd_features(), " ")});
  facts.AddRow({"accelerator", d.accelerator().empty() ? "none (CPU)" : d.accelerator()});
  facts.AddRow({"RAM", FormatBytes(d.ram_bytes())});
  facts.AddRow({"app memory budget", FormatBytes(d.app_memory_budget_bytes())});
  facts.AddRow({"memory bandwidth", FormatRate(d.memory_bandwidth_bytes_per_second(), "B/s")});
  facts.AddRow({"runtime", fmt::format("{} {} ({} threads)", d.runtime(), d.runtime_version(), d.threads())});
  facts.AddRow({"export flavour", ExportFlavourSummary(d.runtime())});
  facts.AddRow({"op overhead", fmt::format("{} us", d.op_overhead_us())});
  facts.AddRow({"provenance", ProvenanceName(d.provenance())});
  facts.AddRow({"latency samples", std::to_string(d.latency_sample_count())});
  facts.AddRow({"model latencies", std::to_string(d.model_latency_count())});
  facts.Print(std::cout);
  if (d.has_conditions()) PrintConditions(d.conditions());

  std::cout << "\nNative kernels (anything else is emulated at the cheapest native precision that holds it):\n";
  Table caps({"OPS", "PRECISION", "SPARSITY", "NATIVE", "PEAK", "EFFICIENCY", "PROVENANCE"});
  caps.AlignRight({4, 5});
  for (const v1::Capability& c : d.capabilities()) {
    caps.AddRow({OpKindName(c.op_kind()), PrecisionName(c.weight_bits(), c.activation_bits()),
                 SparsityName(c.sparsity()), c.native() ? "yes" : "no", FormatRate(c.peak_ops_per_second(), "op/s"),
                 fmt::format("{:.2f}", c.efficiency()), ProvenanceName(c.provenance())});
  }
  caps.Print(std::cout);
  std::cout << "\nSource: " << d.source() << "\nDerivation: " << d.derivation() << "\n";
  for (const v1::Capability& c : d.capabilities()) {
    std::cout << "  " << OpKindName(c.op_kind()) << " " << PrecisionName(c.weight_bits(), c.activation_bits()) << " "
              << SparsityName(c.sparsity()) << ": " << c.derivation() << "\n";
  }
  if (with_samples) {
    PrintSamples(d);
  } else if (d.latency_sample_count() > 0) {
    std::cout << "\n'squeeze devices show " << d.id() << " --samples' lists the " << d.latency_sample_count()
              << " measured samples.\n";
  }
  return 0;
}

int Put(const Connection& connection, const std::string& path, const std::string& id, const std::string& name,
        bool merge) {
  // Checked here first, so a bad file is explained before anything is sent.
  absl::StatusOr<device_profiles::Profile> profile = device_profiles::ReadProfileFile(path, /*require_device=*/!merge);
  if (!profile.ok()) {
    std::cerr << "squeeze devices put: " << profile.status().message()
              << "\n(squeeze-profile -o FILE writes a profile; see 'squeeze-profile --help')\n";
    return 2;
  }
  v1::PutDeviceProfileRequest request;
  request.set_id(id);
  request.set_name(name);
  request.set_merge(merge);
  *request.mutable_profile() = device_profiles::ToProto(*profile);
  if (merge && profile->device.id.empty()) request.mutable_profile()->clear_device();
  auto stub = v1::DeviceService::NewStub(connection.channel());
  v1::Device d;
  grpc::Status status = stub->PutDeviceProfile(connection.NewContext().get(), request, &d);
  if (!status.ok()) return connection.Fail(status, "devices put");
  if (connection.options().json) {
    std::cout << ToJson(d);
    return 0;
  }
  std::cout << fmt::format("{} version {}: {}, {} latency samples, {} model latencies{}.\n", d.id(), d.version(),
                           ProvenanceName(d.provenance()), d.latency_sample_count(), d.model_latency_count(),
                           merge ? " (merged into the previous version)" : "");
  std::cout << fmt::format(
      "Searches on '{}' now predict from these samples; 'squeeze devices show {} --samples' lists them.\n", d.id(),
      d.id());
  return 0;
}

}  // namespace

void AddDevicesCommands(CLI::App& app, const GlobalOptions& options, int* exit_code) {
  CLI::App* devices = app.add_subcommand("devices", "Device profiles: what each target runs and how fast");
  devices->require_subcommand(1);

  CLI::App* list = devices->add_subcommand("list", "List every device profile on the server");
  list->callback([&options, exit_code] { *exit_code = List(Connection(options)); });

  CLI::App* show = devices->add_subcommand("show", "Show one device: specs, native kernels, sources");
  auto id = std::make_shared<std::string>();
  auto version = std::make_shared<int64_t>(0);
  show->add_option("ID", *id, "Device id, e.g. host or raspberry-pi-5")->required();
  auto samples = std::make_shared<bool>(false);
  show->add_option("--version", *version, "Profile version (default: newest)");
  show->add_flag("--samples", *samples, "Also list the measured latency samples and whole-model latencies");
  show->callback(
      [&options, exit_code, id, version, samples] { *exit_code = Show(Connection(options), *id, *version, *samples); });

  CLI::App* put = devices->add_subcommand(
      "put", "Upload a measured profile (from squeeze-profile) as a new version of a device (admin key)");
  auto path = std::make_shared<std::string>();
  auto put_id = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto merge = std::make_shared<bool>(false);
  put->add_option("PROFILE", *path, "Profile file written by squeeze-profile -o")->required()->check(CLI::ExistingFile);
  put->add_option("--id", *put_id, "Device id to store it under, e.g. host (lowercase, digits, '-')")->required();
  put->add_option("--name", *name, "Display name (default: the profile's)");
  put->add_flag("--merge", *merge,
                "Merge into the newest version: samples and model latencies replace those with the same id, the rest "
                "are kept; the profile may hold model latencies only");
  put->callback([&options, exit_code, path, put_id, name, merge] {
    *exit_code = Put(Connection(options), *path, *put_id, *name, *merge);
  });
}

}  // namespace squeeze::client
