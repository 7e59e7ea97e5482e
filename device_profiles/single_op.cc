#include "device_profiles/single_op.h"

#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "model/export.h"
#include "model/loader.h"

namespace squeeze::device_profiles {
namespace {

constexpr int64_t kOpset = 17;

int64_t Product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int64_t ElementBytes(int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::INT32:
      return 4;
    case onnx::TensorProto::FLOAT16:
      return 2;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::DOUBLE:
      return 8;
    default:
      return 1;
  }
}

int64_t StoredBytes(const onnx::TensorProto& t) {
  int64_t n = 1;
  for (int64_t d : t.dims()) n *= d;
  return n * ElementBytes(t.data_type());
}

onnx::ModelProto EmptyModel() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("squeeze-profile");
  onnx::OperatorSetIdProto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  m.mutable_graph()->set_name("single_op");
  return m;
}

void SetValue(onnx::ValueInfoProto* v, const std::string& name, int32_t type, const std::vector<int64_t>& dims) {
  v->set_name(name);
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(type);
  t->mutable_shape()->clear_dim();
  for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
}

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& inputs,
                         const std::string& output) {
  onnx::NodeProto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(absl::StrCat(op, "_", g->node_size() - 1));
  for (const std::string& i : inputs) n->add_input(i);
  n->add_output(output);
  return n;
}

void SetInts(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void SetInt(onnx::NodeProto* n, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

// Uniform in ±bound; raw little-endian fp32.
void AddFloatInitializer(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims, float bound,
                         std::mt19937_64* rng) {
  std::uniform_real_distribution<float> uniform(-bound, bound);
  std::vector<float> values(static_cast<size_t>(Product(dims)));
  for (float& v : values) v = uniform(*rng);
  onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
}

void AddScalarInitializer(onnx::GraphProto* g, const std::string& name, int32_t type, const std::string& raw) {
  onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  t->set_raw_data(raw);
}

runtime::Tensor RandomInput(const std::string& name, runtime::ElementType type, const std::vector<int64_t>& shape,
                            std::mt19937_64* rng) {
  runtime::Tensor t;
  t.name = name;
  t.type = type;
  t.shape = shape;
  const int64_t n = Product(shape);
  if (type == runtime::ElementType::kUint8) {
    std::uniform_int_distribution<int> byte(0, 255);
    t.bytes.resize(static_cast<size_t>(n));
    for (char& c : t.bytes) c = static_cast<char>(byte(*rng));
    return t;
  }
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = uniform(*rng);
  t.bytes.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return t;
}

absl::Status CheckSpec(const OpSpec& s) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("op spec '", OpSpecKey(s), "': ", what));
  };
  if (s.kind == OpKind::kGemm) {
    if (s.gemm_m < 1 || s.gemm_k < 1 || s.gemm_n < 1) return bad("gemm dimensions must be positive");
  } else if (IsLayerKind(s.kind)) {
    if (s.in_channels < 1 || s.out_channels < 1 || s.height < 1 || s.width < 1 || s.kernel < 1 || s.stride < 1 ||
        s.groups < 1) {
      return bad("channels, resolution, kernel, stride and groups must be positive");
    }
    if (s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0) return bad("groups must divide the channels");
    if (s.kind == OpKind::kDepthwiseConv && (s.groups != s.in_channels || s.out_channels != s.in_channels)) {
      return bad("a depthwise conv has groups = in = out channels");
    }
    if (s.kind != OpKind::kConvTranspose && s.kernel % 2 == 0) return bad("conv kernels must be odd ('same' padding)");
    if (s.kind == OpKind::kConvTranspose && s.kernel != s.stride && s.kernel != 2 * s.stride) {
      return bad("ConvTranspose kernels must be the stride or twice it (output = input x stride)");
    }
  } else {
    if (s.shape.empty() || s.Elements() < 1) return bad("the tensor shape must be positive");
    static const char* kElementwise[] = {"Add", "Mul", "Relu", "HardSigmoid", "HardSwish", "Sigmoid", "Clip"};
    const bool known =
        s.kind == OpKind::kQuantizeLinear     ? s.op_type == "QuantizeLinear"
        : s.kind == OpKind::kDequantizeLinear ? s.op_type == "DequantizeLinear"
        : s.kind == OpKind::kTranspose        ? s.op_type == "Transpose" && s.shape.size() == 4
        : s.kind == OpKind::kMaxPool
            ? s.op_type == "MaxPool" && s.shape.size() == 4 && s.shape[2] % 2 == 0 && s.shape[3] % 2 == 0
            : std::find(std::begin(kElementwise), std::end(kElementwise), s.op_type) != std::end(kElementwise);
    if (!known) return bad(absl::StrCat("'", s.op_type, "' is not an op of this kind"));
  }
  const bool integer = s.weight_bits >= 2 && s.weight_bits <= 8;
  if (!(s.weight_bits == 32 || s.weight_bits == 16 || integer)) return bad("weight bits must be 32, 16 or 2..8");
  if (s.activation_bits != 32 && s.activation_bits != 8) return bad("activation bits must be 32 or 8");
  if (IsLayerKind(s.kind) && s.activation_bits == 8 && !integer) return bad("8-bit activations need integer weights");
  if (s.sparsity == Sparsity::kOutputChannel) return bad("output-channel pruning is a smaller dense layer");
  return absl::OkStatus();
}

