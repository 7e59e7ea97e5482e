// Exported models run in ONNX Runtime (model/export.h + runtime/verify.h): a residual block keeps
// its output shape through channel pruning, and PP-OCRv4 det exported at uniform int8, a mixed
// 4/8-bit plan and 30% output-channel pruning passes the checker, runs, fuses integer kernels and
// still finds rendered text.
#include "model/export.h"

#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <map>

#include "model/batch_norm_folding.h"
#include "model/conformance.h"
#include "runtime/shape_probe.h"
#include "runtime/verify.h"
#include "tests/model/export_models.h"
#include "tests/model/test_models.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::runtime {
namespace {

using Catch::Matchers::Contains;
using model::LayerPlan;
using model::Sparsity;

CalibrationSet RandomInputs(const model::LoadedModel& m, int count) {
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(m.proto.SerializeAsString());
  REQUIRE(s.ok());
  absl::StatusOr<CalibrationSet> c = SyntheticCalibration(m.analysis, (*s)->inputs(), count, 7);
  REQUIRE(c.ok());
  return *std::move(c);
}

TEST_CASE("channel pruning keeps a residual model's output shape, and it runs") {
  const model::LoadedModel m = model::testing::MustLoad(
      model::testing::ResidualProto(model::testing::kSmallFirstHalf, model::testing::kSmallFirstHalf));
  std::vector<LayerPlan> plan(m.analysis.layers.size());
  plan[0] = {32, 32, Sparsity::kOutputChannel, 0.5};
  plan[1] = {32, 32, Sparsity::kOutputChannel, 0.5};
  const CalibrationSet inputs = RandomInputs(m, 2);
  ExportCheckOptions options;
  absl::StatusOr<VerifiedExport> out = ExportAndVerify(m, m.proto.SerializeAsString(), plan, inputs, options);
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  CHECK(out->exported.report.removed_channels == 8);
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(out->exported.bytes);
  REQUIRE(s.ok());
  absl::StatusOr<std::vector<Tensor>> y = (*s)->Run(inputs.samples[0]);
  REQUIRE(y.ok());
  CHECK(y->at(0).shape == std::vector<int64_t>{1, 4, 8, 8});
  // The removed channels carried ~1e-3 of the signal: a wrong slice anywhere would cost far more.
  CHECK(out->verification.relative_error < 1e-3);
  CHECK(out->verification.cosine > 0.999);

  SECTION("and at w8a8 ONNX Runtime runs it on integer kernels") {
    for (LayerPlan& p : plan) {
      p.weight_bits = 8;
      p.activation_bits = 8;
    }
    absl::StatusOr<VerifiedExport> q = ExportAndVerify(m, m.proto.SerializeAsString(), plan, inputs, options);
    INFO(q.status().ToString());
    REQUIRE(q.ok());
    CHECK(q->verification.integer_ops["QLinearConv"] >= 3);
    CHECK(q->verification.sqnr_db > 25);
  }
}

// A model with a large output and a small one, and a copy whose small output is 10% off: the SQNR
// weighs each output's own relative error, so the small output's error is not hidden behind the
// large one's energy.
TEST_CASE("verification weighs each output's relative error, not its bytes") {
  const char* text = R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    two (float[4, 8] x) => (float[4, 8] big, float[4, 8] small) {
      big = Mul (x, k)
      small = Mul (x, s)
    }
  )onnx";
  auto make = [&](float small_scale) {
    onnx::ModelProto proto = model::testing::ParseModel(text);
    model::testing::AddInitializer(proto.mutable_graph(),
                                   model::testing::FloatTensor("k", {}, model::testing::Encoding::kRaw, {1000.f}));
    model::testing::AddInitializer(proto.mutable_graph(),
                                   model::testing::FloatTensor("s", {}, model::testing::Encoding::kRaw, {small_scale}));
    return proto.SerializeAsString();
  };
  const std::string original = make(1.f), off = make(1.1f);  // small: relative error 0.01, 20 dB
  CalibrationSet inputs;
  for (int k = 0; k < 2; ++k) {
    std::vector<float> x(32);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * static_cast<float>(i + 32 * k)) + 0.2f;
    inputs.samples.push_back({Tensor::Float("x", {4, 8}, x)});
  }
  VerifyOptions options;

  absl::StatusOr<Verification> equal = VerifyExport(original, off, inputs, options);
  REQUIRE(equal.ok());
  REQUIRE(equal->outputs.size() == 2);
  CHECK(equal->outputs[0].weight == 0.5);
  CHECK(equal->outputs[0].error_on.empty());  // no softmax computes it: taken as it is
  CHECK(equal->outputs[1].sqnr_db == Approx(20).margin(0.01));
  CHECK(equal->relative_error == Approx(0.005).epsilon(1e-3));  // pooled it would be 1e-8
  CHECK(equal->sqnr_db == Approx(23.01).margin(0.01));
  CHECK(equal->weighted_over == "equal over 2 outputs");

  options.output_weights = {{"small", 1}};
  absl::StatusOr<Verification> small = VerifyExport(original, off, inputs, options);
  REQUIRE(small.ok());
  CHECK(small->sqnr_db == Approx(20).margin(0.01));
  CHECK(small->outputs[0].weight == 0);

  options.output_weights = {{"big", 1}};
  absl::StatusOr<Verification> big = VerifyExport(original, off, inputs, options);
  REQUIRE(big.ok());
  CHECK(std::isinf(big->sqnr_db));
  CHECK(big->cosine == 1);

  options.output_weights = {{"mask", 1}};
  CHECK(VerifyExport(original, off, inputs, options).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("verification takes a softmax output's error on its logits, its task metrics on the output") {
  const char* text = R"onnx(
    <ir_version: 8, opset_import: ["" : 17]>
    classify (float[4, 8] x) => (float[4, 8] probs) {
      logits = Mul (x, k)
      probs = Softmax <axis = -1> (logits)
    }
  )onnx";
  auto make = [&](float scale) {
    onnx::ModelProto proto = model::testing::ParseModel(text);
    model::testing::AddInitializer(proto.mutable_graph(),
                                   model::testing::FloatTensor("k", {}, model::testing::Encoding::kRaw, {scale}));
    return proto.SerializeAsString();
  };
  // Logits 1.1 times larger: relative error 0.01 (20 dB) on the logits, whatever the softmax makes
  // of it; the largest logit stays the largest.
  const std::string original = make(3.f), off = make(3.3f);
  CalibrationSet inputs;
  for (int k = 0; k < 2; ++k) {
    std::vector<float> x(32);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * static_cast<float>(i + 32 * k)) + 0.2f;
    inputs.samples.push_back({Tensor::Float("x", {4, 8}, x)});
  }
  absl::StatusOr<Verification> v = VerifyExport(original, off, inputs, VerifyOptions());
  REQUIRE(v.ok());
  REQUIRE(v->outputs.size() == 1);
  const OutputFidelity& probs = v->outputs[0];
  CHECK(probs.name == "probs");
  CHECK(probs.error_on == "logits");
  CHECK(probs.sqnr_db == Approx(20).margin(0.01));
  CHECK(v->relative_error == Approx(0.01).epsilon(1e-3));
  CHECK(probs.kind == OutputKind::kClassScores);
  REQUIRE_FALSE(probs.metrics.empty());
  CHECK(probs.metrics[0].first == "top-1 agreement");
  CHECK(probs.metrics[0].second == 1.0);
  // The same model: lossless on the logits too.
  absl::StatusOr<Verification> same = VerifyExport(original, original, inputs, VerifyOptions());
  REQUIRE(same.ok());
  CHECK(std::isinf(same->sqnr_db));
}

