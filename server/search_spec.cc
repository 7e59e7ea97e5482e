#include "server/search_spec.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "device_profiles/profile_file.h"
#include "model/export_flavour.h"
#include "model/loader.h"

namespace squeeze::server {

namespace dp = device_profiles;

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> InputShapesOf(
    const google::protobuf::RepeatedPtrField<v1::InputShape>& shapes) {
  std::map<std::string, std::vector<int64_t>> out;
  if (shapes.size() > kMaxInputShapes) {
    return absl::InvalidArgumentError(
        absl::StrCat(shapes.size(), " input shapes are given; at most ", kMaxInputShapes, " are taken"));
  }
  for (const v1::InputShape& shape : shapes) {
    if (shape.name().empty()) return absl::InvalidArgumentError("an input shape has no input name");
    if (shape.name().size() > kMaxInputNameLength) {
      return absl::InvalidArgumentError(absl::StrCat("an input shape's name is longer than ", kMaxInputNameLength,
                                                     " characters; name one of the model's inputs"));
    }
    // The stored form is NAME=d0,d1;NAME=... (CanonicalInputShapes): a ';' or a control character
    // in a name could not be read back, and no input the CLI can name holds one.
    for (char c : shape.name()) {
      if (c == ';' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return absl::InvalidArgumentError(
            "an input shape's name holds ';' or a control character; name one of the model's inputs");
      }
    }
    const std::string quoted = absl::StrCat("input shape '", shape.name(), "'");
    if (shape.dims().empty()) return absl::InvalidArgumentError(absl::StrCat(quoted, " has no dimensions"));
    if (shape.dims().size() > kMaxInputRank) {
      return absl::InvalidArgumentError(
          absl::StrCat(quoted, " has ", shape.dims().size(), " dimensions; at most ", kMaxInputRank, " are taken"));
    }
    for (int64_t d : shape.dims()) {
      if (d < 1 || d > model::kMaxDimension) {
        return absl::InvalidArgumentError(absl::StrCat(
            quoted, " has dimension ", d, "; every dimension must be from 1 to 2^31-1 (", model::kMaxDimension, ")"));
      }
    }
    if (!out.emplace(shape.name(), std::vector<int64_t>(shape.dims().begin(), shape.dims().end())).second) {
      return absl::InvalidArgumentError(absl::StrCat("input '", shape.name(), "' is given two shapes"));
    }
  }
  return out;
}

std::string CanonicalInputShapes(const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::vector<std::string> parts;
  for (const auto& [name, dims] : shapes) parts.push_back(absl::StrCat(name, "=", absl::StrJoin(dims, ",")));
  return absl::StrJoin(parts, ";");
}

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> ParseShapes(const std::string& canonical) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (absl::string_view part : absl::StrSplit(canonical, ';', absl::SkipEmpty())) {
    // A name may hold '=' (FromProto allows it): the dimensions follow the last one.
    const size_t eq = part.rfind('=');
    if (eq == absl::string_view::npos) return absl::DataLossError(absl::StrCat("stored input shape '", part, "'"));
    std::vector<int64_t>& dims = shapes[std::string(part.substr(0, eq))];
    for (absl::string_view d : absl::StrSplit(part.substr(eq + 1), ',')) {
      int64_t v = 0;
      if (!absl::SimpleAtoi(d, &v)) return absl::DataLossError(absl::StrCat("stored input shape '", part, "'"));
      dims.push_back(v);
    }
  }
  return shapes;
}

v1::SearchSpec NormalizedSpec(v1::SearchSpec spec, int max_candidates, double time_budget) {
  if (spec.objectives().empty()) {
    spec.add_objectives(v1::OBJECTIVE_LATENCY);
    spec.add_objectives(v1::OBJECTIVE_SIZE);
    spec.add_objectives(v1::OBJECTIVE_ERROR);
  }
  if (spec.max_candidates() == 0) spec.set_max_candidates(max_candidates);
  if (spec.time_budget_seconds() == 0) spec.set_time_budget_seconds(time_budget);
  if (spec.seed() == 0) spec.set_seed(1);
  // A candidate whose output noise rivals its signal is of no use to anyone: without a floor of
  // their own, searches keep candidates of at least kDefaultMinSqnrDb.
  if (spec.constraints().min_sqnr_db() == 0) spec.mutable_constraints()->set_min_sqnr_db(kDefaultMinSqnrDb);
  return spec;
}

