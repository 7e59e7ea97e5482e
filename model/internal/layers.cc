#include "model/internal/layers.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"

namespace squeeze::model::internal {
namespace {

bool IsLayerOp(const onnx::NodeProto& node) {
  if (!NormalizedDomain(node.domain()).empty()) return false;
  const std::string& op = node.op_type();
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul";
}

int64_t IntAttribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const onnx::AttributeProto& attr : node.attribute()) {
    if (attr.name() == name && attr.type() == onnx::AttributeProto::INT) return attr.i();
  }
  return fallback;
}

std::vector<int64_t> IntsAttribute(const onnx::NodeProto& node, const std::string& name) {
  for (const onnx::AttributeProto& attr : node.attribute()) {
    if (attr.name() == name) return {attr.ints().begin(), attr.ints().end()};
  }
  return {};
}

// The product of dims[begin:], or -1 on overflow.
int64_t Product(const Dims& dims, size_t begin = 0) {
  int64_t product = 1;
  for (size_t i = begin; i < dims.size(); ++i) {
    if (__builtin_mul_overflow(product, dims[i], &product)) return -1;
  }
  return product;
}

int64_t Multiply(int64_t a, int64_t b) {
  int64_t product;
  return a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product) ? -1 : product;
}

class Surveyor {
 public:
  explicit Surveyor(GraphSurvey* survey) : survey_(survey) {}

  absl::Status Visit(const onnx::GraphProto& graph, const std::string& path, const ConstantScope* parent) {
    const ConstantScope scope(graph, parent);
    for (const onnx::NodeProto& node : graph.node()) {
      const std::string op = QualifiedOpType(node);
      ++survey_->op_histogram[op];
      absl::StatusOr<bool> layer = MaybeLayer(node, path, scope);
      if (!layer.ok()) return layer.status();
      if (!*layer && op != "Constant") ++survey_->uncompressed_ops[op];
      for (const onnx::AttributeProto& attr : node.attribute()) {
        if (!attr.has_g() && attr.graphs_size() == 0) continue;
        const std::string sub = SubgraphPath(path, node.name(), attr.name());
        if (attr.has_g()) {
          if (absl::Status s = Visit(attr.g(), sub, &scope); !s.ok()) return s;
        }
        for (int g = 0; g < attr.graphs_size(); ++g) {
          if (absl::Status s = Visit(attr.graphs(g), absl::StrCat(sub, "[", g, "]"), &scope); !s.ok()) return s;
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  // Adds `node` as a layer when it is one; false when it is not.
  absl::StatusOr<bool> MaybeLayer(const onnx::NodeProto& node, const std::string& path, const ConstantScope& scope) {
    if (!IsLayerOp(node) || node.input_size() < 2 || node.output_size() < 1) return false;
    const ConstantRef* weight = scope.Find(node.input(1));
    if (!weight) return false;  // a computed weight: activation x activation
    const std::string name = QualifiedNodeName(path, node.name());
    const onnx::TensorProto& w = *weight->tensor;
    if (!IsDecodableFloat(w.data_type())) {
      survey_->warnings.push_back(absl::StrCat(node.op_type(), " '", name, "' has a ", DataTypeName(w.data_type()),
                                               " weight; only float weights are compressed"));
      return false;
    }

    LayerSite site;
    Layer& layer = site.layer;
    layer.name = name;
    layer.op_type = node.op_type();
    layer.subgraph = path;
    layer.weight_name = node.input(1);
    layer.weight_storage = weight->storage;
    layer.weight_elem_type = w.data_type();
    layer.weight_shape.assign(w.dims().begin(), w.dims().end());
    layer.params = ElementCount(w);
    site.graph_path = path;
    site.input_name = node.input(0);
    site.output_name = node.output(0);
    site.weight = &w;
    const Dims& dims = layer.weight_shape;
    const std::string what =
        absl::StrCat(layer.op_type, " '", name, "': weight '", layer.weight_name, "' ", DimsString(dims));

    if (layer.op_type == "Conv" || layer.op_type == "ConvTranspose") {
      const bool transpose = layer.op_type == "ConvTranspose";
      if (dims.size() < 3) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has rank ", dims.size(), "; a ", layer.op_type, " weight is ",
                         transpose ? "[C_in, C_out/groups, k...]" : "[C_out, C_in/groups, k...]"));
      }
      layer.groups = IntAttribute(node, "group", 1);
      if (layer.groups < 1 || dims[0] % layer.groups != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": group ", layer.groups, " does not divide its ", dims[0], " channels"));
      }
      layer.out_channels = transpose ? dims[1] * layer.groups : dims[0];
      layer.in_channels = transpose ? dims[0] : dims[1] * layer.groups;
      layer.grouped = layer.groups > 1;
      // One input channel per group: dims[1] for Conv, dims[0] / groups for ConvTranspose.
      layer.depthwise = layer.grouped && (transpose ? dims[0] / layer.groups : dims[1]) == 1;
      layer.kernel.assign(dims.begin() + 2, dims.end());
      layer.strides = IntsAttribute(node, "strides");
      if (layer.strides.empty()) layer.strides.assign(layer.kernel.size(), 1);
    } else if (layer.op_type == "Gemm") {
      if (dims.size() != 2) {
        return absl::InvalidArgumentError(absl::StrCat(what, " has rank ", dims.size(), "; a Gemm B is a matrix"));
      }
      site.trans_a = IntAttribute(node, "transA", 0) != 0;
      site.trans_b = IntAttribute(node, "transB", 0) != 0;
      layer.in_channels = site.trans_b ? dims[1] : dims[0];
      layer.out_channels = site.trans_b ? dims[0] : dims[1];
    } else {  // MatMul: B is [..., K, N], or [K] for a vector
      if (dims.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(what, " is a scalar; MatMul needs a vector or matrix"));
      }
      layer.in_channels = dims.size() >= 2 ? dims[dims.size() - 2] : dims[0];
      layer.out_channels = dims.size() >= 2 ? dims.back() : 1;
    }

    if (layer.op_type != "MatMul" && node.input_size() >= 3 && !node.input(2).empty()) {
      if (const ConstantRef* bias = scope.Find(node.input(2))) {
        site.bias = bias->tensor;
        layer.bias_params = ElementCount(*bias->tensor);
      }
    }
    survey_->layers.push_back(std::move(site));
    return true;
  }

  GraphSurvey* survey_;
};

