#include "search/engine/option_table.h"

#include <catch2/catch.hpp>
#include <limits>

#include "search/engine/option_table_csv.h"
#include "search/engine/search_spec.h"
#include "tests/search/test_tables.h"

namespace squeeze::search {
namespace {

OptionTable TwoLayers() {
  OptionTable table;
  table.fixed = FixedCost{10, 1000, 300};
  table.layers.push_back(Layer{"a", {{"fp32", 5, 400, 0, 100}, {"int8", 2, 100, 0.01, 50}}});
  table.layers.push_back(Layer{"b", {{"fp32", 7, 800, 0, 500}, {"int8", 3, 200, 0.02, 250}}});
  return table;
}

TEST_CASE("Evaluate sums additive objectives and takes the peak activation", "[table]") {
  const OptionTable table = TwoLayers();
  const ObjectiveValues v = Evaluate(table, {1, 0}).value();
  CHECK(v.latency == 10 + 2 + 7);
  CHECK(v.size == 1000 + 100 + 800);
  CHECK(v.error == Approx(0.01));
  CHECK(v.peak_memory == 1900 + 500);
  // The fixed ops' activations set the peak when every layer's are smaller.
  CHECK(Evaluate(table, {1, 1}).value().peak_memory == 1000 + 100 + 200 + 300);
}

TEST_CASE("Evaluate rejects malformed choices", "[table]") {
  const OptionTable table = TwoLayers();
  CHECK(Evaluate(table, {0}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Evaluate(table, {0, 2}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ValidateOptionTable names the problem", "[table]") {
  CHECK(ValidateOptionTable(TwoLayers()).ok());
  CHECK(ValidateOptionTable(OptionTable{}).code() == absl::StatusCode::kInvalidArgument);
  OptionTable table = TwoLayers();
  table.layers[1].options.clear();
  CHECK(ValidateOptionTable(table).code() == absl::StatusCode::kInvalidArgument);
  table = TwoLayers();
  table.layers[0].options[1].error = -1;
  CHECK(ValidateOptionTable(table).code() == absl::StatusCode::kInvalidArgument);
  table = TwoLayers();
  table.layers[0].options[1].latency = std::numeric_limits<double>::quiet_NaN();
  CHECK(ValidateOptionTable(table).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ValidateSearchSpec rejects bad objectives, limits and references", "[table]") {
  SearchSpec spec;
  CHECK(ValidateSearchSpec(spec).ok());
  spec.objectives = {};
  CHECK(ValidateSearchSpec(spec).code() == absl::StatusCode::kInvalidArgument);
  spec.objectives = {Objective::kError, Objective::kError};
  CHECK(ValidateSearchSpec(spec).code() == absl::StatusCode::kInvalidArgument);
  spec = SearchSpec{};
  spec.constraints.max_latency = -1;
  CHECK(ValidateSearchSpec(spec).code() == absl::StatusCode::kInvalidArgument);
  spec = SearchSpec{};
  spec.reference = {1, 2, 3};
  CHECK(ValidateSearchSpec(spec).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Default reference and ideal point bound every configuration", "[table]") {
  const OptionTable table = TwoLayers();
  SearchSpec spec;
  spec.objectives = {Objective::kLatency, Objective::kPeakMemory};
  spec.constraints.max_latency = 18;
  CHECK(DefaultReference(table, spec) == std::vector<double>{18, 1000 + 400 + 800 + 500});
  CHECK(IdealPoint(table, spec) == std::vector<double>{10 + 2 + 3, 1000 + 100 + 200 + 300});
}

TEST_CASE("CSV round-trips a table exactly", "[table][csv]") {
  const OptionTable table = testing::RandomTable(7, 9, 3);
  const std::string text = FormatOptionTableCsv(table).value();
  const OptionTable back = ParseOptionTableCsv(text).value();
  REQUIRE(back.layers.size() == table.layers.size());
  CHECK(back.fixed.latency == table.fixed.latency);
  CHECK(back.fixed.activation_bytes == table.fixed.activation_bytes);
  for (size_t i = 0; i < table.layers.size(); ++i) {
    CHECK(back.layers[i].name == table.layers[i].name);
    REQUIRE(back.layers[i].options.size() == table.layers[i].options.size());
    for (size_t j = 0; j < table.layers[i].options.size(); ++j) {
      const LayerOption& a = table.layers[i].options[j];
      const LayerOption& b = back.layers[i].options[j];
      CHECK(a.label == b.label);
      CHECK(a.latency == b.latency);
      CHECK(a.bytes == b.bytes);
      CHECK(a.error == b.error);
      CHECK(a.activation_bytes == b.activation_bytes);
    }
  }
}

TEST_CASE("CSV parsing reports the offending line", "[table][csv]") {
  const std::string header = "layer,option,latency,bytes,error,activation_bytes\n";
  CHECK(ParseOptionTableCsv("# only a comment\n").status().code() == absl::StatusCode::kInvalidArgument);
  auto bad_number = ParseOptionTableCsv(header + "a,x,1,2,3,4\na,y,1,two,3,4\n");
  REQUIRE(bad_number.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad_number.status().message().find("line 3") != absl::string_view::npos);
  CHECK(ParseOptionTableCsv(header + "a,x,1,2,3,4\nb,x,1,2,3,4\na,y,1,2,3,4\n").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(ParseOptionTableCsv(header + "a,x,1,2,3\n").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ParseOptionTableCsv(header + "a,x,1,2,-3,4\n").status().code() == absl::StatusCode::kInvalidArgument);
  const auto ok = ParseOptionTableCsv("# t\n" + header + "__fixed__,,1,2,0,3\n\na,x,1,2,3,4\n");
  REQUIRE(ok.ok());
  CHECK(ok->fixed.bytes == 2);
  CHECK(ok->layers.size() == 1);
}

TEST_CASE("CSV writing refuses names it could not read back", "[table][csv]") {
  OptionTable table = TwoLayers();
  table.layers[0].options[0].label = "w8,a8";
  CHECK(FormatOptionTableCsv(table).status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace squeeze::search