// The fp32 one-layer model of a layer spec: x → op → y.
onnx::ModelProto LayerModel(const OpSpec& s, std::mt19937_64* rng) {
  onnx::ModelProto m = EmptyModel();
  onnx::GraphProto* g = m.mutable_graph();
  std::vector<int64_t> in, out, weight;
  if (s.kind == OpKind::kGemm) {
    in = {s.gemm_m, s.gemm_k};
    out = {s.gemm_m, s.gemm_n};
    weight = {s.gemm_k, s.gemm_n};
    AddNode(g, "MatMul", {"x", "w"}, "y");
    AddFloatInitializer(g, "w", weight, std::sqrt(3.f / s.gemm_k), rng);
  } else {
    in = {1, s.in_channels, s.height, s.width};
    const bool transpose = s.kind == OpKind::kConvTranspose;
    const int64_t oh = transpose ? s.height * s.stride : (s.height + s.stride - 1) / s.stride;
    const int64_t ow = transpose ? s.width * s.stride : (s.width + s.stride - 1) / s.stride;
    out = {1, s.out_channels, oh, ow};
    weight = transpose ? std::vector<int64_t>{s.in_channels, s.out_channels / s.groups, s.kernel, s.kernel}
                       : std::vector<int64_t>{s.out_channels, s.in_channels / s.groups, s.kernel, s.kernel};
    onnx::NodeProto* n = AddNode(g, transpose ? "ConvTranspose" : "Conv", {"x", "w", "b"}, "y");
    SetInts(n, "kernel_shape", {s.kernel, s.kernel});
    SetInts(n, "strides", {s.stride, s.stride});
    const int64_t pad = transpose ? (s.kernel - s.stride) / 2 : (s.kernel - 1) / 2;
    SetInts(n, "pads", {pad, pad, pad, pad});
    if (s.groups > 1) SetInt(n, "group", s.groups);
    const int64_t fan_in = (s.in_channels / s.groups) * s.kernel * s.kernel;
    AddFloatInitializer(g, "w", weight, std::sqrt(3.f / fan_in), rng);
    AddFloatInitializer(g, "b", {s.out_channels}, 0.1f, rng);
  }
  SetValue(g->add_input(), "x", onnx::TensorProto::FLOAT, in);
  SetValue(g->add_output(), "y", onnx::TensorProto::FLOAT, out);
  return m;
}