ShapeSource Weaker(ShapeSource a, ShapeSource b) {
  auto rank = [](ShapeSource s) {
    switch (s) {
      case ShapeSource::kDeclared:
        return 0;
      case ShapeSource::kInferred:
        return 1;
      case ShapeSource::kOnnxRuntime:
        return 2;
      case ShapeSource::kUnknown:
        break;
    }
    return 3;
  };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace

absl::StatusOr<GraphSurvey> SurveyGraph(const onnx::ModelProto& model) {
  GraphSurvey survey;
  Surveyor surveyor(&survey);
  if (absl::Status s = surveyor.Visit(model.graph(), "", nullptr); !s.ok()) return s;
  return survey;
}

absl::Status SetLayerShapes(LayerSite* site, const ValueShape& input, const ValueShape& output) {
  Layer& layer = site->layer;
  const Dims& w = layer.weight_shape;
  const Dims& in = input.dims;
  const Dims& out = output.dims;
  const std::string what = absl::StrCat(layer.op_type, " '", layer.name, "' (input ", DimsString(in), ", weight ",
                                        DimsString(w), ", output ", DimsString(out), ")");
  auto contradiction = [&what](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", why));
  };

  int64_t macs = -1;
  if (layer.op_type == "Conv") {
    // N·C_out·prod(out spatial) · (C_in/groups)·prod(k) = prod(output) · prod(weight[1:]).
    if (out.size() != w.size() || in.size() != w.size()) return contradiction("ranks differ");
    if (out[1] != w[0] || in[1] != layer.in_channels) return contradiction("channels do not match");
    macs = Multiply(Product(out), Product(w, 1));
  } else if (layer.op_type == "ConvTranspose") {
    // N·C_in·prod(in spatial) · (C_out/groups)·prod(k) = prod(input) · prod(weight[1:]).
    if (out.size() != w.size() || in.size() != w.size()) return contradiction("ranks differ");
    if (in[1] != w[0] || out[1] != layer.out_channels) return contradiction("channels do not match");
    macs = Multiply(Product(in), Product(w, 1));
  } else if (layer.op_type == "Gemm") {
    // M·K·N with A [M, K] (transposed when transA) and B [K, N] (transposed when transB).
    if (in.size() != 2) return contradiction("Gemm's A is not a matrix");
    const int64_t m = site->trans_a ? in[1] : in[0];
    const int64_t k = site->trans_a ? in[0] : in[1];
    if (k != layer.in_channels) return contradiction("inner dimensions differ");
    macs = Multiply(Multiply(m, k), layer.out_channels);
  } else {
    // MatMul: prod(batch)·M·K·N = prod(output) · K.
    if (in.empty() || in.back() != layer.in_channels) return contradiction("inner dimensions differ");
    macs = Multiply(Product(out), layer.in_channels);
  }
  if (macs < 0) return contradiction("MACs overflow 64 bits");

  const int32_t elem_type = input.elem_type ? input.elem_type : layer.weight_elem_type;
  layer.input_shape = in;
  layer.output_shape = out;
  layer.input_bytes = Multiply(Product(in), ElementBits(elem_type)) / 8;
  layer.output_bytes = Multiply(Product(out), ElementBits(output.elem_type ? output.elem_type : elem_type)) / 8;
  layer.macs = macs;
  layer.shape_source = Weaker(input.source, output.source);
  return absl::OkStatus();
}

}  // namespace squeeze::model::internal
