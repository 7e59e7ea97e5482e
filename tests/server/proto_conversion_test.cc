#include "server/proto_conversion.h"

#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "server/status.h"
#include "tests/device_profiles/test_device.h"

namespace squeeze::server {
namespace {

namespace dp = device_profiles;

TEST_CASE("A device survives the round trip through its proto", "[proto_conversion]") {
  dp::Device d = dp::TestDevice();
  dp::Capability dw = d.capabilities[0];
  dw.op_kind = dp::OpKind::kDepthwiseConv;
  dw.sparsity = dp::Sparsity::kTwoFour;
  dw.provenance = dp::Provenance::kMeasured;
  d.capabilities.push_back(dw);
  d.latency_sample_count = 42;

  v1::Device proto = ToProto(d);
  CHECK(proto.capabilities(0).op_kind() == v1::OP_KIND_UNSPECIFIED);
  CHECK(proto.capabilities(2).op_kind() == v1::OP_KIND_DEPTHWISE_CONV);
  CHECK(proto.capabilities(2).sparsity() == v1::SPARSITY_PATTERN_TWO_FOUR);
  CHECK(proto.simd_features_size() == 2);

  absl::StatusOr<dp::Device> back = FromProto(proto);
  REQUIRE(back.ok());
  CHECK(back->id == d.id);
  CHECK(back->memory_bandwidth_bytes_per_s == d.memory_bandwidth_bytes_per_s);
  CHECK(back->simd_features == d.simd_features);
  REQUIRE(back->capabilities.size() == 3);
  CHECK_FALSE(back->capabilities[0].op_kind.has_value());
  CHECK(back->capabilities[2].op_kind == dp::OpKind::kDepthwiseConv);
  CHECK(back->capabilities[2].provenance == dp::Provenance::kMeasured);
  CHECK(back->latency_sample_count == 42);
}

TEST_CASE("A sensitivity report survives the round trip through its proto, every shape kept", "[proto_conversion]") {
  // The cache stores reports as protos: a field left out would make a cached search predict
  // differently from a fresh one.
  runtime::SensitivityReport r;
  r.synthetic_calibration = true;
  r.samples = 2;
  r.noise_energy = 1e-5;
  r.weighted_over = "equal over 2 outputs";
  r.warnings = {"a warning"};
  runtime::LayerSensitivity l;
  l.layer = "conv";
  l.weight = 0.5;
  l.measured = true;
  l.exercised = false;
  l.quantization = {{8, 0.4}, {4, 0.7}, {2, 1.5}};
  l.pruning = {{"unstructured 50%", 0.9}, {"unstructured 90%", 0.6}, {"2:4", 2.5}};
  l.channel_energy = {0.75, 0.25};
  l.channel_removal = 3.0;
  l.activation_error = {{8, 1e-3}, {16, 1e-7}};
  l.int8_symmetric_activation_error = 2e-3;
  l.input_range = {-1.5f, 2.5f};
  r.layers.push_back(l);
  const runtime::SensitivityReport back = FromProto(ToProto(r));
  REQUIRE(back.layers.size() == 1);
  const runtime::LayerSensitivity& b = back.layers[0];
  CHECK(b.layer == l.layer);
  CHECK(b.weight == l.weight);
  CHECK(b.measured == l.measured);
  CHECK(b.exercised == l.exercised);
  CHECK(b.quantization == l.quantization);
  CHECK(b.pruning == l.pruning);
  CHECK(b.channel_energy == l.channel_energy);
  CHECK(b.channel_removal == l.channel_removal);
  CHECK(b.activation_error == l.activation_error);
  CHECK(b.int8_symmetric_activation_error == l.int8_symmetric_activation_error);
  CHECK(b.input_range.min == l.input_range.min);
  CHECK(b.input_range.max == l.input_range.max);
  CHECK(back.synthetic_calibration == r.synthetic_calibration);
  CHECK(back.samples == r.samples);
  CHECK(back.noise_energy == r.noise_energy);
  CHECK(back.weighted_over == r.weighted_over);
  CHECK(back.warnings == r.warnings);
}

TEST_CASE("An unspecified sparsity is InvalidArgument naming the capability", "[proto_conversion]") {
  v1::Device proto = ToProto(dp::TestDevice());
  proto.mutable_capabilities(1)->set_sparsity(v1::SPARSITY_PATTERN_UNSPECIFIED);
  absl::StatusOr<dp::Device> back = FromProto(proto);
  REQUIRE(back.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(back.status().message().find("capabilities[1]") != absl::string_view::npos);
}

TEST_CASE("Status codes keep their meaning across the gRPC boundary", "[status]") {
  grpc::Status s = ToGrpcStatus(absl::NotFoundError("no device 'x'"));
  CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(s.error_message() == "no device 'x'");
  CHECK(ToGrpcStatus(absl::ResourceExhaustedError("quota")).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "key")).code() ==
        absl::StatusCode::kUnauthenticated);
  CHECK(ToGrpcStatus(absl::OkStatus()).ok());
  // A message that would echo a huge value crosses the wire cut, saying how long it was.
  const grpc::Status huge = ToGrpcStatus(absl::InvalidArgumentError(std::string(8 << 20, 'x')));
  CHECK(huge.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(huge.error_message().size() < 2200);
  CHECK(huge.error_message().find("of 8388608 bytes") != std::string::npos);
}

}  // namespace
}  // namespace squeeze::server

