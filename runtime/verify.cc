#include "runtime/verify.h"

#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/output_weights.h"
#include "model/surgery.h"
#include "runtime/layer_inputs.h"
#include "runtime/shape_probe.h"
#include "runtime/value_reader.h"

namespace squeeze::runtime {
namespace {

// A file path in the temp directory, removed when this goes.
class TempPath {
 public:
  TempPath() {
    static std::atomic<int> counter{0};
    path_ = (std::filesystem::temp_directory_path() /
             absl::StrCat("squeeze-optimized-", getpid(), "-", counter.fetch_add(1), ".onnx"))
                .string();
  }
  ~TempPath() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool IsIntegerKernel(const std::string& op) {
  return absl::StartsWith(op, "QLinear") || op == "QGemm" || op == "MatMulInteger" || op == "ConvInteger" ||
         op == "MatMulIntegerToFloat" || op == "DynamicQuantizeMatMul" || op == "QAttention" ||
         op == "NhwcQLinearConv" || op == "MatMulNBits";
}

}  // namespace

absl::string_view RangeMethodName(RangeMethod method) {
  return method == RangeMethod::kMinMax ? "minmax" : "percentile";
}

absl::StatusOr<std::map<std::string, model::TensorRange>> CalibrateRanges(const model::LoadedModel& model,
                                                                          const std::vector<std::string>& names,
                                                                          const CalibrationSet& calibration,
                                                                          const RangeOptions& options) {
  if (calibration.samples.empty()) return absl::InvalidArgumentError("no calibration samples");
  if (!(options.percentile > 50 && options.percentile <= 100)) {
    return absl::InvalidArgumentError(absl::StrCat("percentile ", options.percentile, " is not in (50, 100]"));
  }
  std::map<std::string, model::TensorRange> ranges;
  if (names.empty()) return ranges;
  absl::StatusOr<ValueReader> reader = ValueReader::Create(model, names, options.threads);
  if (!reader.ok()) return reader.status();

  struct Acc {
    float min = std::numeric_limits<float>::infinity();
    float max = -std::numeric_limits<float>::infinity();
    double low_sum = 0, high_sum = 0;
    int samples = 0;
  };
  std::map<std::string, Acc> acc;
  auto add = [&](const std::string& name, absl::Span<const float> values) {
    if (values.empty()) return;
    Acc& a = acc[name];
    std::vector<float> v(values.begin(), values.end());
    for (float x : v) {
      if (!std::isfinite(x)) continue;
      a.min = std::min(a.min, x);
      a.max = std::max(a.max, x);
    }
    if (options.method == RangeMethod::kPercentile) {
      const double tail = (100.0 - options.percentile) / 100.0;
      const size_t n = v.size();
      const size_t lo = static_cast<size_t>(std::floor(tail * static_cast<double>(n - 1)));
      const size_t hi = n - 1 - lo;
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
      a.low_sum += v[lo];
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(hi), v.end());
      a.high_sum += v[hi];
    }
    ++a.samples;
  };
  for (const std::vector<Tensor>& sample : calibration.samples) {
    absl::StatusOr<std::vector<Tensor>> values = reader->Read(sample);
    if (!values.ok()) return values.status();
    for (const Tensor& t : *values) add(t.name, t.floats());
  }
  // Values a graph output is computed from through elementwise unary ops alone keep their full
  // range: clipping them would cap the model's outputs (a detector's text probabilities).
  std::set<std::string> output_side;
  for (const auto& v : model.proto.graph().output()) output_side.insert(v.name());
  static const std::set<std::string> kUnary = {"Sigmoid", "Relu",        "Tanh", "Softplus",  "Identity",
                                               "Cast",    "HardSigmoid", "Clip", "LeakyRelu", "Exp"};
  static const std::set<std::string> kWithConstant = {"Add", "Sub", "Mul", "Div"};
  std::set<std::string> constants;
  for (const auto& t : model.proto.graph().initializer()) constants.insert(t.name());
  for (const onnx::NodeProto& n : model.proto.graph().node()) {
    if (n.op_type() == "Constant" && n.output_size() == 1) constants.insert(n.output(0));
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (const onnx::NodeProto& n : model.proto.graph().node()) {
      if (n.output_size() != 1 || n.input_size() < 1 || !output_side.count(n.output(0))) continue;
      std::string x = n.input(0);
      if (kWithConstant.count(n.op_type()) && n.input_size() == 2) {
        if (constants.count(n.input(0)))
          x = n.input(1);
        else if (!constants.count(n.input(1)))
          continue;
      } else if (!kUnary.count(n.op_type())) {
        continue;
      }
      grew |= output_side.insert(x).second;
    }
  }
  for (const std::string& name : names) {
    auto it = acc.find(name);
    if (it == acc.end() || it->second.samples == 0 || !(it->second.min <= it->second.max)) {
      return absl::InvalidArgumentError(absl::StrCat("no float values of '", name, "' to calibrate on"));
    }
    const Acc& a = it->second;
    model::TensorRange r{a.min, a.max};
    if (options.method == RangeMethod::kPercentile && !output_side.count(name)) {
      r.min = std::clamp(static_cast<float>(a.low_sum / a.samples), a.min, a.max);
      r.max = std::clamp(static_cast<float>(a.high_sum / a.samples), r.min, a.max);
    }
    ranges[name] = r;
  }
  return ranges;
}

absl::StatusOr<Verification> VerifyExport(absl::string_view original, absl::string_view exported,
                                          const CalibrationSet& calibration, const VerifyOptions& options) {
  if (calibration.samples.empty()) return absl::InvalidArgumentError("no calibration samples");
  if (options.threads < 1 || options.repeats < 1 || options.warmup < 0) {
    return absl::InvalidArgumentError("threads and repeats must be at least 1, warmup at least 0");
  }
  SessionOptions so;
  so.intra_op_threads = options.threads;
  // A softmax output's error is taken on its logits, where the sensitivities took it
  // (model::FidelityOutputs): both models expose them as extra outputs.
  onnx::ModelProto original_proto, exported_proto;
  if (!original_proto.ParseFromArray(original.data(), static_cast<int>(original.size())) ||
      !exported_proto.ParseFromArray(exported.data(), static_cast<int>(exported.size()))) {
    return absl::InvalidArgumentError("the original or the exported model is not an ONNX ModelProto");
  }
  const std::vector<std::string> original_logits = model::FidelityOutputs(original_proto);
  const std::vector<std::string> exported_logits = model::FidelityOutputs(exported_proto);
  if (original_logits.size() != exported_logits.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the exported model has ", exported_logits.size(),
                                                   " outputs, the original ", original_logits.size()));
  }
  std::vector<size_t> on_logits;  // the outputs whose error is taken on their logits
  std::vector<std::string> original_extra, exported_extra;
  for (size_t k = 0; k < original_logits.size(); ++k) {
    const bool original_softmax = original_logits[k] != original_proto.graph().output(static_cast<int>(k)).name();
    const bool exported_softmax = exported_logits[k] != exported_proto.graph().output(static_cast<int>(k)).name();
    if (!original_softmax || !exported_softmax) continue;
    on_logits.push_back(k);
    original_extra.push_back(original_logits[k]);
    exported_extra.push_back(exported_logits[k]);
  }
  std::string original_exposed, exported_exposed;
  if (!on_logits.empty()) {
    if (absl::Status st = model::ExposeValues(&original_proto, original_extra); !st.ok()) return st;
    if (absl::Status st = model::ExposeValues(&exported_proto, exported_extra); !st.ok()) return st;
    original_exposed = original_proto.SerializeAsString();
    exported_exposed = exported_proto.SerializeAsString();
    original = original_exposed;
    exported = exported_exposed;
  }
  absl::StatusOr<std::unique_ptr<Session>> reference = Session::Create(original, so);
  if (!reference.ok()) return reference.status();
  TempPath temp;
  const std::string& optimized_path = options.keep_optimized_model.empty() ? temp.path() : options.keep_optimized_model;
  SessionOptions eso = so;
  eso.optimized_model_path = optimized_path;
  absl::StatusOr<std::unique_ptr<Session>> candidate = Session::Create(exported, eso);
  if (!candidate.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX Runtime cannot load the exported model: ", candidate.status().message()));
  }
  Verification v;
  v.samples = static_cast<int>(calibration.samples.size());
  v.synthetic_calibration = calibration.synthetic;
  v.threads = options.threads;
  {
    std::ifstream in(optimized_path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    onnx::ModelProto m;
    if (m.ParseFromString(bytes.str())) {
      for (const onnx::NodeProto& n : m.graph().node()) {
        if (IsIntegerKernel(n.op_type())) ++v.integer_ops[n.op_type()];
        if (n.op_type() == "QuantizeLinear" || n.op_type() == "DequantizeLinear") ++v.remaining_qdq;
      }
    }
  }
  const auto& ref_outputs = (*reference)->outputs();
  const auto& cand_outputs = (*candidate)->outputs();
  if (ref_outputs.size() != cand_outputs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the exported model has ", cand_outputs.size(), " outputs, the original ", ref_outputs.size()));
  }
  // The graph outputs, then the logits exposed (ref_outputs lists them last).
  const size_t graph_output_count = ref_outputs.size() - on_logits.size();
  std::vector<std::string> names, exported_names;
  std::vector<model::GraphOutput> graph_outputs;
  std::vector<OutputComparison> comparisons;
  for (size_t k = 0; k < graph_output_count; ++k) {
    const TensorInfo& info = ref_outputs[k];
    names.push_back(info.name);
    exported_names.push_back(info.name);
    graph_outputs.push_back({info.name, info.type == ElementType::kFloat32 || info.type == ElementType::kFloat16});
    comparisons.emplace_back(info.name);
  }
  std::vector<OutputComparison> logit_comparisons;
  for (size_t j = 0; j < on_logits.size(); ++j) {
    names.push_back(original_extra[j]);
    exported_names.push_back(exported_extra[j]);
    logit_comparisons.emplace_back(original_extra[j]);
  }
  absl::StatusOr<std::vector<double>> weights = model::ResolveOutputWeights(graph_outputs, options.output_weights);
  if (!weights.ok()) return weights.status();
  v.weighted_over = model::DescribeOutputWeights(graph_outputs, *weights, !options.output_weights.empty());
  for (const std::vector<Tensor>& sample : calibration.samples) {
    absl::StatusOr<std::vector<Tensor>> y = (*reference)->Run(sample, names);
    if (!y.ok()) return y.status();
    absl::StatusOr<std::vector<Tensor>> y2 = (*candidate)->Run(sample, exported_names);
    if (!y2.ok()) return y2.status();
    for (size_t k = 0; k < graph_output_count; ++k) {
      if (absl::Status s = comparisons[k].Add((*y)[k], (*y2)[k]); !s.ok()) return s;
    }
    for (size_t j = 0; j < on_logits.size(); ++j) {
      Tensor exported_logits_value = (*y2)[graph_output_count + j];
      exported_logits_value.name = (*y)[graph_output_count + j].name;
      if (absl::Status s = logit_comparisons[j].Add((*y)[graph_output_count + j], exported_logits_value); !s.ok()) {
        return s;
      }
    }
  }
  // Each output on its own, and the model's figures over them by weight. An output that is 0 on
  // every sample has no relative error: the others share its weight (as in the sensitivities).
  double kept = 0;
  for (size_t k = 0; k < comparisons.size(); ++k) {
    if (comparisons[k].signal() > 0) kept += (*weights)[k];
  }
  for (size_t j = 0; j < on_logits.size(); ++j) comparisons[on_logits[j]].TakeErrorFrom(logit_comparisons[j]);
  for (size_t k = 0; k < comparisons.size(); ++k) {
    OutputFidelity f = comparisons[k].Result();
    f.weight = comparisons[k].signal() > 0 && kept > 0 ? (*weights)[k] / kept : 0;
    if (f.weight > 0) {
      v.relative_error += f.weight * f.relative_error;
      v.cosine += f.weight * f.cosine;
    }
    v.outputs.push_back(std::move(f));
  }
  if (!(kept > 0)) v.cosine = 1;  // nothing to compare by SQNR
  v.sqnr_db = v.relative_error > 0 ? -10 * std::log10(v.relative_error) : std::numeric_limits<double>::infinity();
  if (options.measure_latency) {
    // Interleaved, one run of each at a time, so a machine whose load drifts weighs on both alike.
    InterleavedTiming timing;
    timing.warmup = options.warmup;
    timing.rounds = options.repeats;
    absl::StatusOr<std::vector<Timing>> times =
        TimeInterleaved({reference->get(), candidate->get()}, calibration.samples.front(), timing);
    if (!times.ok()) return times.status();
    v.original_latency = (*times)[0];
    v.exported_latency = (*times)[1];
    v.latency_measured = true;
  }
  return v;
}

