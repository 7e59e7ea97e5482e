// squeeze devices list | show ID
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/table.h"
#include "squeeze/v1/device.grpc.pb.h"

namespace squeeze::client {
namespace {

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
    case v1::OP_KIND_CONV: return "conv";
    case v1::OP_KIND_DEPTHWISE_CONV: return "depthwise";
    case v1::OP_KIND_CONV_TRANSPOSE: return "conv-transpose";
    case v1::OP_KIND_GEMM: return "gemm";
    default: return "all";
  }
}

std::string SparsityName(v1::SparsityPattern s) {
  switch (s) {
    case v1::SPARSITY_PATTERN_UNSTRUCTURED: return "unstructured";
    case v1::SPARSITY_PATTERN_TWO_FOUR: return "2:4";
    case v1::SPARSITY_PATTERN_OUTPUT_CHANNEL: return "channel";
    default: return "dense";
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
  Table table({"ID", "NAME", "RUNTIME", "TARGET", "FP32 PEAK", "INT8 PEAK", "MEM BW", "RAM", "PROVENANCE"});
  table.AlignRight({4, 5, 6, 7});
  for (const v1::Device& d : response.devices()) {
    const double fp32 = Peak(d, 32, 32), int8 = Peak(d, 8, 8);
    table.AddRow({d.id(), d.name(), d.runtime(), ShortTarget(d.accelerator()),
                  fp32 > 0 ? FormatRate(fp32, "op/s") : "-", int8 > 0 ? FormatRate(int8, "op/s") : "-",
                  FormatRate(d.memory_bandwidth_bytes_per_second(), "B/s"), FormatBytes(d.ram_bytes()),
                  ProvenanceName(d.provenance())});
  }
  table.Print(std::cout);
  std::cout << response.devices_size() << " devices. 'squeeze devices show ID' gives sources and derivations.\n";
  return 0;
}

int Show(const Connection& connection, const std::string& id, int64_t version) {
  auto stub = v1::DeviceService::NewStub(connection.channel());
  v1::GetDeviceRequest request;
  request.set_id(id);
  request.set_version(version);
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
  facts.AddRow({"op overhead", fmt::format("{} us", d.op_overhead_us())});
  facts.AddRow({"provenance", ProvenanceName(d.provenance())});
  facts.AddRow({"latency samples", std::to_string(d.latency_sample_count())});
  facts.Print(std::cout);

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
    std::cout << "  " << OpKindName(c.op_kind()) << " " << PrecisionName(c.weight_bits(), c.activation_bits())
              << " " << SparsityName(c.sparsity()) << ": " << c.derivation() << "\n";
  }
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
  show->add_option("--version", *version, "Profile version (default: newest)");
  show->callback([&options, exit_code, id, version] { *exit_code = Show(Connection(options), *id, *version); });
}

}  // namespace squeeze::client
