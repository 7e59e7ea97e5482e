// The checks a request passes before anything is looked up (server/search_spec.h): each bad field
// is refused with the code a person can act on, naming the field.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "server/search_spec.h"

namespace squeeze::server {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("An upload's metadata is checked before any byte is stored", "[request-checks]") {
  v1::UploadMetadata m;
  m.set_name("det.onnx");
  m.set_size_bytes(1000);
  CHECK(ValidateUploadMetadata(m, 2000).ok());
  v1::UploadMetadata unnamed = m;
  unnamed.clear_name();
  CHECK(ValidateUploadMetadata(unnamed, 2000).code() == absl::StatusCode::kInvalidArgument);
  v1::UploadMetadata long_name = m;
  long_name.set_name(std::string(kMaxModelNameLength + 1, 'a'));
  CHECK_THAT(std::string(ValidateUploadMetadata(long_name, 2000).message()), Contains("longer than 200"));
  v1::UploadMetadata negative = m;
  negative.set_size_bytes(-1);
  CHECK(ValidateUploadMetadata(negative, 2000).code() == absl::StatusCode::kInvalidArgument);
  const absl::Status large = ValidateUploadMetadata(m, 999);
  CHECK(large.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(large.message()), Contains("--max-model-bytes"));
}

TEST_CASE("An upload's input shapes are checked with its metadata and read back from their stored form",
          "[request-checks]") {
  v1::UploadMetadata m;
  m.set_name("det.onnx");
  v1::InputShape* x = m.add_input_shapes();
  x->set_name("x=image");  // a name may hold '=': the dimensions follow the last one
  for (int64_t d : {1, 3, 640, 640}) x->add_dims(d);
  v1::InputShape* sr = m.add_input_shapes();
  sr->set_name("sr");
  sr->add_dims(1);
  REQUIRE(ValidateUploadMetadata(m, 2000).ok());
  const auto shapes = InputShapesOf(m.input_shapes());
  REQUIRE(shapes.ok());
  CHECK(CanonicalInputShapes(*shapes) == "sr=1;x=image=1,3,640,640");
  const auto stored = ParseShapes(CanonicalInputShapes(*shapes));
  REQUIRE(stored.ok());
  CHECK(*stored == *shapes);

  for (const auto& [why, edit] : std::vector<std::pair<std::string, std::function<void(v1::UploadMetadata*)>>>{
           {"no input name", [](v1::UploadMetadata* u) { u->mutable_input_shapes(0)->clear_name(); }},
           {"';' or a control character", [](v1::UploadMetadata* u) { u->mutable_input_shapes(0)->set_name("a;b"); }},
           {"';' or a control character",
            [](v1::UploadMetadata* u) { u->mutable_input_shapes(0)->set_name("x\nINFO rpc"); }},
           {"longer than 256",
            [](v1::UploadMetadata* u) { u->mutable_input_shapes(0)->set_name(std::string(300, 'x')); }},
           {"has no dimensions", [](v1::UploadMetadata* u) { u->mutable_input_shapes(0)->clear_dims(); }},
           {"has dimension 0", [](v1::UploadMetadata* u) { u->mutable_input_shapes(0)->set_dims(0, 0); }},
           {"has dimension 9223372036854775807",
            [](v1::UploadMetadata* u) {
              u->mutable_input_shapes(0)->set_dims(1, std::numeric_limits<int64_t>::max());
            }},
           {"at most 64 are taken",
            [](v1::UploadMetadata* u) {
              for (int i = 0; i < 70; ++i) u->mutable_input_shapes(0)->add_dims(1);
            }},
           {"given two shapes", [](v1::UploadMetadata* u) { u->mutable_input_shapes(1)->set_name("x=image"); }},
           {"at most 256 are taken",
            [](v1::UploadMetadata* u) {
              for (int i = 0; i < 300; ++i) *u->add_input_shapes() = u->input_shapes(1);
            }},
       }) {
    v1::UploadMetadata bad = m;
    edit(&bad);
    const absl::Status s = ValidateUploadMetadata(bad, 2000);
    INFO(why);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(s.message()), Contains(why));
  }
}

TEST_CASE("An export request names a job, a device and a candidate it can have", "[request-checks]") {
  v1::ExportRequest r;
  r.set_job_id("s-0123456789abcdef");
  r.set_device_id("host");
  r.set_candidate(0);
  CHECK(ValidateExportRequest(r).ok());
  for (const auto& [field, edit] : std::vector<std::pair<std::string, std::function<void(v1::ExportRequest*)>>>{
           {"job_id", [](v1::ExportRequest* e) { e->clear_job_id(); }},
           {"device_id", [](v1::ExportRequest* e) { e->clear_device_id(); }},
           {"candidate is -3", [](v1::ExportRequest* e) { e->set_candidate(-3); }},
           {"recommendation is empty", [](v1::ExportRequest* e) { e->set_recommendation(""); }},
           {"range_method 7", [](v1::ExportRequest* e) { e->set_range_method(static_cast<v1::RangeMethod>(7)); }},
       }) {
    v1::ExportRequest bad = r;
    edit(&bad);
    const absl::Status s = ValidateExportRequest(bad);
    INFO(field << ": " << s.message());
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(s.message()), Contains(field));
  }
}

TEST_CASE("A recommendation request is checked as a search's limits are", "[request-checks]") {
  v1::RecommendRequest r;
  r.set_model_id("m-0123456789abcdef");
  r.set_device_id("host");
  CHECK(ValidateRecommendRequest(r).ok());
  v1::RecommendRequest no_model = r;
  no_model.clear_model_id();
  CHECK_THAT(std::string(ValidateRecommendRequest(no_model).message()), Contains("model_id"));
  v1::RecommendRequest budget = r;
  budget.set_time_budget_seconds(std::numeric_limits<double>::infinity());
  CHECK_THAT(std::string(ValidateRecommendRequest(budget).message()), Contains("time_budget_seconds"));
  v1::RecommendRequest floor = r;
  floor.mutable_constraints()->set_min_mask_iou(-0.5);
  CHECK_THAT(std::string(ValidateRecommendRequest(floor).message()), Contains("constraints.min_mask_iou"));
  v1::RecommendRequest output_floor = r;
  output_floor.mutable_constraints()->set_min_output_sqnr_db(std::nan(""));
  CHECK_THAT(std::string(ValidateRecommendRequest(output_floor).message()), Contains("constraints.min_output_sqnr_db"));
}

}  // namespace
}  // namespace squeeze::server