namespace squeeze::server {
namespace {

TEST_CASE("A candidate's layer choices become the export plan, in the analysis' order", "[proto_conversion]") {
  model::Analysis analysis;
  analysis.layers.resize(2);
  analysis.layers[0].name = "conv_a";
  analysis.layers[1].name = "conv_b";
  v1::Candidate c;
  v1::LayerChoice* a = c.add_layers();
  a->set_layer("conv_a");
  a->set_weight_bits(4);
  a->set_activation_bits(8);
  a->set_pattern(v1::SPARSITY_PATTERN_OUTPUT_CHANNEL);
  a->set_prune_ratio(0.3);
  v1::LayerChoice* b = c.add_layers();
  b->set_layer("conv_b");
  b->set_weight_bits(16);
  b->set_activation_bits(16);
  b->set_pattern(v1::SPARSITY_PATTERN_DENSE);
  b->set_prune_ratio(0.5);  // ignored: dense
  absl::StatusOr<std::vector<model::LayerPlan>> plan = ExportPlanFromProto(c, analysis);
  REQUIRE(plan.ok());
  CHECK((*plan)[0].weight_bits == 4);
  CHECK((*plan)[0].pattern == model::Sparsity::kOutputChannel);
  CHECK((*plan)[0].prune_ratio == 0.3);
  CHECK((*plan)[1].pattern == model::Sparsity::kDense);
  CHECK((*plan)[1].prune_ratio == 0);
  b->set_layer("conv_c");
  CHECK(ExportPlanFromProto(c, analysis).status().code() == absl::StatusCode::kInvalidArgument);
  c.mutable_layers()->RemoveLast();
  CHECK(ExportPlanFromProto(c, analysis).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("An export report carries the plan, sizes and measurements", "[proto_conversion]") {
  model::ExportReport report;
  model::LayerExport& l = report.layers.emplace_back();
  l.layer = "conv_a";
  l.plan = {8, 8, model::Sparsity::kTwoFour, 0.5};
  l.option = "w8a8 2:4";
  l.packed_bytes = 100;
  l.note = "why";
  report.file_bytes = 1234;
  report.packed_model_bytes = 900;
  report.opset = 13;
  runtime::Verification v;
  v.sqnr_db = 21.5;
  v.cosine = 0.99;
  v.latency_measured = true;
  v.exported_latency.median_s = 0.01;
  v.original_latency.median_s = 0.02;
  v.integer_ops["QLinearConv"] = 5;
  const v1::ExportReport p = ToProto(report, v, runtime::RangeMethod::kMinMax);
  REQUIRE(p.layers_size() == 1);
  CHECK(p.layers(0).pattern() == v1::SPARSITY_PATTERN_TWO_FOUR);
  CHECK(p.layers(0).note() == "why");
  CHECK(p.measured().latency_ms() == Approx(10));
  CHECK(p.measured().original_latency_ms() == Approx(20));
  CHECK(p.measured().integer_ops().at("QLinearConv") == 5);
  CHECK(p.measured().range_method() == "minmax");
  const v1::MeasuredFigures f = MeasuredFiguresOf(p);
  CHECK(f.sqnr_db() == 21.5);
  CHECK(f.file_bytes() == 1234);
  CHECK(f.packed_size_bytes() == 900);
  CHECK(f.latency_measured());
}

TEST_CASE("A lossless candidate's SQNR is infinite on the wire, not a sentinel", "[proto_conversion]") {
  search::Problem problem;
  search::Layer layer;
  layer.name = "c";
  layer.options.push_back(search::LayerOption{"fp32", 1e-3, 40, 0, 0});
  problem.table.layers.push_back(layer);
  problem.details = {{search::OptionDetail{}}};
  search::Candidate lossless;
  lossless.choice = {0};
  lossless.values.latency = 1e-3;
  lossless.values.size = 40;
  const v1::Candidate proto = ToProto(problem, lossless, /*with_layers=*/false);
  CHECK(std::isinf(proto.predicted_sqnr_db()));
  CHECK(proto.predicted_sqnr_db() > 0);
  std::string json;
  REQUIRE(google::protobuf::util::MessageToJsonString(proto, &json).ok());
  CHECK_THAT(json, Catch::Matchers::Contains("\"predictedSqnrDb\":\"Infinity\""));
  search::Candidate lossy = lossless;
  lossy.values.error = 0.01;
  CHECK(ToProto(problem, lossy, false).predicted_sqnr_db() == Approx(20));
}

TEST_CASE("A stored job says how many calibration samples it measured on, uploaded or drawn", "[proto_conversion]") {
  JobRecord record;
  record.id = "s-1";
  v1::SearchSpec spec;
  v1::SearchJob result;
  result.set_synthetic_calibration(true);
  result.set_calibration_samples(8);  // drawn for a model with small outputs
  record.spec = spec.SerializeAsString();
  record.result = result.SerializeAsString();
  CHECK(ToProto(record).calibration_samples() == 8);
  // Uploaded samples: counted from the spec, and their bytes left out of the answer.
  spec.add_calibration()->add_tensors("x");
  spec.add_calibration()->add_tensors("y");
  record.spec = spec.SerializeAsString();
  result.set_synthetic_calibration(false);
  result.clear_calibration_samples();
  record.result = result.SerializeAsString();
  const v1::SearchJob job = ToProto(record);
  CHECK(job.calibration_samples() == 2);
  CHECK(job.spec().calibration_size() == 0);
}

TEST_CASE("An export request from the wire names its candidate, flavour and ranges, or is refused", "[proto]") {
  v1::ExportRequest wire;
  wire.set_job_id("s-0123456789abcdef");
  wire.set_device_id("pixel-8");
  absl::StatusOr<ExportRequest> none = FromProto(wire);
  REQUIRE(none.ok());
  CHECK(none->candidate == 0);  // neither a candidate nor a recommendation: the first candidate
  CHECK_FALSE(none->flavour.has_value());
  CHECK(none->range_method == runtime::RangeMethod::kPercentile);

  wire.set_recommendation("fastest");
  wire.set_flavour("tensorrt");
  wire.set_range_method(v1::RANGE_METHOD_MINMAX);
  absl::StatusOr<ExportRequest> named = FromProto(wire);
  REQUIRE(named.ok());
  CHECK_FALSE(named->candidate.has_value());
  CHECK(named->recommendation == "fastest");
  CHECK(named->flavour == model::ExportFlavour::kTensorRt);
  CHECK(named->range_method == runtime::RangeMethod::kMinMax);

  wire.set_candidate(3);
  absl::StatusOr<ExportRequest> indexed = FromProto(wire);
  REQUIRE(indexed.ok());
  CHECK(indexed->candidate == 3);
  CHECK(indexed->recommendation.empty());

  wire.set_flavour("coreml");
  absl::StatusOr<ExportRequest> bad = FromProto(wire);
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(bad.status().message()), Catch::Matchers::Contains("flavour 'coreml'"));
}

}  // namespace
}  // namespace squeeze::server
