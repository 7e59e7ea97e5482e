// The transformer test models (bench/models/transformer_model.h) are what they claim: ONNX Runtime
// runs them on synthetic token ids or mel frames, their parameters are counted right, and the
// analysis finds every projection as a layer.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>

#include "bench/models/transformer_model.h"
#include "model/loader.h"
#include "runtime/calibration.h"
#include "runtime/session.h"

namespace squeeze::bench {
namespace {

int64_t LearnedParameters(const onnx::ModelProto& model) {
  int64_t n = 0;
  for (const onnx::TensorProto& t : model.graph().initializer()) {
    if (t.name().rfind("const/", 0) == 0) continue;
    int64_t count = 1;
    for (int64_t d : t.dims()) count *= d;
    n += count;
  }
  return n;
}

TEST_CASE("Each transformer test model runs, and the analysis finds its projections as layers", "[transformer]") {
  struct Expected {
    const char* preset;
    int matmuls, convs;
    const char* output;
    std::vector<int64_t> output_shape;
  };
  for (const Expected& e : {Expected{"tiny-encoder", 12, 0, "last_hidden_state", {1, 16, 64}},
                            // The tied LM head (MatMul by the token table's Transpose) is no layer yet.
                            Expected{"tiny-lm", 12, 0, "logits", {1, 16, 1000}},
                            Expected{"tiny-speech", 12, 2, "last_hidden_state", {1, 16, 64}}}) {
    DYNAMIC_SECTION(e.preset) {
      const std::optional<TransformerShape> shape = TransformerPreset(e.preset);
      REQUIRE(shape.has_value());
      absl::StatusOr<onnx::ModelProto> built = BuildTransformer(*shape);
      REQUIRE(built.ok());
      CHECK(LearnedParameters(*built) == TransformerParameters(*shape));
      const std::string bytes = built->SerializeAsString();
      absl::StatusOr<model::LoadedModel> loaded = model::LoadModel(bytes, {});
      INFO(loaded.status().ToString());
      REQUIRE(loaded.ok());
      std::map<std::string, int> kinds;
      for (const model::Layer& layer : loaded->analysis.layers) ++kinds[layer.op_type];
      CHECK(kinds["MatMul"] == e.matmuls);
      CHECK(kinds["Conv"] == e.convs);
      CHECK(loaded->analysis.layers.size() == static_cast<size_t>(e.matmuls + e.convs));

      absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(bytes);
      REQUIRE(session.ok());
      absl::StatusOr<runtime::CalibrationSet> inputs =
          runtime::SyntheticCalibration(loaded->analysis, (*session)->inputs(), 1, 3);
      REQUIRE(inputs.ok());
      absl::StatusOr<std::vector<runtime::Tensor>> out = (*session)->Run(inputs->samples[0]);
      INFO(out.status().ToString());
      REQUIRE(out.ok());
      REQUIRE(out->size() == 1);
      CHECK((*out)[0].name == e.output);
      CHECK((*out)[0].shape == e.output_shape);
      double energy = 0;
      for (float v : (*out)[0].floats()) {
        REQUIRE(std::isfinite(v));
        energy += static_cast<double>(v) * v;
      }
      CHECK(energy > 0);
    }
  }
}

TEST_CASE("Transformer shapes no model can have are refused, saying why", "[transformer]") {
  TransformerShape odd_heads = *TransformerPreset("tiny-encoder");
  odd_heads.heads = 3;
  absl::StatusOr<onnx::ModelProto> refused = BuildTransformer(odd_heads);
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.status().message()), Catch::Matchers::Contains("multiple of heads"));
  TransformerShape odd_frames = *TransformerPreset("tiny-speech");
  odd_frames.sequence = 31;
  CHECK(BuildTransformer(odd_frames).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(TransformerPreset("gpt-5").has_value());
  // bert-base is BERT-base's size (110 M with its pooler and token types, which this one lacks).
  CHECK(TransformerParameters(*TransformerPreset("bert-base")) == Approx(108.6e6).epsilon(0.01));
}

}  // namespace
}  // namespace squeeze::bench
