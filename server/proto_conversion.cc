#include "server/proto_conversion.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "search/problem/plan.h"
#include "server/search_spec.h"

namespace squeeze::server {

namespace dp = device_profiles;

v1::Layer ToProto(const model::Layer& l) {
  v1::Layer out;
  out.set_name(l.name);
  out.set_op_type(l.op_type);
  out.set_subgraph(l.subgraph);
  out.set_weight_name(l.weight_name);
  out.set_weight_storage(l.weight_storage == model::WeightStorage::kConstantNode ? "constant_node" : "initializer");
  switch (l.weight_elem_type) {
    case 10:
      out.set_weight_type("float16");
      break;
    case 11:
      out.set_weight_type("float64");
      break;
    case 16:
      out.set_weight_type("bfloat16");
      break;
    default:
      out.set_weight_type("float32");
      break;
  }
  for (int64_t d : l.weight_shape) out.add_weight_shape(d);
  out.set_params(l.params);
  out.set_bias_params(l.bias_params);
  out.set_in_channels(l.in_channels);
  out.set_out_channels(l.out_channels);
  out.set_groups(l.groups);
  out.set_grouped(l.grouped);
  out.set_depthwise(l.depthwise);
  for (int64_t d : l.kernel) out.add_kernel(d);
  for (int64_t d : l.strides) out.add_strides(d);
  for (int64_t d : l.input_shape) out.add_input_shape(d);
  for (int64_t d : l.output_shape) out.add_output_shape(d);
  out.set_input_bytes(l.input_bytes);
  out.set_output_bytes(l.output_bytes);
  out.set_macs(l.macs);
  switch (l.shape_source) {
    case model::ShapeSource::kDeclared:
      out.set_shape_source(v1::SHAPE_SOURCE_DECLARED);
      break;
    case model::ShapeSource::kInferred:
      out.set_shape_source(v1::SHAPE_SOURCE_INFERRED);
      break;
    case model::ShapeSource::kOnnxRuntime:
      out.set_shape_source(v1::SHAPE_SOURCE_ONNX_RUNTIME);
      break;
    case model::ShapeSource::kUnknown:
      out.set_shape_source(v1::SHAPE_SOURCE_UNSPECIFIED);
      break;
  }
  float absmax = 0;
  double sum_squares = 0;
  for (float a : l.stats.absmax) absmax = std::max(absmax, a);
  for (float n : l.stats.l2_norm) sum_squares += static_cast<double>(n) * n;
  out.set_weight_absmax(absmax);
  out.set_weight_l2_norm(static_cast<float>(std::sqrt(sum_squares)));
  return out;
}

v1::ModelAnalysis ToProto(const model::Analysis& a) {
  v1::ModelAnalysis out;
  out.set_ir_version(a.ir_version);
  for (const auto& [domain, version] : a.opsets) (*out.mutable_opsets())[domain.empty() ? "ai.onnx" : domain] = version;
  out.set_producer(a.producer);
  for (const auto& [name, dims] : a.input_shapes) {
    v1::InputShape* shape = out.add_input_shapes();
    shape->set_name(name);
    for (int64_t d : dims) shape->add_dims(d);
  }
  for (const std::string& d : a.defaulted_dims) out.add_defaulted_dims(d);
  int64_t grouped = 0, depthwise = 0;
  for (const model::Layer& l : a.layers) {
    *out.add_layers() = ToProto(l);
    grouped += l.grouped ? 1 : 0;
    depthwise += l.depthwise ? 1 : 0;
  }
  out.set_layer_count(static_cast<int64_t>(a.layers.size()));
  out.set_grouped_layers(grouped);
  out.set_depthwise_layers(depthwise);
  out.set_total_params(a.total_params);
  out.set_total_macs(a.total_macs);
  out.set_peak_activation_bytes(a.peak_activation_bytes);
  out.set_compressible_weight_bytes(a.compressible_weight_bytes);
  out.set_other_initializer_bytes(a.other_initializer_bytes);
  for (const auto& [op, count] : a.op_histogram) (*out.mutable_op_histogram())[op] = count;
  for (const auto& [op, count] : a.uncompressed_ops) (*out.mutable_uncompressed_ops())[op] = count;
  for (const std::string& w : a.warnings) out.add_warnings(w);
  out.set_fully_validated(a.fully_validated);
  return out;
}

void SetOutputs(const std::vector<model::GraphOutput>& outputs, v1::ModelAnalysis* analysis) {
  for (const model::GraphOutput& o : outputs) {
    v1::ModelOutput* out = analysis->add_outputs();
    out->set_name(o.name);
    out->set_is_float(o.is_float);
  }
}

std::vector<model::GraphOutput> OutputsOf(const v1::ModelAnalysis& analysis) {
  std::vector<model::GraphOutput> outputs;
  for (const v1::ModelOutput& o : analysis.outputs()) outputs.push_back({o.name(), o.is_float()});
  return outputs;
}

void SetChannelPruning(const std::vector<model::ChannelPruningReach>& reach, v1::ModelAnalysis* analysis) {
  for (int i = 0; i < analysis->layers_size() && static_cast<size_t>(i) < reach.size(); ++i) {
    v1::Layer* layer = analysis->mutable_layers(i);
    const model::ChannelPruningReach& r = reach[static_cast<size_t>(i)];
    layer->set_channel_pruning(r.removable ? v1::CHANNEL_PRUNING_ALLOWED : v1::CHANNEL_PRUNING_NOT_ALLOWED);
    if (!r.removable) layer->set_channel_pruning_note(r.why_not);
  }
}

absl::StatusOr<v1::Model> ToProto(const ModelRecord& record, bool with_layers) {
  v1::Model out;
  out.set_id(record.id);
  out.set_name(record.name);
  out.set_sha256(record.sha256);
  out.set_size_bytes(record.size_bytes);
  out.set_created_at(record.created_at);
  if (!out.mutable_analysis()->ParseFromString(record.analysis)) {
    return absl::DataLossError(absl::StrCat("the stored analysis of model ", record.id, " cannot be read"));
  }
  if (!with_layers) out.mutable_analysis()->clear_layers();
  return out;
}

v1::SearchJob ToProto(const JobRecord& record) {
  v1::SearchJob job;
  if (!record.result.empty()) job.ParseFromString(record.result);
  job.set_id(record.id);
  job.mutable_spec()->ParseFromString(record.spec);
  // Calibration samples can be megabytes each: answers and progress updates say how many there
  // were, not what they held (without any, the result says how many synthetic ones were drawn).
  if (job.spec().calibration_size() > 0) job.set_calibration_samples(job.spec().calibration_size());
  job.mutable_spec()->clear_calibration();
  job.set_state(static_cast<v1::JobState>(record.state));
  job.set_phase(static_cast<v1::Phase>(record.phase));
  job.set_fraction(record.fraction);
  job.set_error(record.error);
  job.set_created_at(record.created_at);
  job.set_started_at(record.started_at);
  job.set_finished_at(record.finished_at);
  return job;
}

search::Constraints FromProto(const v1::Constraints& c, const device_profiles::Device& device) {
  search::Constraints limits;
  if (c.max_latency_ms() > 0) limits.max_latency = c.max_latency_ms() / 1000;
  if (c.max_model_bytes() > 0) limits.max_size = static_cast<double>(c.max_model_bytes());
  if (c.min_sqnr_db() > 0) limits.max_error = search::ErrorOfSqnrDb(c.min_sqnr_db());
  if (c.max_peak_memory_bytes() > 0) {
    limits.max_peak_memory = static_cast<double>(c.max_peak_memory_bytes());
  } else if (c.peak_memory_within_app_budget()) {
    limits.max_peak_memory = static_cast<double>(device.app_memory_budget_bytes);
  }
  return limits;
}

v1::SensitivityReport ToProto(const runtime::SensitivityReport& r) {
  v1::SensitivityReport out;
  for (const runtime::LayerSensitivity& l : r.layers) {
    v1::LayerSensitivity* p = out.add_layers();
    p->set_layer(l.layer);
    p->set_weight(l.weight);
    p->set_measured(l.measured);
    p->set_unexercised(!l.exercised);
    for (const auto& [bits, error] : l.activation_error) (*p->mutable_activation_error())[bits] = error;
    for (const auto& [bits, s] : l.quantization) (*p->mutable_quantization())[bits] = s;
    for (const auto& [shape, s] : l.pruning) (*p->mutable_pruning())[shape] = s;
    if (l.channel_removal) p->set_channel_removal(*l.channel_removal);
    p->mutable_channel_energy()->Add(l.channel_energy.begin(), l.channel_energy.end());
    if (l.int8_symmetric_activation_error) p->set_int8_symmetric_activation_error(*l.int8_symmetric_activation_error);
    p->set_input_min(l.input_range.min);
    p->set_input_max(l.input_range.max);
  }
  out.set_synthetic_calibration(r.synthetic_calibration);
  out.set_samples(r.samples);
  out.set_noise_energy(r.noise_energy);
  out.set_weighted_over(r.weighted_over);
  for (const std::string& w : r.warnings) out.add_warnings(w);
  out.set_seconds(r.seconds);
  return out;
}

runtime::SensitivityReport FromProto(const v1::SensitivityReport& in) {
  runtime::SensitivityReport r;
  for (const v1::LayerSensitivity& p : in.layers()) {
    runtime::LayerSensitivity l;
    l.layer = p.layer();
    l.weight = p.weight();
    l.measured = p.measured();
    l.exercised = !p.unexercised();
    for (const auto& [bits, error] : p.activation_error()) l.activation_error[bits] = error;
    for (const auto& [bits, s] : p.quantization()) l.quantization[bits] = s;
    for (const auto& [shape, s] : p.pruning()) l.pruning[shape] = s;
    if (p.has_channel_removal()) l.channel_removal = p.channel_removal();
    l.channel_energy.assign(p.channel_energy().begin(), p.channel_energy().end());
    if (p.has_int8_symmetric_activation_error())
      l.int8_symmetric_activation_error = p.int8_symmetric_activation_error();
    l.input_range.min = p.input_min();
    l.input_range.max = p.input_max();
    r.layers.push_back(std::move(l));
  }
  r.synthetic_calibration = in.synthetic_calibration();
  r.samples = in.samples();
  r.noise_energy = in.noise_energy();
  r.weighted_over = in.weighted_over();
  r.warnings.assign(in.warnings().begin(), in.warnings().end());
  r.seconds = in.seconds();
  return r;
}

v1::Candidate ToProto(const search::Problem& problem, const search::Candidate& c, bool with_layers) {
  v1::Candidate out;
  out.set_predicted_latency_ms(c.values.latency * 1e3);
  out.set_predicted_size_bytes(static_cast<int64_t>(std::llround(c.values.size)));
  out.set_predicted_peak_memory_bytes(static_cast<int64_t>(std::llround(c.values.peak_memory)));
  out.set_predicted_error(c.values.error);
  // +inf where nothing the error model sees changes ("lossless"; JSON: "Infinity").
  out.set_predicted_sqnr_db(search::SqnrDb(c.values.error));
  out.set_plan_summary(search::PlanSummary(problem, c.choice));
  const search::BasisCount basis = search::LatencyBasisOf(problem, c.choice);
  out.set_latency_basis(search::BasisLabel(basis));
  out.set_spec_layers(basis.spec);
  if (!with_layers) return out;
  // What each layer takes less on the input other layers' pruning narrowed, in this plan.
  const absl::StatusOr<search::PlanConversions> conversions = search::ConversionsOf(problem.table, c.choice);
  for (size_t i = 0; i < c.choice.size() && i < problem.details.size(); ++i) {
    const search::OptionDetail& d = problem.details[i][c.choice[i]];
    v1::LayerChoice* l = out.add_layers();
    l->set_layer(problem.table.layers[i].name);
    l->set_option(problem.table.layers[i].options[c.choice[i]].label);
    l->set_weight_bits(d.option.weight_bits);
    l->set_activation_bits(d.option.activation_bits);
    l->set_prune_ratio(d.option.prune_ratio);
    l->set_pattern(ToProto(d.option.pattern));
    l->set_block_size(d.option.block_size);
    const double narrowed = conversions.ok() ? conversions->narrowed_latency[i] : 0;
    l->set_predicted_latency_ms((d.latency.seconds - narrowed) * 1e3);
    l->set_latency_basis(std::string(device_profiles::BasisName(d.latency.basis)));
    l->set_support(std::string(device_profiles::SupportName(d.latency.support)));
    l->set_latency_explanation(
        narrowed > 0 ? absl::StrFormat("%s; - %.1f us: the layers before it pruned some of the channels it reads",
                                       d.latency.explanation, narrowed * 1e6)
                     : d.latency.explanation);
  }
  return out;
}

v1::DeviceFront ToProto(const search::Problem& problem, const search::Front& front, const std::string& device_id,
                        int64_t device_version, bool with_layers) {
  v1::DeviceFront out;
  out.set_device_id(device_id);
  out.set_device_version(device_version);
  for (size_t i = 0; i < front.candidates.size(); ++i) {
    v1::Candidate c = ToProto(problem, front.candidates[i], with_layers);
    c.set_index(static_cast<int32_t>(i));
    *out.add_candidates() = std::move(c);
  }
  out.set_strategy(std::string(search::StrategyName(front.strategy)));
  double epsilon = 0;
  for (double e : front.epsilon) epsilon = std::max(epsilon, e);
  out.set_epsilon(epsilon);
  out.set_hypervolume(front.hypervolume);
  out.set_constraints_met(!front.candidates.empty());
  out.set_search_seconds(front.stats.seconds);
  return out;
}

v1::ApiKey ToProto(const ApiKeyRecord& key) {
  v1::ApiKey out;
  out.set_id(key.id);
  out.set_team(key.team);
  out.set_role(key.role == Role::kAdmin ? v1::KEY_ROLE_ADMIN : v1::KEY_ROLE_MEMBER);
  out.set_prefix(key.prefix);
  out.set_created_at(key.created_at);
  out.set_revoked_at(key.revoked_at);
  return out;
}

absl::StatusOr<Role> FromProto(v1::KeyRole role) {
  switch (role) {
    case v1::KEY_ROLE_UNSPECIFIED:
    case v1::KEY_ROLE_MEMBER:
      return Role::kMember;
    case v1::KEY_ROLE_ADMIN:
      return Role::kAdmin;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("key role ", static_cast<int>(role), " is not MEMBER or ADMIN"));
}

absl::StatusOr<std::vector<model::LayerPlan>> ExportPlanFromProto(const v1::Candidate& candidate,
                                                                  const model::Analysis& analysis) {
  if (candidate.layers_size() != static_cast<int>(analysis.layers.size())) {
    return absl::InvalidArgumentError(absl::StrCat("candidate ", candidate.index(), " has ", candidate.layers_size(),
                                                   " layer choices; the model has ", analysis.layers.size(),
                                                   " layers"));
  }
  std::vector<model::LayerPlan> plan;
  for (int i = 0; i < candidate.layers_size(); ++i) {
    const v1::LayerChoice& c = candidate.layers(i);
    if (c.layer() != analysis.layers[i].name) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate layer ", i, " is '", c.layer(), "', the model's is '", analysis.layers[i].name, "'"));
    }
    model::LayerPlan p;
    p.weight_bits = c.weight_bits();
    p.activation_bits = c.activation_bits();
    // An unset pattern is dense, as in a candidate written before patterns were named.
    absl::StatusOr<Sparsity> pattern = c.pattern() == v1::SPARSITY_PATTERN_UNSPECIFIED
                                           ? absl::StatusOr<Sparsity>(Sparsity::kDense)
                                           : dp::FromProto(c.pattern());
    if (!pattern.ok())
      return absl::InvalidArgumentError(absl::StrCat("layer '", c.layer(), "': unknown sparsity pattern"));
    p.pattern = *pattern;
    p.prune_ratio = p.pattern == model::Sparsity::kDense ? 0 : c.prune_ratio();
    p.block_size = c.block_size();
    plan.push_back(p);
  }
  return plan;
}