// The model of a non-layer spec: QuantizeLinear and DequantizeLinear per tensor (scalar scale and
// uint8 zero point, as the exporter writes activations), binary ops on two inputs of one shape, a
// uint8 NCHW -> NHWC Transpose (what ONNX Runtime inserts where an integer kernel, which runs NHWC,
// meets a float one), a uint8 NCHW MaxPool 2x2 stride 2 (what a float pool between a float layer
// and an integer one becomes: ONNX Runtime moves the QuantizeLinear above it).
onnx::ModelProto OpModel(const OpSpec& s) {
  onnx::ModelProto m = EmptyModel();
  onnx::GraphProto* g = m.mutable_graph();
  std::vector<std::pair<std::string, int32_t>> inputs;
  int32_t output_type = onnx::TensorProto::FLOAT;
  std::vector<int64_t> output_shape = s.shape;
  if (s.op_type == "Transpose") {
    SetInts(AddNode(g, "Transpose", {"x"}, "y"), "perm", {0, 2, 3, 1});
    inputs = {{"x", onnx::TensorProto::UINT8}};
    output_type = onnx::TensorProto::UINT8;
    output_shape = {s.shape[0], s.shape[2], s.shape[3], s.shape[1]};
  } else if (s.op_type == "MaxPool") {
    onnx::NodeProto* pool = AddNode(g, "MaxPool", {"x"}, "y");
    SetInts(pool, "kernel_shape", {2, 2});
    SetInts(pool, "strides", {2, 2});
    inputs = {{"x", onnx::TensorProto::UINT8}};
    output_type = onnx::TensorProto::UINT8;
    output_shape = {s.shape[0], s.shape[1], s.shape[2] / 2, s.shape[3] / 2};
  } else if (s.op_type == "QuantizeLinear" || s.op_type == "DequantizeLinear") {
    const float scale = 0.02f;
    AddScalarInitializer(g, "scale", onnx::TensorProto::FLOAT,
                         std::string(reinterpret_cast<const char*>(&scale), sizeof(scale)));
    AddScalarInitializer(g, "zero_point", onnx::TensorProto::UINT8, std::string(1, static_cast<char>(128)));
    AddNode(g, s.op_type, {"x", "scale", "zero_point"}, "y");
    const bool quantize = s.op_type == "QuantizeLinear";
    inputs.push_back({"x", quantize ? onnx::TensorProto::FLOAT : onnx::TensorProto::UINT8});
    if (quantize) output_type = onnx::TensorProto::UINT8;
  } else if (s.op_type == "Add" || s.op_type == "Mul") {
    AddNode(g, s.op_type, {"a", "b"}, "y");
    inputs = {{"a", onnx::TensorProto::FLOAT}, {"b", onnx::TensorProto::FLOAT}};
  } else {
    AddNode(g, s.op_type, {"x"}, "y");
    inputs = {{"x", onnx::TensorProto::FLOAT}};
  }
  for (const auto& [name, type] : inputs) SetValue(g->add_input(), name, type, s.shape);
  SetValue(g->add_output(), "y", output_type, output_shape);
  return m;
}

// Cuts a one-layer QDQ export down to uint8 in and out: the QuantizeLinear of the graph input
// goes (its output becomes the input) and the graph output becomes its QuantizeLinear's output
// (the DequantizeLinear after it, read by nothing, goes too).
absl::Status QuantizedBoundary(onnx::ModelProto* m) {
  onnx::GraphProto* g = m->mutable_graph();
  if (g->input_size() != 1 || g->output_size() != 1)
    return absl::InternalError("a single-op export has one input and output");
  const std::string x = g->input(0).name(), y = g->output(0).name();
  std::string x_q, y_q;
  int drop_q = -1;
  for (int i = 0; i < g->node_size(); ++i) {
    const onnx::NodeProto& n = g->node(i);
    if (n.op_type() != "QuantizeLinear") continue;
    if (n.input(0) == x) x_q = n.output(0), drop_q = i;
    if (n.input(0) == y) y_q = n.output(0);
  }
  if (x_q.empty() || y_q.empty()) return absl::InternalError("the export has no QuantizeLinear on its input or output");
  std::vector<onnx::NodeProto> kept;
  for (int i = 0; i < g->node_size(); ++i) {
    const onnx::NodeProto& n = g->node(i);
    if (i == drop_q) continue;
    if (n.op_type() == "DequantizeLinear" && n.input(0) == y_q) continue;
    kept.push_back(n);
  }
  g->clear_node();
  for (onnx::NodeProto& n : kept) *g->add_node() = std::move(n);
  std::vector<int64_t> in_dims, out_dims;
  for (const auto& d : g->input(0).type().tensor_type().shape().dim()) in_dims.push_back(d.dim_value());
  for (const auto& d : g->output(0).type().tensor_type().shape().dim()) out_dims.push_back(d.dim_value());
  SetValue(g->mutable_input(0), x_q, onnx::TensorProto::UINT8, in_dims);
  SetValue(g->mutable_output(0), y_q, onnx::TensorProto::UINT8, out_dims);
  return absl::OkStatus();
}

// The mask a sample applies for a sparsity. Samples never ask for output-channel pruning (a pruned
// layer is sampled as the smaller dense layer it exports to; CheckSpec refuses it), so unlike an
// export, that one has no mask here.
model::Sparsity SampleMaskPattern(Sparsity s) {
  switch (s) {
    case Sparsity::kUnstructured:
      return model::Sparsity::kUnstructured;
    case Sparsity::kTwoFour:
      return model::Sparsity::kTwoFour;
    default:
      return model::Sparsity::kDense;
  }
}

runtime::ElementType ElementTypeOf(int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::UINT8:
      return runtime::ElementType::kUint8;
    case onnx::TensorProto::FLOAT16:
      return runtime::ElementType::kFloat16;
    default:
      return runtime::ElementType::kFloat32;
  }
}

std::vector<int64_t> Dims(const onnx::ValueInfoProto& v) {
  std::vector<int64_t> dims;
  for (const auto& d : v.type().tensor_type().shape().dim()) dims.push_back(d.dim_value());
  return dims;
}

}  // namespace