TEST_CASE("ranges: min/max covers every value, the percentile clips the tails") {
  const model::LoadedModel m = model::testing::MustLoad(
      model::testing::ResidualProto(model::testing::kSmallFirstHalf, model::testing::kSmallFirstHalf));
  const CalibrationSet inputs = RandomInputs(m, 2);
  RangeOptions options;
  options.method = RangeMethod::kMinMax;
  absl::StatusOr<std::map<std::string, model::TensorRange>> minmax = CalibrateRanges(m, {"x", "r"}, inputs, options);
  REQUIRE(minmax.ok());
  options.method = RangeMethod::kPercentile;
  options.percentile = 99.0;
  absl::StatusOr<std::map<std::string, model::TensorRange>> pct = CalibrateRanges(m, {"x", "r"}, inputs, options);
  REQUIRE(pct.ok());
  float lo = 0, hi = 0;
  for (const Tensor& t : inputs.samples[0]) {
    for (float v : t.floats()) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  CHECK(minmax->at("x").max >= hi);
  CHECK(minmax->at("x").min <= lo);
  CHECK(pct->at("x").max < minmax->at("x").max);
  CHECK(pct->at("x").min > minmax->at("x").min);
  CHECK(pct->at("x").max > 1.5f);  // N(0, 1): the 99th percentile is 2.33
  CHECK(CalibrateRanges(m, {"nope"}, inputs, options).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("PP-OCR cls (opset 9) exports at w8a8 through the opset-13 conversion, with shapes from a run") {
  const std::string bytes = model::testing::ReadCachedModel("ch_ppocr_mobile_v2.0_cls_infer.onnx");
  REQUIRE_FALSE(bytes.empty());
  model::AnalyzeOptions options;
  options.input_shapes["x"] = {1, 3, 48, 192};
  options.shape_probe = OnnxRuntimeShapeProbe();
  const model::LoadedModel m = model::testing::MustLoad(bytes, options);
  const CalibrationSet inputs = RandomInputs(m, 2);
  const std::vector<LayerPlan> plan(m.analysis.layers.size(), LayerPlan{8, 8});
  absl::StatusOr<VerifiedExport> out = ExportAndVerify(m, bytes, plan, inputs, ExportCheckOptions{});
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  CHECK(out->exported.report.original_opset == 9);
  CHECK(out->exported.report.opset == 13);
  CHECK(out->verification.integer_ops["QLinearConv"] >= 40);
  CHECK(out->verification.cosine > 0.9);
  // Its one output, two class probabilities, on its own: the pooled figures, and which class wins.
  REQUIRE(out->verification.outputs.size() == 1);
  const OutputFidelity& probabilities = out->verification.outputs[0];
  CHECK(probabilities.kind == OutputKind::kClassScores);
  CHECK(probabilities.shape == std::vector<int64_t>{1, 2});
  CHECK(probabilities.sqnr_db == Approx(out->verification.sqnr_db));
  REQUIRE(probabilities.metrics.size() == 1);
  CHECK(probabilities.metrics[0].first == "top-1 agreement");
  CHECK(probabilities.metrics[0].second >= 0);
  CHECK(probabilities.metrics[0].second <= 1);
  // Its 35 BatchNormalizations are folded into the integer weights, not left to run on their own.
  auto count = [](const onnx::GraphProto& g, const std::string& op) {
    int n = 0;
    for (const onnx::NodeProto& node : g.node()) n += node.op_type() == op;
    return n;
  };
  CHECK(count(m.proto.graph(), "BatchNormalization") >= 30);
  onnx::ModelProto exported;
  REQUIRE(exported.ParseFromString(out->exported.bytes));
  CHECK(count(exported.graph(), "BatchNormalization") == 0);

  SECTION("folding is exact: int8 weights alone stay as close as int8 weights can") {
    const std::vector<LayerPlan> weights_only(m.analysis.layers.size(), LayerPlan{8, 32});
    absl::StatusOr<VerifiedExport> w8 = ExportAndVerify(m, bytes, weights_only, inputs, ExportCheckOptions{});
    INFO(w8.status().ToString());
    REQUIRE(w8.ok());
    CHECK(w8->verification.sqnr_db > 25);
    CHECK(w8->verification.cosine > 0.998);
  }
}

// ---- PP-OCRv4 det ----

struct Det {
  model::LoadedModel model;
  std::string bytes;
  CalibrationSet calibration;  // two rendered pages
  Tensor held_out;             // a third page, never calibrated on
};

// Loaded, analysed and its images rendered once per process: the sections below share it.
const Det& LoadDet() {
  static const Det* det = [] {
    auto* d = new Det;
    d->bytes = model::testing::ReadCachedModel("ch_PP-OCRv4_det_infer.onnx");
    REQUIRE_FALSE(d->bytes.empty());
    model::AnalyzeOptions options;
    options.input_shapes["x"] = {1, 3, 640, 640};
    options.shape_probe = OnnxRuntimeShapeProbe();
    d->model = model::testing::MustLoad(d->bytes, options);
    static testing::TempDir dir;
    const std::string script = std::string(SQUEEZE_SOURCE_DIR) + "/bench/fidelity/make_text_images.sh";
    REQUIRE(std::system((script + " " + dir.path() + " >/dev/null").c_str()) == 0);
    const std::string held_out = dir.File("held_out.ppm");
    const std::string render =
        "convert -size 640x640 xc:'#fafafa' -font DejaVu-Sans -fill '#101010' -pointsize 38 -annotate +50+120 "
        "'Receipt No. 4711' -pointsize 30 -annotate +60+260 'Fresh bread daily' -font DejaVu-Serif "
        "-pointsize 46 -annotate +40+420 'CLOSED SUNDAY' -pointsize 24 -annotate +120+560 'squeeze your models' "
        "-depth 8 ppm:" +
        held_out;
    REQUIRE(std::system(render.c_str()) == 0);
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(d->bytes);
    REQUIRE(session.ok());
    absl::StatusOr<CalibrationSet> pages =
        CalibrationFromImages(d->model.analysis, (*session)->inputs(), {dir.File("det0.ppm"), dir.File("det1.ppm")});
    INFO(pages.status().ToString());
    REQUIRE(pages.ok());
    d->calibration = *std::move(pages);
    absl::StatusOr<CalibrationSet> third = CalibrationFromImages(d->model.analysis, (*session)->inputs(), {held_out});
    REQUIRE(third.ok());
    d->held_out = third->samples[0][0];
    return d;
  }();
  return *det;
}

// The text map thresholded at 0.3, as PP-OCR's DB post-processing does.
std::vector<bool> TextMask(absl::string_view model_bytes, const Tensor& image) {
  SessionOptions options;
  options.intra_op_threads = 2;
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(model_bytes, options);
  REQUIRE(s.ok());
  absl::StatusOr<std::vector<Tensor>> out = (*s)->Run({image});
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  std::vector<bool> mask;
  for (float p : out->at(0).floats()) mask.push_back(p > 0.3f);
  return mask;
}

double IoU(const std::vector<bool>& a, const std::vector<bool>& b) {
  REQUIRE(a.size() == b.size());
  int64_t both = 0, either = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    both += a[i] && b[i];
    either += a[i] || b[i];
  }
  return either ? static_cast<double>(both) / either : 1.0;
}

VerifiedExport MustExportDet(const std::vector<LayerPlan>& plan,
                             model::ExportFlavour flavour = model::ExportFlavour::kOrtCpu) {
  const Det& det = LoadDet();
  ExportCheckOptions options;
  options.verify.threads = 2;
  options.export_options.flavour = flavour;
  absl::StatusOr<VerifiedExport> out = ExportAndVerify(det.model, det.bytes, plan, det.calibration, options);
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  // Keeps the original inputs and outputs.
  onnx::ModelProto exported;
  REQUIRE(exported.ParseFromString(out->exported.bytes));
  REQUIRE(exported.graph().input_size() == det.model.proto.graph().input_size());
  CHECK(exported.graph().input(0).name() == det.model.proto.graph().input(0).name());
  CHECK(exported.graph().output(0).name() == det.model.proto.graph().output(0).name());
  CHECK(out->exported.report.opset == 13);
  CHECK(out->verification.samples == 2);
  return *std::move(out);
}

TEST_CASE("PP-OCRv4 det exports at int8, mixed 4/8 bits and 30% channel pruning, runs, and finds text") {
  const Det& det = LoadDet();
  const std::vector<bool> reference = TextMask(det.bytes, det.held_out);
  int64_t text_pixels = 0;
  for (bool b : reference) text_pixels += b;
  REQUIRE(text_pixels > 5000);  // the rendered words are found by the original at all
  const size_t layers = det.model.analysis.layers.size();

  SECTION("uniform int8, weights and activations") {
    const VerifiedExport out = MustExportDet(std::vector<LayerPlan>(layers, LayerPlan{8, 8}));
    CHECK(out.verification.integer_ops.at("QLinearConv") >= 50);
    // PP-OCRv4 det's probability map is a saturating sigmoid: 8-bit activations cost it much of
    // its SQNR (about 5 dB measured) while the thresholded map hardly moves.
    CHECK(out.verification.sqnr_db > 3);
    CHECK(out.verification.cosine > 0.8);
    CHECK(out.exported.report.file_bytes < static_cast<int64_t>(det.bytes.size()) / 2);
    const double iou = IoU(reference, TextMask(out.exported.bytes, det.held_out));
    INFO("IoU " << iou << ", SQNR " << out.verification.sqnr_db << " dB");
    CHECK(iou >= 0.9);
  }
  SECTION("mixed: the larger half of the layers at 4 bits, the rest at 8") {
    std::vector<int64_t> params;
    for (const model::Layer& l : det.model.analysis.layers) params.push_back(l.params);
    std::vector<int64_t> sorted = params;
    std::sort(sorted.begin(), sorted.end());
    const int64_t median = sorted[sorted.size() / 2];
    std::vector<LayerPlan> plan;
    int four = 0;
    for (int64_t p : params) {
      plan.push_back(LayerPlan{p >= median ? 4 : 8, 8});
      four += p >= median;
    }
    REQUIRE(four >= static_cast<int>(layers / 2));
    const VerifiedExport out = MustExportDet(plan);
    CHECK(out.verification.integer_ops.at("QLinearConv") >= 50);
    CHECK(std::isfinite(out.verification.sqnr_db));
    CHECK(out.verification.sqnr_db > 0);
  }
  SECTION("30% of the output channels of every pointwise Conv removed") {
    std::vector<LayerPlan> plan;
    for (const model::Layer& l : det.model.analysis.layers) {
      const bool prunable = l.op_type == "Conv" && !l.grouped && l.kernel == std::vector<int64_t>{1, 1};
      plan.push_back(prunable ? LayerPlan{8, 8, Sparsity::kOutputChannel, 0.3} : LayerPlan{8, 8});
    }
    const VerifiedExport out = MustExportDet(plan);
    INFO("removed " << out.exported.report.removed_channels << " channels");
    CHECK(out.exported.report.removed_channels > 100);
    CHECK(std::isfinite(out.verification.sqnr_db));  // this much pruning leaves det's map nearly empty
    int64_t zeroed = 0;
    for (const model::LayerExport& l : out.exported.report.layers) {
      zeroed += l.zeroed_out_channels;
      if (l.zeroed_out_channels > 0) CHECK_FALSE(l.note.empty());
    }
    CHECK(out.exported.report.packed_model_bytes < static_cast<int64_t>(det.bytes.size()) / 4);
  }
}

// Every QuantizeLinear and DequantizeLinear of `model` with its zero point's type and values.
struct ZeroPoints {
  int nodes = 0, int8_zero = 0, other = 0;
};
ZeroPoints ZeroPointsOf(const onnx::ModelProto& model) {
  std::map<std::string, const onnx::TensorProto*> constants;
  for (const onnx::TensorProto& t : model.graph().initializer()) constants[t.name()] = &t;
  ZeroPoints z;
  for (const onnx::NodeProto& n : model.graph().node()) {
    if (n.op_type() != "QuantizeLinear" && n.op_type() != "DequantizeLinear") continue;
    ++z.nodes;
    auto it = n.input_size() > 2 ? constants.find(n.input(2)) : constants.end();
    const bool zero_int8 =
        it != constants.end() && it->second->data_type() == onnx::TensorProto::INT8 &&
        std::all_of(it->second->raw_data().begin(), it->second->raw_data().end(), [](char c) { return c == 0; });
    (zero_int8 ? z.int8_zero : z.other) += 1;
  }
  return z;
}

TEST_CASE("PP-OCRv4 det at 4-bit weights: INT4 in the file, within 10% of the packed size, and it runs") {
  const Det& det = LoadDet();
  const size_t layers = det.model.analysis.layers.size();
  const VerifiedExport w8 = MustExportDet(std::vector<LayerPlan>(layers, LayerPlan{8, 32}));
  const VerifiedExport w4 = MustExportDet(std::vector<LayerPlan>(layers, LayerPlan{4, 32}));
  const model::ExportReport& r = w4.exported.report;
  INFO("w4 file " << r.file_bytes << " B, packed " << r.packed_model_bytes << " B; w8 file "
                  << w8.exported.report.file_bytes << " B; SQNR " << w4.verification.sqnr_db << " dB");
  CHECK(r.file_bytes < w8.exported.report.file_bytes * 6 / 10);
  CHECK(std::abs(static_cast<double>(r.file_bytes) / static_cast<double>(r.packed_model_bytes) - 1) < 0.10);
  onnx::ModelProto file;
  REQUIRE(file.ParseFromString(w4.exported.bytes));
  int int4_dq = 0;
  for (const onnx::NodeProto& n : file.graph().node())
    int4_dq += n.op_type() == "DequantizeLinear" && n.domain() == "com.microsoft";
  CHECK(int4_dq == static_cast<int>(layers));
  CHECK(std::isfinite(w4.verification.sqnr_db));
  CHECK(w4.verification.sqnr_db < w8.verification.sqnr_db);
  CHECK(model::CheckConformance(file, model::ExportFlavour::kOrtCpu).ok());
  // w4a8 keeps int8 storage, which ONNX Runtime fuses into QLinearConv.
  const VerifiedExport w4a8 = MustExportDet(std::vector<LayerPlan>(layers, LayerPlan{4, 8}));
  CHECK(w4a8.verification.integer_ops.at("QLinearConv") >= 50);
}

// PP-OCRv4 rec (a model no issue's MatMul work was fitted on: a CNN, then SVTR attention blocks and a
// 120 x 6625 CTC head, 9 MatMul layers holding 38% of its weights) on two rendered text lines.
struct Rec {
  std::string bytes;
  model::LoadedModel model;
  CalibrationSet calibration;
};

const Rec& LoadRec() {
  static const Rec* rec = [] {
    auto* r = new Rec;
    r->bytes = model::testing::ReadCachedModel("bench/ppocrv4_rec.onnx");
    REQUIRE_FALSE(r->bytes.empty());
    model::AnalyzeOptions options;
    options.input_shapes["x"] = {1, 3, 48, 320};
    options.shape_probe = OnnxRuntimeShapeProbe();
    r->model = model::testing::MustLoad(r->bytes, options);
    static testing::TempDir dir;
    const std::string script = std::string(SQUEEZE_SOURCE_DIR) + "/bench/fidelity/make_text_images.sh";
    REQUIRE(std::system((script + " " + dir.path() + " >/dev/null").c_str()) == 0);
    absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(r->bytes);
    REQUIRE(session.ok());
    absl::StatusOr<CalibrationSet> lines =
        CalibrationFromImages(r->model.analysis, (*session)->inputs(), {dir.File("rec0.ppm"), dir.File("rec1.ppm")});
    INFO(lines.status().ToString());
    REQUIRE(lines.ok());
    r->calibration = *std::move(lines);
    return r;
  }();
  return *rec;
}

VerifiedExport MustExportRec(const std::vector<LayerPlan>& plan) {
  const Rec& rec = LoadRec();
  ExportCheckOptions options;
  options.verify.threads = 2;
  absl::StatusOr<VerifiedExport> out = ExportAndVerify(rec.model, rec.bytes, plan, rec.calibration, options);
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  return *std::move(out);
}

double ArgmaxAgreement(const Verification& v) {
  for (const OutputFidelity& o : v.outputs) {
    for (const auto& [name, value] : o.metrics) {
      if (name == "argmax agreement") return value;
    }
  }
  return -1;
}

TEST_CASE("PP-OCRv4 rec with 4-bit MatMul weights: MatMulNBits, the file its predicted size, and it still reads") {
  const Rec& rec = LoadRec();
  const std::vector<model::Layer>& layers = rec.model.analysis.layers;
  // The convolutions stay at 8 bits (at 4 they cost this model its reading: measured SQNR below
  // 0 dB); the MatMuls go to 4, block-wise or with one scale per column.
  std::vector<LayerPlan> w8(layers.size(), LayerPlan{8, 32}), blocks = w8, per_channel = w8;
  int matmuls = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!model::WritesMatMulNBits(layers[i], model::ExportFlavour::kOrtCpu, 4, 32)) continue;
    blocks[i] = per_channel[i] = LayerPlan{4, 32};
    blocks[i].block_size = 32;
    ++matmuls;
  }
  REQUIRE(matmuls == 9);
  const VerifiedExport eight = MustExportRec(w8);
  const VerifiedExport four = MustExportRec(blocks);
  const VerifiedExport int4 = MustExportRec(per_channel);
  const model::ExportReport& r = four.exported.report;
  INFO("MatMuls w4 block 32: file " << r.file_bytes << " B, SQNR " << four.verification.sqnr_db
                                    << " dB, argmax agreement " << ArgmaxAgreement(four.verification)
                                    << "; w4 per channel: file " << int4.exported.report.file_bytes << " B, SQNR "
                                    << int4.verification.sqnr_db << " dB, argmax agreement "
                                    << ArgmaxAgreement(int4.verification) << "; all w8: file "
                                    << eight.exported.report.file_bytes << " B, SQNR " << eight.verification.sqnr_db
                                    << " dB");
  // ONNX Runtime runs the nine MatMulNBits as such, and the file keeps to its rules.
  REQUIRE(four.verification.integer_ops.count("MatMulNBits") == 1);
  CHECK(four.verification.integer_ops.at("MatMulNBits") == matmuls);
  onnx::ModelProto file;
  REQUIRE(file.ParseFromString(four.exported.bytes));
  CHECK(model::CheckConformance(file, model::ExportFlavour::kOrtCpu).ok());
  // What each layer holds is what the size predictor says it holds.
  const std::vector<model::BatchNormFold> folds = model::BatchNormFolds(rec.model);
  int64_t matmul_bytes = 0, matmul_w8_bytes = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    INFO(layers[i].name);
    CHECK(r.layers[i].file_bytes == model::LayerFileBytes(layers[i], blocks[i], model::ExportFlavour::kOrtCpu,
                                                          layers[i].out_channels, folds[i].folds));
    if (blocks[i].block_size > 0) {
      matmul_bytes += r.layers[i].file_bytes;
      matmul_w8_bytes += eight.exported.report.layers[i].file_bytes;
    }
  }
  // 4-bit codes and a scale per 32: 0.625 bytes a weight, against int8's 1 and a scale a column.
  CHECK(matmul_bytes < matmul_w8_bytes * 65 / 100);
  CHECK(r.file_bytes < eight.exported.report.file_bytes);
  // Block-wise scales read closer to the original than one scale per column of K.
  CHECK(four.verification.sqnr_db > int4.verification.sqnr_db);
  CHECK(four.verification.sqnr_db > 10);
  CHECK(ArgmaxAgreement(four.verification) >= 0.9);
}

