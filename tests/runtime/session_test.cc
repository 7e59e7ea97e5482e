#include "runtime/session.h"

#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <thread>

namespace squeeze::runtime {
namespace {

using Catch::Matchers::Contains;

// y = relu(x @ W + b) with W = [[1, 2], [3, 4], [5, 6]], b = [-10, 0]; a symbolic batch dimension.
std::string SmallModel() {
  onnx::ModelProto model;
  onnx::Status status = onnx::OnnxParser::Parse(model, R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    small (float[N, 3] x) => (float[N, 2] y) {
      w = Constant <value = float[3, 2] w_init {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> ()
      b = Constant <value = float[2] b_init {-10.0, 0.0}> ()
      xw = MatMul (x, w)
      z = Add (xw, b)
      y = Relu (z)
    }
  )onnx");
  REQUIRE(status.IsOK());
  return model.SerializeAsString();
}

SessionOptions Threads(int n) {
  SessionOptions options;
  options.intra_op_threads = n;
  return options;
}

TEST_CASE("ONNX Runtime runs a small model built with libonnx", "[runtime]") {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(SmallModel(), Threads(1));
  INFO(session.status().ToString());
  REQUIRE(session.ok());
  REQUIRE((*session)->inputs().size() == 1);
  CHECK((*session)->inputs()[0].name == "x");
  CHECK((*session)->inputs()[0].shape == std::vector<int64_t>{-1, 3});
  CHECK((*session)->inputs()[0].dim_names[0] == "N");

  const float x[] = {1, 1, 1, 0, 0, 1};
  absl::StatusOr<std::vector<Tensor>> out = (*session)->Run({Tensor::Float("x", {2, 3}, x)});
  REQUIRE(out.ok());
  REQUIRE(out->size() == 1);
  CHECK((*out)[0].shape == std::vector<int64_t>{2, 2});
  // Row 1: [9, 12] + [-10, 0] -> relu -> [0, 12]; row 2: [5, 6] + b -> [0, 6].
  std::vector<float> y((*out)[0].floats().begin(), (*out)[0].floats().end());
  CHECK(y == std::vector<float>{0, 12, 0, 6});
}

TEST_CASE("The newest IR version ONNX Runtime loads is found, and is what it loads", "[runtime]") {
  const int64_t newest = MaxLoadableIrVersion();
  CHECK(newest >= 8);  // every supported ONNX Runtime loads IR 8 (ONNX 1.10)
  CHECK(MaxLoadableIrVersion() == newest);
  onnx::ModelProto model;
  REQUIRE(model.ParseFromString(SmallModel()));
  model.set_ir_version(newest);
  CHECK(Session::Create(model.SerializeAsString()).ok());
  model.set_ir_version(newest + 1);
  CHECK_FALSE(Session::Create(model.SerializeAsString()).ok());
}

TEST_CASE("Bad inputs and models come back as statuses", "[runtime]") {
  SECTION("bytes that are not a model") {
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create("definitely not onnx");
    REQUIRE_FALSE(session.ok());
    CHECK(session.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(session.status().message()), Contains("ONNX Runtime"));
  }
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(SmallModel());
  REQUIRE(session.ok());
  SECTION("a missing input") { CHECK((*session)->Run({}).status().code() == absl::StatusCode::kInvalidArgument); }
  SECTION("an unknown input") {
    const float v[] = {1, 2, 3};
    CHECK((*session)->Run({Tensor::Float("x", {1, 3}, v), Tensor::Float("nope", {1, 3}, v)}).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  SECTION("a shape that does not fit the model") {
    const float v[] = {1, 2, 3, 4};
    absl::StatusOr<std::vector<Tensor>> out = (*session)->Run({Tensor::Float("x", {1, 4}, v)});
    REQUIRE_FALSE(out.ok());
    CHECK_THAT(std::string(out.status().message()), Contains("ONNX Runtime"));
  }
  SECTION("zero threads") {
    CHECK(Session::Create(SmallModel(), Threads(0)).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Timing reports a positive median over the repeats", "[runtime]") {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(SmallModel());
  REQUIRE(session.ok());
  const float x[] = {1, 2, 3};
  absl::StatusOr<Timing> timing = (*session)->Time({Tensor::Float("x", {1, 3}, x)}, 2, 5);
  REQUIRE(timing.ok());
  CHECK(timing->repeats == 5);
  CHECK(timing->median_s > 0);
  CHECK(timing->min_s <= timing->median_s);
  CHECK_FALSE(OrtVersion().empty());
}

TEST_CASE("Timing with a minimum time repeats a fast model past min_repeats", "[runtime]") {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(SmallModel());
  REQUIRE(session.ok());
  const float x[] = {1, 2, 3, 4, 5, 6};
  const std::vector<Tensor> inputs = {Tensor::Float("x", {2, 3}, x)};
  TimingOptions options;
  options.warmup = 1;
  options.min_repeats = 3;
  options.max_repeats = 100000;
  options.min_time_s = 0.02;
  absl::StatusOr<Timing> timing = (*session)->Time(inputs, options);
  INFO(timing.status().ToString());
  REQUIRE(timing.ok());
  // One run of a 2x3 MatMul takes microseconds: 20 ms needs far more than 3.
  CHECK(timing->repeats > 3);
  CHECK(timing->total_s >= 0.02);
  CHECK(timing->min_s <= timing->p10_s);
  CHECK(timing->p10_s <= timing->median_s);
  CHECK(timing->median_s <= timing->p90_s);

  SECTION("max_repeats bounds it") {
    options.max_repeats = 4;
    options.min_time_s = 10;
    timing = (*session)->Time(inputs, options);
    REQUIRE(timing.ok());
    CHECK(timing->repeats == 4);
  }
  SECTION("bad counts and inputs are InvalidArgument") {
    options.min_repeats = 0;
    CHECK((*session)->Time(inputs, options).status().code() == absl::StatusCode::kInvalidArgument);
    options.min_repeats = 5;
    options.max_repeats = 4;
    CHECK((*session)->Time(inputs, options).status().code() == absl::StatusCode::kInvalidArgument);
    options.max_repeats = 5;
    CHECK((*session)->Time({Tensor::Float("y", {2, 3}, x)}, options).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("A run-memory limit caps what the sessions of the process hold together", "[runtime]") {
  const std::string how = "raise --the-flag";
  LimitRunMemory(int64_t{24} << 20, how);
  // 4,000,000 rows: the model's 4,000,000 × 2 result is 32 MB (its MatMul and Add fused), past the
  // 24 MiB cap; 100,000 rows need 0.8 MB.
  const std::vector<float> big(4'000'000 * 3, 1.0f);

  SECTION("A run whose values pass it fails saying so; a smaller run in the same session is served") {
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(SmallModel(), Threads(1));
    REQUIRE(session.ok());
    absl::StatusOr<std::vector<Tensor>> over = (*session)->Run({Tensor::Float("x", {4'000'000, 3}, big)});
    INFO(over.status().ToString());
    CHECK(over.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK_THAT(std::string(over.status().message()), Contains("0.02 GiB") && Contains(how));
    const std::vector<float> small(100'000 * 3, 1.0f);
    CHECK((*session)->Run({Tensor::Float("x", {100'000, 3}, small)}).ok());
  }

  SECTION("Sessions share one arena: a new cap takes effect once none is alive") {
    absl::StatusOr<std::unique_ptr<Session>> first = Session::Create(SmallModel(), Threads(1));
    REQUIRE(first.ok());
    LimitRunMemory(int64_t{64} << 20, how);
    absl::StatusOr<std::unique_ptr<Session>> second = Session::Create(SmallModel(), Threads(1));
    REQUIRE(second.ok());
    // Made while the first was alive, the second allocates from the same 24 MiB arena.
    CHECK_THAT(std::string((*second)->Run({Tensor::Float("x", {4'000'000, 3}, big)}).status().message()),
               Contains("0.02 GiB"));
    first->reset();
    second->reset();
    absl::StatusOr<std::unique_ptr<Session>> third = Session::Create(SmallModel(), Threads(1));
    REQUIRE(third.ok());
    absl::StatusOr<std::vector<Tensor>> served = (*third)->Run({Tensor::Float("x", {4'000'000, 3}, big)});
    INFO(served.status().ToString());
    CHECK(served.ok());
  }

  SECTION("Lifted, the run is served") {
    LimitRunMemory(0, "");
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(SmallModel(), Threads(1));
    REQUIRE(session.ok());
    CHECK((*session)->Run({Tensor::Float("x", {4'000'000, 3}, big)}).ok());
  }
  LimitRunMemory(0, "");
}

// y = x + 1 applied `steps` times in a chain of Add nodes over a float[n] input.
std::string AddChain(int steps) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  onnx::GraphProto* graph = model.mutable_graph();
  onnx::TensorProto* one = graph->add_initializer();
  one->set_name("one");
  one->set_data_type(onnx::TensorProto::FLOAT);
  one->add_float_data(1.0f);
  std::string previous = "x";
  for (int i = 0; i < steps; ++i) {
    onnx::NodeProto* add = graph->add_node();
    add->set_op_type("Add");
    add->add_input(previous);
    add->add_input("one");
    previous = i + 1 == steps ? "y" : "v" + std::to_string(i);
    add->add_output(previous);
  }
  for (const char* name : {"x", "y"}) {
    onnx::ValueInfoProto* value = std::string(name) == "x" ? graph->add_input() : graph->add_output();
    value->set_name(name);
    onnx::TypeProto_Tensor* type = value->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    type->mutable_shape()->add_dim()->set_dim_param("n");
  }
  return model.SerializeAsString();
}

TEST_CASE("A run past the run-time limit is stopped and fails saying so, a short one is served", "[runtime]") {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(AddChain(400), Threads(1));
  REQUIRE(session.ok());
  // 400 Adds over 4 M floats (16 MB each): over 100 ms on the fastest single core (memory-bound), far
  // past the 20 ms limit; 8 floats: microseconds.
  const std::vector<float> big(4'000'000, 0.0f), small(8, 0.0f);
  LimitRunTime(absl::Milliseconds(20), "raise --the-flag");
  absl::StatusOr<std::vector<Tensor>> stopped = (*session)->Run({Tensor::Float("x", {4'000'000}, big)});
  INFO(stopped.status().ToString());
  CHECK(stopped.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK_THAT(std::string(stopped.status().message()), Contains("20ms") && Contains("raise --the-flag"));
  absl::StatusOr<std::vector<Tensor>> served = (*session)->Run({Tensor::Float("x", {8}, small)});
  REQUIRE(served.ok());
  CHECK((*served)[0].floats()[0] == 400.0f);
  CHECK((*session)->Time({Tensor::Float("x", {4'000'000}, big)}, TimingOptions{0, 1, 1, 0}).status().code() ==
        absl::StatusCode::kDeadlineExceeded);
  LimitRunTime(absl::ZeroDuration(), "");
  CHECK((*session)->Run({Tensor::Float("x", {4'000'000}, big)}).ok());
}

TEST_CASE("Threads pinned to CPUs run the model", "[runtime]") {
  const std::vector<int> cpus = AllowedCpus();
  REQUIRE_FALSE(cpus.empty());
  CHECK(PinCurrentThread(-1).code() == absl::StatusCode::kInvalidArgument);
  CHECK(PinCurrentThread(1 << 20).code() == absl::StatusCode::kInvalidArgument);

  SessionOptions options;
  options.intra_op_threads = 2;
  options.pinned_cpus = {cpus[0]};
  CHECK(Session::Create(SmallModel(), options).status().code() == absl::StatusCode::kInvalidArgument);

  // On a thread of its own, so the test runner's thread keeps its affinity.
  options.pinned_cpus = {cpus[0], cpus.back()};
  absl::Status pinned, ran;
  std::thread worker([&] {
    pinned = PinCurrentThread(cpus[0]);
    if (!pinned.ok()) return;
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(SmallModel(), options);
    if (!session.ok()) {
      ran = session.status();
      return;
    }
    const float x[] = {1, 1, 1};
    ran = (*session)->Time({Tensor::Float("x", {1, 3}, x)}, TimingOptions{}).status();
    if (ran.ok() && AllowedCpus() != std::vector<int>{cpus[0]}) ran = absl::InternalError("not pinned");
  });
  worker.join();
  INFO(pinned.ToString() << " " << ran.ToString());
  CHECK(pinned.ok());
  CHECK(ran.ok());
}

}  // namespace
}  // namespace squeeze::runtime