absl::StatusOr<search::OptionGrid> GridOf(const v1::OptionSpace& space) {
  search::OptionGrid grid;
  if (!space.weight_bits().empty()) grid.weight_bits.assign(space.weight_bits().begin(), space.weight_bits().end());
  if (!space.activation_bits().empty()) {
    grid.activation_bits.assign(space.activation_bits().begin(), space.activation_bits().end());
  }
  if (!space.prune_ratios().empty()) grid.prune_ratios.assign(space.prune_ratios().begin(), space.prune_ratios().end());
  if (!space.block_sizes().empty()) grid.block_sizes.assign(space.block_sizes().begin(), space.block_sizes().end());
  if (!space.patterns().empty()) {
    grid.patterns.clear();
    for (int p : space.patterns()) {
      absl::StatusOr<dp::Sparsity> s = dp::FromProto(static_cast<v1::SparsityPattern>(p));
      if (!s.ok()) return s.status();
      grid.patterns.push_back(*s);
    }
  }
  if (absl::Status s = search::ValidateOptionGrid(grid); !s.ok()) return s;
  return grid;
}

std::vector<search::TaskFloor> TaskFloorsOf(const v1::Constraints& constraints) {
  std::vector<search::TaskFloor> floors;
  for (const auto& [metric, min] : {std::make_pair("top-1 agreement", constraints.min_top1_agreement()),
                                    std::make_pair("argmax agreement", constraints.min_argmax_agreement()),
                                    std::make_pair("mask IoU", constraints.min_mask_iou()),
                                    std::make_pair(search::kOutputSqnrMetric, constraints.min_output_sqnr_db())}) {
    if (min > 0) floors.push_back({metric, min});
  }
  return floors;
}

std::map<std::string, double> OutputWeightsOf(const v1::SearchSpec& spec) {
  return std::map<std::string, double>(spec.output_weights().begin(), spec.output_weights().end());
}

absl::StatusOr<search::Objective> ObjectiveOf(int o) {
  switch (o) {
    case v1::OBJECTIVE_LATENCY:
      return search::Objective::kLatency;
    case v1::OBJECTIVE_SIZE:
      return search::Objective::kSize;
    case v1::OBJECTIVE_ERROR:
      return search::Objective::kError;
    case v1::OBJECTIVE_PEAK_MEMORY:
      return search::Objective::kPeakMemory;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("objective ", o, " is not one of LATENCY, SIZE, ERROR, PEAK_MEMORY"));
}