TEST_CASE("PP-OCRv4 det exports for TensorRT: int8 zero-point-0 Q/DQ only, TensorRT's rules hold, it runs here") {
  const Det& det = LoadDet();
  const std::vector<LayerPlan> plan(det.model.analysis.layers.size(), LayerPlan{8, 8});
  const VerifiedExport trt = MustExportDet(plan, model::ExportFlavour::kTensorRt);
  onnx::ModelProto file;
  REQUIRE(file.ParseFromString(trt.exported.bytes));
  const ZeroPoints z = ZeroPointsOf(file);
  INFO(trt.exported.report.conformance);
  CHECK(z.nodes > 150);
  CHECK(z.other == 0);  // no uint8 activation, no int32 bias
  CHECK(z.int8_zero == z.nodes);
  CHECK_THAT(trt.exported.report.conformance, Contains("tensorrt: 6 rules held"));
  CHECK(model::CheckConformance(file, model::ExportFlavour::kTensorRt).ok());
  // It runs in ONNX Runtime's CPU provider, measured like any export: int8 symmetric activations
  // cost a sigmoid map a little more than uint8 ones, and the text is still found.
  INFO("SQNR " << trt.verification.sqnr_db << " dB");
  CHECK(trt.verification.sqnr_db > 2);
  const std::vector<bool> reference = TextMask(det.bytes, det.held_out);
  const double iou = IoU(reference, TextMask(trt.exported.bytes, det.held_out));
  INFO("IoU " << iou);
  CHECK(iou >= 0.85);

  // The check fails where TensorRT would: the ort-cpu file of the same plan breaks its rules, and
  // says which and where.
  const VerifiedExport cpu = MustExportDet(plan);
  onnx::ModelProto cpu_file;
  REQUIRE(cpu_file.ParseFromString(cpu.exported.bytes));
  const model::ConformanceReport broken = model::CheckConformance(cpu_file, model::ExportFlavour::kTensorRt);
  CHECK_FALSE(broken.ok());
  CHECK_THAT(broken.Summary(), Contains("int8 zero points: QuantizeLinear '") && Contains("uint8 zero point") &&
                                   Contains("no int32 DequantizeLinear"));
  CHECK(model::CheckConformance(cpu_file, model::ExportFlavour::kOrtCpu).ok());
}