v1::ExportReport ToProto(const model::ExportReport& report, const runtime::Verification& verification,
                         runtime::RangeMethod range_method) {
  v1::ExportReport out;
  for (const model::LayerExport& l : report.layers) {
    v1::LayerExport* p = out.add_layers();
    p->set_layer(l.layer);
    p->set_op_type(l.op_type);
    p->set_option(l.option);
    p->set_weight_bits(l.plan.weight_bits);
    p->set_activation_bits(l.plan.activation_bits);
    p->set_pattern(dp::ToProto(l.plan.pattern));
    p->set_prune_ratio(l.plan.prune_ratio);
    p->set_block_size(l.plan.block_size);
    p->set_params(l.params);
    p->set_kept_params(l.kept_params);
    p->set_out_channels(l.out_channels);
    p->set_kept_out_channels(l.kept_out_channels);
    p->set_zeroed_out_channels(l.zeroed_out_channels);
    p->set_removed_in_channels(l.removed_in_channels);
    p->set_packed_bytes(l.packed_bytes);
    p->set_weight_distortion(l.weight_distortion);
    p->set_activation_quantized(l.activation_quantized);
    p->set_note(l.note);
  }
  out.set_packed_weight_bytes(report.packed_weight_bytes);
  out.set_other_constant_bytes(report.other_constant_bytes);
  out.set_packed_model_bytes(report.packed_model_bytes);
  out.set_file_bytes(report.file_bytes);
  out.set_original_opset(report.original_opset);
  out.set_opset(report.opset);
  out.set_quantized_activations(report.quantized_activations);
  out.set_removed_channels(report.removed_channels);
  out.set_conformance(report.conformance);
  out.set_float_ops_between_quantized(report.float_ops_between_quantized);
  out.set_quantized_constants(report.quantized_constants);
  for (const std::string& w : report.warnings) out.add_warnings(w);
  v1::Measurement* m = out.mutable_measured();
  m->set_sqnr_db(verification.sqnr_db);
  m->set_cosine(verification.cosine);
  m->set_relative_error(verification.relative_error);
  m->set_samples(verification.samples);
  m->set_synthetic_calibration(verification.synthetic_calibration);
  m->set_latency_measured(verification.latency_measured);
  if (verification.latency_measured) {
    m->set_latency_ms(1e3 * verification.exported_latency.median_s);
    m->set_original_latency_ms(1e3 * verification.original_latency.median_s);
  }
  m->set_threads(verification.threads);
  for (const auto& [op, count] : verification.integer_ops) (*m->mutable_integer_ops())[op] = count;
  m->set_remaining_qdq(verification.remaining_qdq);
  m->set_range_method(std::string(runtime::RangeMethodName(range_method)));
  for (const runtime::OutputFidelity& o : verification.outputs) *m->add_outputs() = ToProto(o);
  m->set_weighted_over(verification.weighted_over);
  return out;
}