absl::StatusOr<SingleOpModel> BuildSingleOpModel(const OpSpec& spec, uint64_t seed) {
  if (absl::Status s = CheckSpec(spec); !s.ok()) return s;
  std::mt19937_64 rng(seed);
  SingleOpModel out;
  onnx::ModelProto proto;
  if (IsLayerKind(spec.kind)) {
    absl::StatusOr<model::LoadedModel> loaded =
        model::LoadModel(LayerModel(spec, &rng).SerializeAsString(), model::AnalyzeOptions{});
    if (!loaded.ok()) return loaded.status();
    if (loaded->analysis.layers.size() != 1) return absl::InternalError("a single-op model has one layer");
    out.macs = loaded->analysis.layers[0].macs;
    const bool plain = spec.weight_bits == 32 && spec.activation_bits == 32 && spec.sparsity == Sparsity::kDense;
    if (plain) {
      proto = std::move(loaded->proto);
    } else {
      model::LayerPlan plan;
      plan.weight_bits = spec.weight_bits;
      plan.activation_bits = spec.activation_bits;
      plan.pattern = SampleMaskPattern(spec.sparsity);
      plan.prune_ratio = spec.sparsity_ratio;
      // A gemm the export writes as MatMulNBits is measured as one, at the default grid's smaller
      // block: the cost model takes one latency for every block size of a layer.
      if (model::WritesMatMulNBits(loaded->analysis.layers[0], model::ExportFlavour::kOrtCpu, plan.weight_bits,
                                   plan.activation_bits)) {
        plan.block_size = kSampleBlockSize;
      }
      const std::vector<model::LayerPlan> plans = {plan};
      absl::StatusOr<std::vector<std::string>> names =
          model::ActivationsToCalibrate(*loaded, plans, model::ExportFlavour::kOrtCpu);
      if (!names.ok()) return names.status();
      // Ranges matter to the values, not the time: inputs are uniform in ±1, outputs a few units.
      std::map<std::string, model::TensorRange> ranges;
      for (const std::string& n : *names) ranges[n] = n == "x" ? model::TensorRange{-1, 1} : model::TensorRange{-4, 4};
      absl::StatusOr<model::ExportedModel> exported = model::ExportModel(*loaded, plans, ranges);
      if (!exported.ok()) return exported.status();
      if (!proto.ParseFromString(exported->bytes)) return absl::InternalError("cannot parse the exported model");
      if (spec.activation_bits == 8) {
        if (absl::Status s = QuantizedBoundary(&proto); !s.ok()) return s;
      }
    }
    proto.clear_metadata_props();
  } else {
    proto = OpModel(spec);
  }

  const onnx::GraphProto& g = proto.graph();
  for (const onnx::ValueInfoProto& v : g.input()) {
    const int32_t type = v.type().tensor_type().elem_type();
    out.inputs.push_back(RandomInput(v.name(), ElementTypeOf(type), Dims(v), &rng));
    out.activation_bytes += Product(Dims(v)) * ElementBytes(type);
  }
  out.output_shape = Dims(g.output(0));
  out.activation_bytes += Product(out.output_shape) * ElementBytes(g.output(0).type().tensor_type().elem_type());
  for (const onnx::TensorProto& t : g.initializer()) out.weight_bytes += StoredBytes(t);
  for (const onnx::NodeProto& n : g.node()) {
    out.op_types.push_back(n.op_type());
    for (const onnx::AttributeProto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::TENSOR) out.weight_bytes += StoredBytes(a.t());
    }
  }
  out.bytes = proto.SerializeAsString();
  return out;
}

absl::StatusOr<std::vector<std::string>> OptimizedOpTypes(const std::string& model_bytes,
                                                          const runtime::SessionOptions& options) {
  static std::atomic<int> counter{0};
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      absl::StrCat("squeeze-profile-", getpid(), "-", counter.fetch_add(1), ".optimized.onnx");
  runtime::SessionOptions with_path = options;
  with_path.optimized_model_path = path.string();
  absl::StatusOr<std::unique_ptr<runtime::Session>> session = runtime::Session::Create(model_bytes, with_path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  in.close();
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
  if (!session.ok()) return session.status();
  onnx::ModelProto optimized;
  if (!optimized.ParseFromString(bytes.str())) {
    return absl::InternalError(absl::StrCat("cannot read ONNX Runtime's optimized model from ", path.string()));
  }
  std::vector<std::string> ops;
  for (const onnx::NodeProto& n : optimized.graph().node()) {
    if (n.op_type() != "Constant") ops.push_back(n.op_type());
  }
  return ops;
}

}  // namespace squeeze::device_profiles