TEST_CASE("PP-OCRv4 det exports for the QNN HTP: whole-graph QDQ, no float op between quantized layers, it runs") {
  const Det& det = LoadDet();
  const size_t layers = det.model.analysis.layers.size();
  const VerifiedExport npu = MustExportDet(std::vector<LayerPlan>(layers, LayerPlan{8, 8}), model::ExportFlavour::kQnn);
  const model::ExportReport& r = npu.exported.report;
  INFO(r.conformance);
  onnx::ModelProto file;
  REQUIRE(file.ParseFromString(npu.exported.bytes));
  const model::ConformanceReport conformance = model::CheckConformance(file, model::ExportFlavour::kQnn);
  CHECK(conformance.ok());
  CHECK(conformance.float_ops_between_quantized == 0);
  CHECK(r.float_ops_between_quantized == 0);
  CHECK_THAT(r.conformance, Contains("qnn: 6 rules held") && Contains("no float op between quantized tensors"));
  // The ort-cpu file of the same plan leaves its elementwise ops float between the integer layers.
  const VerifiedExport cpu = MustExportDet(std::vector<LayerPlan>(layers, LayerPlan{8, 8}));
  INFO("ort-cpu: " << cpu.exported.report.conformance);
  CHECK(cpu.exported.report.float_ops_between_quantized > 10);
  CHECK(r.quantized_activations > cpu.exported.report.quantized_activations);
  // The graph output is the dequantized value: the sigmoid writing it stays quantized.
  bool output_dequantized = false;
  for (const onnx::NodeProto& n : file.graph().node()) {
    output_dequantized |= n.op_type() == "DequantizeLinear" && n.output(0) == file.graph().output(0).name();
  }
  CHECK(output_dequantized);
  INFO("SQNR " << npu.verification.sqnr_db << " dB (ort-cpu " << cpu.verification.sqnr_db << " dB)");
  CHECK(npu.verification.sqnr_db > 2);
  const double iou = IoU(TextMask(det.bytes, det.held_out), TextMask(npu.exported.bytes, det.held_out));
  INFO("IoU " << iou);
  CHECK(iou >= 0.85);

  SECTION("a mixed plan converts once where fp16 layers meet quantized ones, and conforms") {
    std::vector<LayerPlan> plan;
    for (size_t i = 0; i < layers; ++i)
      plan.push_back(i % 3 == 0 ? LayerPlan{16, 16} : LayerPlan{i % 3 == 1 ? 8 : 4, 8});
    const VerifiedExport mixed = MustExportDet(plan, model::ExportFlavour::kQnn);
    INFO(mixed.exported.report.conformance << "; SQNR " << mixed.verification.sqnr_db << " dB");
    CHECK(mixed.exported.report.float_ops_between_quantized == 0);
    CHECK(std::isfinite(mixed.verification.sqnr_db));
  }
  SECTION("16-bit activations are uint16, ONNX Runtime's com.microsoft Q/DQ, and closer to the original") {
    // (The 8-bit weights bound it: det's map at w8a16 measured 12.2 dB against 5.7 dB at w8a8.)
    const VerifiedExport a16 =
        MustExportDet(std::vector<LayerPlan>(layers, LayerPlan{8, 16}), model::ExportFlavour::kQnn);
    onnx::ModelProto f16;
    REQUIRE(f16.ParseFromString(a16.exported.bytes));
    int uint16_pairs = 0;
    for (const onnx::NodeProto& n : f16.graph().node())
      uint16_pairs += n.op_type() == "QuantizeLinear" && n.domain() == "com.microsoft";
    CHECK(uint16_pairs == a16.exported.report.quantized_activations);
    CHECK(model::CheckConformance(f16, model::ExportFlavour::kQnn).ok());
    INFO("a16 SQNR " << a16.verification.sqnr_db << " dB");
    CHECK(a16.verification.sqnr_db > npu.verification.sqnr_db + 4);
  }
}

}  // namespace
}  // namespace squeeze::runtime