v1::OutputFidelity ToProto(const runtime::OutputFidelity& output) {
  v1::OutputFidelity out;
  out.set_name(output.name);
  for (int64_t d : output.shape) out.add_shape(d);
  out.set_kind(std::string(runtime::OutputKindName(output.kind)));
  out.set_sqnr_db(output.sqnr_db);
  out.set_cosine(output.cosine);
  out.set_error_on(output.error_on);
  out.set_weight(output.weight);
  for (const auto& [name, value] : output.metrics) {
    v1::TaskMetric* m = out.add_metrics();
    m->set_name(name);
    m->set_value(value);
  }
  return out;
}

absl::StatusOr<ExportRequest> FromProto(const v1::ExportRequest& request) {
  if (absl::Status s = ValidateExportRequest(request); !s.ok()) return s;
  ExportRequest r;
  r.job_id = request.job_id();
  r.device_id = request.device_id();
  if (request.candidate_ref_case() == v1::ExportRequest::kRecommendation) {
    r.recommendation = request.recommendation();
  } else {
    r.candidate = request.candidate();
  }
  if (!request.flavour().empty()) r.flavour = model::ParseFlavour(request.flavour());
  r.range_method = request.range_method() == v1::RANGE_METHOD_MINMAX ? runtime::RangeMethod::kMinMax
                                                                     : runtime::RangeMethod::kPercentile;
  return r;
}

v1::MeasuredFigures MeasuredFiguresOf(const v1::ExportReport& report) {
  v1::MeasuredFigures f;
  f.set_sqnr_db(report.measured().sqnr_db());
  f.set_cosine(report.measured().cosine());
  f.set_latency_measured(report.measured().latency_measured());
  f.set_latency_ms(report.measured().latency_ms());
  f.set_file_bytes(report.file_bytes());
  f.set_packed_size_bytes(report.packed_model_bytes());
  f.set_synthetic_calibration(report.measured().synthetic_calibration());
  *f.mutable_outputs() = report.measured().outputs();
  return f;
}

}  // namespace squeeze::server