// Types, and the inputs of models uploaded without shapes, are checked when the job runs (they
// need the model loaded).
absl::Status ValidateCalibration(const v1::SearchSpec& spec,
                                 const std::map<std::string, std::vector<int64_t>>& shapes) {
  std::set<std::string> first_names;
  for (int k = 0; k < spec.calibration_size(); ++k) {
    const v1::CalibrationSample& sample = spec.calibration(k);
    if (sample.tensors_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, " holds no tensors"));
    }
    std::set<std::string> names;
    for (int j = 0; j < sample.tensors_size(); ++j) {
      onnx::TensorProto t;
      const std::string where = absl::StrCat("calibration sample ", k, ", tensor ", j);
      if (!t.ParseFromString(sample.tensors(j))) {
        return absl::InvalidArgumentError(absl::StrCat(where, " is not a serialized onnx.TensorProto"));
      }
      if (t.data_location() == onnx::TensorProto::EXTERNAL) {
        return absl::InvalidArgumentError(absl::StrCat(where, " keeps its data in an external file; embed it"));
      }
      int64_t elements = 1;
      for (int64_t d : t.dims()) {
        if (d < 0) return absl::InvalidArgumentError(absl::StrCat(where, " has a negative dimension"));
        if (d > 0 && elements > (int64_t{1} << 40) / d) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": its dims [", absl::StrJoin(t.dims(), ","), "] hold more elements than any input"));
        }
        elements *= d;
      }
      const int64_t typed =
          t.float_data_size() + t.int32_data_size() + t.int64_data_size() + t.double_data_size() + t.uint64_data_size();
      const size_t element_bytes =
          t.data_type() == onnx::TensorProto::FLOAT16                                               ? 2
          : t.data_type() == onnx::TensorProto::INT64 || t.data_type() == onnx::TensorProto::DOUBLE ? 8
          : t.data_type() == onnx::TensorProto::INT8 || t.data_type() == onnx::TensorProto::UINT8 ||
                  t.data_type() == onnx::TensorProto::BOOL
              ? 1
              : 4;
      const bool filled =
          t.has_raw_data() ? t.raw_data().size() == static_cast<size_t>(elements) * element_bytes : typed >= elements;
      if (!filled) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": its data does not fill its dims [", absl::StrJoin(t.dims(), ","), "]"));
      }
      const std::string name = t.name().empty() ? absl::StrCat("#", j) : t.name();
      if (!names.insert(name).second) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": input '", name, "' given twice"));
      }
      if (auto it = shapes.find(t.name());
          it != shapes.end() && !std::equal(it->second.begin(), it->second.end(), t.dims().begin(), t.dims().end())) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": input '", t.name(), "' is [",
                                                       absl::StrJoin(t.dims(), ","), "]; the model was uploaded with [",
                                                       absl::StrJoin(it->second, ","), "]"));
      }
    }
    if (k == 0) first_names = names;
    if (names != first_names) {
      return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, " names other inputs than sample 0 (",
                                                     absl::StrJoin(names, ", "), " against ",
                                                     absl::StrJoin(first_names, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateConstraints(const v1::Constraints& c) {
  // `!(x >= 0)` also refuses NaN; infinities are refused as no finite candidate could mean them.
  for (const auto& [name, value] : {std::make_pair("constraints.max_latency_ms", c.max_latency_ms()),
                                    std::make_pair("constraints.min_sqnr_db", c.min_sqnr_db()),
                                    std::make_pair("constraints.min_output_sqnr_db", c.min_output_sqnr_db())}) {
    if (!(value >= 0) || !std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is ", value, ": give a finite value of at least 0 (0 means no limit)"));
    }
  }
  for (const auto& [name, value] : {std::make_pair("constraints.min_top1_agreement", c.min_top1_agreement()),
                                    std::make_pair("constraints.min_argmax_agreement", c.min_argmax_agreement()),
                                    std::make_pair("constraints.min_mask_iou", c.min_mask_iou())}) {
    if (!(value >= 0 && value <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is ", value, ": give a share between 0 and 1 (0 means no floor)"));
    }
  }
  if (c.max_model_bytes() < 0 || c.max_peak_memory_bytes() < 0) {
    return absl::InvalidArgumentError(
        "constraints.max_model_bytes and max_peak_memory_bytes must not be negative "
        "(0 means no limit)");
  }
  return absl::OkStatus();
}

absl::Status ValidateOutputWeightValues(const google::protobuf::Map<std::string, double>& weights) {
  bool weighed = weights.empty();
  for (const auto& [name, weight] : weights) {
    if (name.empty()) return absl::InvalidArgumentError("output_weights: an output without a name");
    if (!(weight >= 0) || !std::isfinite(weight)) {
      return absl::InvalidArgumentError(absl::StrCat("output_weights['", common::Printable(name, 100), "'] is ", weight,
                                                     ": give a finite weight of at least 0"));
    }
    weighed = weighed || weight > 0;
  }
  if (!weighed) return absl::InvalidArgumentError("output_weights: every output weighs 0; give one a positive weight");
  return absl::OkStatus();
}

absl::Status ValidateUploadMetadata(const v1::UploadMetadata& metadata, int64_t max_model_bytes) {
  if (metadata.name().empty()) {
    return absl::InvalidArgumentError("the model's name is empty; 'squeeze models upload' uses the file name");
  }
  if (metadata.name().size() > kMaxModelNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model's name is longer than ", kMaxModelNameLength, " characters"));
  }
  if (absl::Status shapes = InputShapesOf(metadata.input_shapes()).status(); !shapes.ok()) return shapes;
  if (metadata.size_bytes() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the declared size_bytes ", metadata.size_bytes(), " is negative; send the file's size or 0"));
  }
  if (metadata.size_bytes() > max_model_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model is ", metadata.size_bytes(), " bytes, over this server's limit of ", max_model_bytes, " bytes (",
        max_model_bytes / (1 << 20), " MiB); ask the operator to raise squeezed --max-model-bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateExportRequest(const v1::ExportRequest& request) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id is required");
  if (request.device_id().empty()) return absl::InvalidArgumentError("device_id is required");
  if (request.candidate_ref_case() == v1::ExportRequest::kCandidate && request.candidate() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("candidate is ", request.candidate(), ": give a candidate's index, from 0"));
  }
  if (request.candidate_ref_case() == v1::ExportRequest::kRecommendation && request.recommendation().empty()) {
    return absl::InvalidArgumentError(
        "recommendation is empty: give one of fastest, smallest, most accurate, balanced knee");
  }
  if (!v1::RangeMethod_IsValid(request.range_method())) {
    return absl::InvalidArgumentError(
        absl::StrCat("range_method ", request.range_method(), " is not UNSPECIFIED (0), PERCENTILE (1) or MINMAX (2)"));
  }
  if (!request.flavour().empty() && !model::ParseFlavour(request.flavour())) {
    return absl::InvalidArgumentError(absl::StrCat("flavour '", common::Printable(request.flavour(), 48),
                                                   "' is not one of ort-cpu, tensorrt, qnn, runtime-precision"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRecommendRequest(const v1::RecommendRequest& request) {
  if (request.model_id().empty()) return absl::InvalidArgumentError("model_id is required");
  if (request.device_id().empty()) return absl::InvalidArgumentError("device_id is required");
  if (absl::Status s = ValidateConstraints(request.constraints()); !s.ok()) return s;
  if (absl::Status s = ValidateOutputWeightValues(request.output_weights()); !s.ok()) return s;
  if (!(request.time_budget_seconds() >= 0) || request.time_budget_seconds() > kMaxTimeBudgetS) {
    return absl::InvalidArgumentError(absl::StrCat("time_budget_seconds is ", request.time_budget_seconds(),
                                                   ": give 0 (30 s) to ", kMaxTimeBudgetS, " seconds"));
  }
  if (absl::StatusOr<search::OptionGrid> grid = GridOf(request.option_space()); !grid.ok()) return grid.status();
  return absl::OkStatus();
}

absl::Status ValidateSpec(const v1::SearchSpec& spec) {
  if (spec.device_ids().empty()) return absl::InvalidArgumentError("name at least one device (--device ID)");
  std::set<std::string> devices(spec.device_ids().begin(), spec.device_ids().end());
  if (devices.size() != static_cast<size_t>(spec.device_ids_size())) {
    return absl::InvalidArgumentError("a device is named twice");
  }
  std::set<int> objectives;
  for (int o : spec.objectives()) {
    absl::StatusOr<search::Objective> objective = ObjectiveOf(o);
    if (!objective.ok()) return objective.status();
    if (!objectives.insert(o).second) return absl::InvalidArgumentError("an objective is named twice");
  }
  if (objectives.size() < 2) return absl::InvalidArgumentError("a Pareto search needs at least two objectives");
  if (spec.strategy() == v1::STRATEGY_EXACT && objectives.count(v1::OBJECTIVE_PEAK_MEMORY)) {
    return absl::InvalidArgumentError(
        "the exact strategy cannot minimize peak memory (it is not additive): use --strategy nsga2 or auto, "
        "or make peak memory a limit");
  }
  if (!v1::Strategy_IsValid(spec.strategy())) {
    return absl::InvalidArgumentError(
        absl::StrCat("strategy ", spec.strategy(), " is not AUTO (0), EXACT (1) or NSGA2 (2)"));
  }
  if (absl::Status s = ValidateConstraints(spec.constraints()); !s.ok()) return s;
  if (absl::Status s = ValidateOutputWeightValues(spec.output_weights()); !s.ok()) return s;
  if (!(spec.time_budget_seconds() >= 0) || spec.time_budget_seconds() > kMaxTimeBudgetS) {
    return absl::InvalidArgumentError(absl::StrCat("time_budget_seconds is ", spec.time_budget_seconds(),
                                                   ": give 0 (the server's default) to ", kMaxTimeBudgetS, " seconds"));
  }
  if (spec.max_candidates() < 0 || spec.max_candidates() > kMaxCandidates) {
    return absl::InvalidArgumentError(absl::StrCat("max_candidates is ", spec.max_candidates(),
                                                   ": give 0 (the "
                                                   "server's default) to ",
                                                   kMaxCandidates));
  }
  if (absl::StatusOr<search::OptionGrid> grid = GridOf(spec.option_space()); !grid.ok()) return grid.status();
  for (int k = 0; k < spec.calibration_size(); ++k) {
    const v1::CalibrationSample& sample = spec.calibration(k);
    if (sample.tensors().empty())
      return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, " is empty"));
    for (int j = 0; j < sample.tensors_size(); ++j) {
      onnx::TensorProto tensor;
      if (!tensor.ParseFromString(sample.tensors(j))) {
        return absl::InvalidArgumentError(
            absl::StrCat("calibration sample ", k, ", tensor ", j, " is not an ONNX TensorProto (input_N.pb)"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace squeeze::server