absl::StatusOr<model::ExportedModel> ExportCalibrated(const model::LoadedModel& model,
                                                      const std::vector<model::LayerPlan>& plan,
                                                      const CalibrationSet& calibration, const RangeOptions& ranges,
                                                      model::ExportOptions export_options,
                                                      const StageCallback& on_stage) {
  auto stage = [&on_stage](absl::string_view name, const std::string& detail) {
    if (on_stage) on_stage(name, detail);
  };
  absl::StatusOr<std::vector<std::string>> names = model::ActivationsToCalibrate(model, plan, export_options.flavour);
  if (!names.ok()) return names.status();
  stage("calibrating", absl::StrCat(names->size(), " activations on ", calibration.samples.size(),
                                    calibration.synthetic ? " synthetic samples" : " uploaded samples"));
  absl::StatusOr<std::map<std::string, model::TensorRange>> values =
      CalibrateRanges(model, *names, calibration, ranges);
  if (!values.ok()) return values.status();
  if (export_options.rounding == model::WeightRounding::kErrorCompensating && export_options.layer_inputs.empty()) {
    std::vector<std::string> block_wise;
    for (size_t i = 0; i < plan.size() && i < model.analysis.layers.size(); ++i) {
      if (plan[i].block_size > 0) block_wise.push_back(model.analysis.layers[i].name);
    }
    if (!block_wise.empty()) {
      LayerInputOptions input_options;
      input_options.threads = ranges.threads;
      absl::StatusOr<model::LayerInputs> inputs = CollectLayerInputs(model, block_wise, calibration, input_options);
      if (!inputs.ok()) return inputs.status();
      export_options.layer_inputs = *std::move(inputs);
    }
  }
  stage("exporting", "");
  if (!export_options.shape_probe) export_options.shape_probe = OnnxRuntimeShapeProbe();
  return model::ExportModel(model, plan, *values, export_options);
}

absl::StatusOr<VerifiedExport> ExportAndVerify(const model::LoadedModel& model, absl::string_view original_bytes,
                                               const std::vector<model::LayerPlan>& plan,
                                               const CalibrationSet& calibration, const ExportCheckOptions& options) {
  absl::StatusOr<model::ExportedModel> exported =
      ExportCalibrated(model, plan, calibration, options.ranges, options.export_options, options.on_stage);
  if (!exported.ok()) return exported.status();
  if (options.on_stage) options.on_stage("verifying", "");
  absl::StatusOr<Verification> verification =
      VerifyExport(original_bytes, exported->bytes, calibration, options.verify);
  if (!verification.ok()) return verification.status();
  VerifiedExport out;
  out.exported = *std::move(exported);
  out.verification = *std::move(verification);
  out.range_method = options.ranges.method;
  return out;
}

}  // namespace squeeze::runtime
