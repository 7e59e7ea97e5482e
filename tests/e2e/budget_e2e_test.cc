// Budgets through the real binaries: squeezed limited to 2 GiB of address space (prlimit --as, as a
// container's limit would) is sent the memory bombs of issue 16 — a few hundred bytes of model
// whose values need gigabytes, a real model at a huge input shape, a search asking for 2^31
// candidates — and answers each with a clear error while it keeps serving another team.
#include <grpcpp/create_channel.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include "squeeze/v1/model.pb.h"
#include "squeeze/v1/search.grpc.pb.h"
#include "tests/e2e/server_fixture.h"

namespace squeeze::testing {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

const std::string kClsModel = std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

// The memory bombs kept as fuzz seeds: ConstantOfShape makes 10^9 floats (3.7 GiB) summed into a
// Conv's input, known from shapes; and 5·10^8 bytes of ones (inside the budget) whose NonZero is
// 4 GB of int64 indices that only running the model shows, its count slicing the Conv's input so
// that the shape probe must run it.
const std::string kSeeds = std::string(SQUEEZE_SOURCE_DIR) + "/fuzz/seeds/model_load/";

TEST_CASE("Under a 2 GiB limit, memory bombs get clear errors and another team is still served", "[e2e][budget]") {
  TempDir dir;
  // glibc reserves 64 MiB of address space per malloc arena, up to 8 per core: on a many-core
  // machine that alone would fill 2 GiB, so the server is held to two arenas.
  RunningServer server(dir.File("data"), {},
                       {"/usr/bin/env", "MALLOC_ARENA_MAX=2", "/usr/bin/prlimit", "--as=2147483648", "--"});
  const std::string beta = server.CreateKey("beta");
  const std::string alpha = server.CreateKey("alpha");
  const std::string reduce_bomb = kSeeds + "reduce_bomb.onnx";
  const std::string nonzero_bomb = kSeeds + "nonzero_bomb_u8.onnx";

  // Row 4: refused from the shapes, before anything runs.
  CommandResult reduce = server.CliAs(alpha, {"models", "upload", reduce_bomb});
  CHECK(reduce.exit_code != 0);
  CHECK_THAT(reduce.err, Contains("RESOURCE_EXHAUSTED") && Contains("3.73 GiB") && Contains("--max-activation-bytes"));
  // Row 2: the shape probe runs it in a bounded child, which runs out of its budget, not the server.
  CommandResult nonzero = server.CliAs(alpha, {"models", "upload", nonzero_bomb});
  CHECK(nonzero.exit_code != 0);
  CHECK_THAT(nonzero.err, Contains("RESOURCE_EXHAUSTED") && Contains("NonZero") && Contains("--max-activation-bytes"));
  // Row 3: a real model at a shape whose values pass the budget.
  CommandResult huge = server.CliAs(alpha, {"models", "upload", kClsModel, "--input-shape", "x=1,3,2400,9600"});
  CHECK(huge.exit_code != 0);
  CHECK_THAT(huge.err, Contains("RESOURCE_EXHAUSTED") && Contains("--input-shape"));
  CHECK_THAT(server.CliAs(alpha, {"models", "list"}).out, Contains("0 models"));

  // Row 5: a search asking for 2^31 - 1 candidates, refused naming the field.
  const v1::Model cls =
      Parse<v1::Model>(server.CliAs(alpha, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  auto stub = v1::SearchService::NewStub(server.Channel());
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + alpha);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::SearchSpec spec;
  spec.set_model_id(cls.id());
  spec.add_device_ids("host");
  spec.set_max_candidates(2147483647);
  v1::SearchJob refused;
  const grpc::Status many = stub->StartSearch(&context, spec, &refused);
  CHECK(many.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(many.error_message(), Contains("max_candidates"));

  // The server is alive and serves another team end to end: upload, search, result.
  REQUIRE(::kill(server.pid(), 0) == 0);
  const v1::Model mine =
      Parse<v1::Model>(server.CliAs(beta, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  const v1::SearchJob job = Parse<v1::SearchJob>(
      server.CliAs(beta, {"--json", "search", "start", mine.id(), "--device", "host", "--time-budget", "3", "--watch"},
                   std::chrono::seconds(240)));
  CHECK(job.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(job.fronts_size() == 1);
  CHECK(server.Stop() == 0);
}

TEST_CASE("A search whose ONNX Runtime runs need more than --search-memory fails naming it, and the next is served",
          "[e2e][budget]") {
  TempDir dir;
  // 48 MiB: cls at 480×1920 holds about 50 MB of values at once, at 48×192 a hundredth of that.
  RunningServer server(dir.File("data"), {"--search-memory", std::to_string(48 << 20)});
  const std::string alpha = server.CreateKey("alpha");
  const v1::Model big = Parse<v1::Model>(
      server.CliAs(alpha, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,480,1920"}));
  const CommandResult watched =
      server.CliAs(alpha, {"--json", "search", "start", big.id(), "--device", "host", "--time-budget", "3", "--watch"},
                   std::chrono::seconds(240));
  INFO(watched.out << watched.err);
  CHECK(watched.exit_code != 0);
  v1::SearchJob failed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(watched.out, &failed).ok());
  CHECK(failed.state() == v1::JOB_STATE_FAILED);
  CHECK_THAT(failed.error(), StartsWith("RESOURCE_EXHAUSTED") && Contains("0.05 GiB") &&
                                 Contains("raise squeezed --search-memory") && !Contains("--calibration"));

  // Its runs ended, the memory they held is free again: a search that fits is served.
  const v1::Model small =
      Parse<v1::Model>(server.CliAs(alpha, {"--json", "models", "upload", kClsModel, "--input-shape", "x=1,3,48,192"}));
  const v1::SearchJob served = Parse<v1::SearchJob>(server.CliAs(
      alpha, {"--json", "search", "start", small.id(), "--device", "host", "--time-budget", "3", "--watch"},
      std::chrono::seconds(240)));
  CHECK(served.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(server.Stop() == 0);
}

}  // namespace
}  // namespace squeeze::testing
