#include "model/output_weights.h"

#include <catch2/catch.hpp>
#include <limits>

#include "absl/status/status.h"
#include "tests/model/test_models.h"

namespace squeeze::model {
namespace {

using Catch::Matchers::Contains;

// A box map, a mask and an integer class id, as a detector might give them.
onnx::ModelProto Detector() {
  return testing::ParseModel(R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    detector (float[1, 4] x) => (float[1, 4] boxes, float16[1, 4] mask, int64[1] label) {
      boxes = Relu (x)
      half = Cast <to = 10> (x)
      mask = Sigmoid (half)
      label = ArgMax <axis = 1, keepdims = 0> (x)
    }
  )onnx");
}

TEST_CASE("Output weights: every float output weighs the same unless outputs are named", "[output-weights]") {
  const std::vector<GraphOutput> outputs = GraphOutputs(Detector());
  REQUIRE(outputs.size() == 3);
  CHECK(outputs[0].is_float);
  CHECK(outputs[1].is_float);  // fp16
  CHECK_FALSE(outputs[2].is_float);

  absl::StatusOr<std::vector<double>> equal = ResolveOutputWeights(outputs, {});
  REQUIRE(equal.ok());
  CHECK(*equal == std::vector<double>{0.5, 0.5, 0.0});
  CHECK(DescribeOutputWeights(outputs, *equal, false) == "equal over 2 outputs");

  absl::StatusOr<std::vector<double>> named = ResolveOutputWeights(outputs, {{"mask", 3}, {"boxes", 1}});
  REQUIRE(named.ok());
  CHECK(*named == std::vector<double>{0.25, 0.75, 0.0});
  CHECK(DescribeOutputWeights(outputs, *named, true) == "boxes 0.25, mask 0.75");

  // Named alone: the others weigh nothing.
  absl::StatusOr<std::vector<double>> mask_only = ResolveOutputWeights(outputs, {{"mask", 1}, {"boxes", 0}});
  REQUIRE(mask_only.ok());
  CHECK(*mask_only == std::vector<double>{0.0, 1.0, 0.0});
}

TEST_CASE("Output weights the model cannot take are refused with its outputs listed", "[output-weights]") {
  const std::vector<GraphOutput> outputs = GraphOutputs(Detector());
  absl::StatusOr<std::vector<double>> unknown = ResolveOutputWeights(outputs, {{"scores", 1}});
  CHECK(unknown.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(unknown.status().message()),
             Contains("no output 'scores'") && Contains("'boxes', 'mask'") && Contains("'label' (not float)"));

  absl::StatusOr<std::vector<double>> integer = ResolveOutputWeights(outputs, {{"label", 1}});
  CHECK(integer.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(integer.status().message()), Contains("'label' is not float"));

  for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    absl::StatusOr<std::vector<double>> w = ResolveOutputWeights(outputs, {{"mask", bad}});
    CHECK(w.status().code() == absl::StatusCode::kInvalidArgument);
  }
  absl::StatusOr<std::vector<double>> zero = ResolveOutputWeights(outputs, {{"mask", 0}, {"boxes", 0}});
  CHECK(zero.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(zero.status().message()), Contains("weighs 0"));

  const std::vector<GraphOutput> ints = {{"label", false}};
  CHECK(ResolveOutputWeights(ints, {}).status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace squeeze::model
