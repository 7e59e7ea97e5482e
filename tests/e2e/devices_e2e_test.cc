// The device-profile database served over gRPC, through the real binaries.
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>

#include "device_profiles/profile_store.h"
#include "squeeze/v1/device.pb.h"
#include "tests/e2e/server_fixture.h"

namespace squeeze::testing {
namespace {

using Catch::Matchers::Contains;

template <typename Message>
Message ParseJson(const std::string& json) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  INFO(json);
  REQUIRE(status.ok());
  return message;
}

TEST_CASE("devices list --json lists the seed devices and this machine with sources", "[e2e]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  CommandResult list = server.Cli({"devices", "list", "--json"});
  INFO(list.err);
  REQUIRE(list.exit_code == 0);
  auto response = ParseJson<v1::ListDevicesResponse>(list.out);
  CHECK(response.devices_size() >= 9);
  bool has_host = false;
  for (const v1::Device& d : response.devices()) {
    INFO(d.id());
    CHECK_FALSE(d.source().empty());
    CHECK(d.provenance() == v1::PROVENANCE_SPEC);
    CHECK(d.capabilities_size() > 0);
    has_host = has_host || d.id() == "host";
  }
  CHECK(has_host);

  CommandResult table = server.Cli({"devices", "list"});
  REQUIRE(table.exit_code == 0);
  CHECK_THAT(table.out, Contains("ID") && Contains("host"));
  CHECK(server.Stop() == 0);
}

TEST_CASE("devices show host gives this machine's cores and SIMD features", "[e2e]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  CommandResult show = server.Cli({"devices", "show", "host", "--json"});
  INFO(show.err);
  REQUIRE(show.exit_code == 0);
  auto host = ParseJson<v1::Device>(show.out);
  CHECK(host.id() == "host");
  CHECK(host.cpu_cores() >= 1);
  CHECK(host.simd_features_size() > 0);
  CHECK(host.memory_bandwidth_bytes_per_second() > 0);

  CommandResult text = server.Cli({"devices", "show", "host"});
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Contains("cores") && Contains("Derivation"));
  // Which file its exports are, and the precisions that file can hold: no 16-bit activations on
  // ONNX Runtime's CPU provider; a Core ML phone computes fp16.
  CHECK_THAT(text.out, Contains("export flavour     ort-cpu: w32a32, w16a32, w2..8a32, w2..8a8; MatMuls' w2..4a32 "
                                "block-wise (MatMulNBits)"));
  CommandResult phone = server.Cli({"devices", "show", "iphone-15-pro"});
  CHECK_THAT(phone.out, Contains("export flavour     runtime-precision: w32a32, w16a16"));
}

TEST_CASE("An unknown device is NOT_FOUND naming the id", "[e2e]") {
  TempDir dir;
  RunningServer server(dir.File("data"));
  CommandResult show = server.Cli({"devices", "show", "pixel-99"});
  CHECK(show.exit_code == 1);
  CHECK_THAT(show.err, Contains("NOT_FOUND") && Contains("pixel-99"));
}

TEST_CASE("An unreachable server is a one-line error with the address and a non-zero exit", "[e2e]") {
  TempDir dir;
  std::string address;
  {
    RunningServer server(dir.File("data"));
    address = server.address();
  }  // stopped: nothing listens on that port now
  CommandResult result = Run({Binary("squeeze"), "--server", address, "--timeout", "5", "devices", "list"});
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.err, Contains(address) && Contains("squeezed"));
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);

  CommandResult from_env = Run({Binary("squeeze"), "devices", "list"}, {{"SQUEEZE_SERVER", address}});
  CHECK(from_env.exit_code == 2);
  CHECK_THAT(from_env.err, Contains(address));
}

TEST_CASE("A second start on the same data dir keeps everything and does not re-seed", "[e2e]") {
  TempDir dir;
  const std::string data = dir.File("data");
  int seeded = 0;
  {
    RunningServer server(data);
    seeded = ParseJson<v1::ListDevicesResponse>(server.Cli({"devices", "list", "--json"}).out).devices_size();
    REQUIRE(server.Stop() == 0);
  }
  {
    // A team's own board, added to the database between runs.
    auto store = device_profiles::ProfileStore::Open(data + "/profiles.db");
    REQUIRE(store.ok());
    auto board = (*store)->GetDevice("host");
    REQUIRE(board.ok());
    board->id = "lab-board";
    board->name = "Our lab board";
    REQUIRE((*store)->PutDevice(*board, {}).ok());
  }
  RunningServer server(data);
  auto response = ParseJson<v1::ListDevicesResponse>(server.Cli({"devices", "list", "--json"}).out);
  CHECK(response.devices_size() == seeded + 1);
  // Not re-seeded: each device at the version the first start left it (the seed migration gave the
  // iPhone its version 2 then).
  for (const v1::Device& d : response.devices()) CHECK(d.version() == (d.id() == "iphone-15-pro" ? 2 : 1));
  CHECK(server.Cli({"devices", "show", "lab-board"}).exit_code == 0);
}

TEST_CASE("squeezed refuses a malformed listen address with a clear message", "[e2e]") {
  TempDir dir;
  CommandResult result = Run({Binary("squeezed"), "--data-dir", dir.File("data"), "--listen", "nonsense"});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Contains("HOST:PORT"));
}

TEST_CASE("Both binaries explain themselves with --help", "[e2e]") {
  CommandResult server_help = Run({Binary("squeezed"), "--help"});
  CHECK(server_help.exit_code == 0);
  CHECK_THAT(server_help.out, Contains("--data-dir") && Contains("--listen") && Contains("--port-file"));
  CommandResult client_help = Run({Binary("squeeze"), "--help"});
  CHECK(client_help.exit_code == 0);
  CHECK_THAT(client_help.out, Contains("devices") && Contains("--server"));
  CommandResult devices_help = Run({Binary("squeeze"), "devices", "--help"});
  CHECK(devices_help.exit_code == 0);
  CHECK_THAT(devices_help.out, Contains("list") && Contains("show"));
}

}  // namespace
}  // namespace squeeze::testing
