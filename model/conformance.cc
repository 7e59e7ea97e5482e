#include "model/conformance.h"

#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"

namespace squeeze::model {
namespace {

using internal::NamedTensor;

// The axis of a consumer's weight input that holds its output channels; nullopt when `input` is
// not its weight input.
std::optional<int64_t> OutputChannelAxis(const onnx::NodeProto& consumer, int input, int64_t rank) {
  const std::string& op = consumer.op_type();
  if (op == "Conv" && input == 1) return 0;
  if (op == "ConvTranspose" && input == 1) return 1;
  if (op == "Gemm" && input == 1) return internal::IntAttribute(consumer, "transB", 0) != 0 ? 0 : 1;
  if (op == "MatMul" && input == 1) return rank - 1;
  return std::nullopt;
}

class Checker {
 public:
  Checker(const onnx::ModelProto& model, ConformanceReport* report) : report_(*report) {
    for (const NamedTensor& t : internal::AllConstants(model)) constants_.emplace(t.name, t.tensor);
  }

  void CheckGraph(const onnx::GraphProto& graph) {
    std::map<std::string, std::vector<std::pair<const onnx::NodeProto*, int>>> readers;
    for (const onnx::NodeProto& n : graph.node()) {
      for (int k = 0; k < n.input_size(); ++k) readers[n.input(k)].emplace_back(&n, k);
    }
    for (const onnx::NodeProto& n : graph.node()) {
      const bool quantize = n.op_type() == "QuantizeLinear", dequantize = n.op_type() == "DequantizeLinear";
      if (!quantize && !dequantize) continue;
      ++report_.checked_nodes;
      const onnx::TensorProto* x = Constant(n.input(0));
      const bool weight = dequantize && x != nullptr;
      CheckScale(n);
      if (report_.flavour == ExportFlavour::kTensorRt) {
        CheckTensorRt(n, quantize, weight, x, readers);
      } else {
        CheckOrtCpu(n, weight);
      }
    }
  }

 private:
  const onnx::TensorProto* Constant(const std::string& name) const {
    auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : it->second;
  }

  void Violation(const std::string& rule, const onnx::NodeProto& n, const std::string& what) {
    if (report_.violations.size() < 20) {
      report_.violations.push_back(absl::StrCat(rule, ": ", n.op_type(), " '", n.name(), "' ", what));
    }
  }

  void CheckScale(const onnx::NodeProto& n) {
    const onnx::TensorProto* scale = n.input_size() > 1 ? Constant(n.input(1)) : nullptr;
    if (scale == nullptr) return Violation("scales are constants", n, "has a computed scale");
    for (float s : internal::DecodeFloats(*scale)) {
      if (!(s > 0) || !std::isfinite(s)) return Violation("scales are positive and finite", n, absl::StrCat("has ", s));
    }
  }

  // The zero point's type and values; nullopt when it is missing or computed.
  std::optional<std::pair<int32_t, std::vector<int64_t>>> ZeroPoint(const onnx::NodeProto& n) const {
    const onnx::TensorProto* zp = n.input_size() > 2 && !n.input(2).empty() ? Constant(n.input(2)) : nullptr;
    if (zp == nullptr) return std::nullopt;
    return std::make_pair(zp->data_type(), internal::DecodeIntegers(*zp));
  }

  void CheckTensorRt(const onnx::NodeProto& n, bool quantize, bool weight, const onnx::TensorProto* x,
                     const std::map<std::string, std::vector<std::pair<const onnx::NodeProto*, int>>>& readers) {
    if (!quantize && x != nullptr && x->data_type() == onnx::TensorProto::INT32) {
      return Violation("no int32 DequantizeLinear (TensorRT takes biases float)", n, "reads int32");
    }
    const auto zp = ZeroPoint(n);
    if (!zp || zp->first != onnx::TensorProto::INT8) {
      Violation("int8 zero points", n,
                zp ? absl::StrCat("has a ", internal::DataTypeName(zp->first), " zero point")
                   : "has no constant zero point (ONNX's default is uint8)");
    } else {
      for (int64_t v : zp->second) {
        if (v != 0) {
          Violation("zero point 0 (TensorRT quantizes symmetrically)", n, absl::StrCat("has zero point ", v));
          break;
        }
      }
    }
    const onnx::TensorProto* scale = n.input_size() > 1 ? Constant(n.input(1)) : nullptr;
    const bool per_tensor = scale != nullptr && internal::ElementCount(*scale) == 1;
    if (!weight) {
      if (!per_tensor) Violation("activations per tensor", n, "has a per-axis scale on an activation");
    } else {
      for (int64_t v : internal::DecodeIntegers(*x)) {
        if (v < -127 || v > 127) {
          Violation("int8 weights in [-127, 127]", n, absl::StrCat("holds ", v));
          break;
        }
      }
      if (!per_tensor) CheckWeightAxis(n, *x, readers);
    }
    if (quantize) {
      auto it = readers.find(n.output(0));
      if (it == readers.end()) return;
      for (const auto& [reader, input] : it->second) {
        if (reader->op_type() != "DequantizeLinear") {
          return Violation("Q/DQ pairs (a QuantizeLinear is read by DequantizeLinear only)", n,
                           absl::StrCat("is read by ", reader->op_type(), " '", reader->name(), "'"));
        }
      }
    }
  }

  void CheckWeightAxis(const onnx::NodeProto& n, const onnx::TensorProto& x,
                       const std::map<std::string, std::vector<std::pair<const onnx::NodeProto*, int>>>& readers) {
    const int64_t rank = x.dims_size();
    int64_t axis = internal::IntAttribute(n, "axis", 1);
    if (axis < 0) axis += rank;
    auto it = readers.find(n.output(0));
    if (it == readers.end()) return;
    for (const auto& [reader, input] : it->second) {
      const std::optional<int64_t> want = OutputChannelAxis(*reader, input, rank);
      if (!want) {
        return Violation("per-channel weights feed Conv, ConvTranspose, Gemm or MatMul weights", n,
                         absl::StrCat("feeds input ", input, " of ", reader->op_type(), " '", reader->name(), "'"));
      }
      if (*want != axis) {
        return Violation("per-channel weights on the output-channel axis", n,
                         absl::StrCat("has axis ", axis, " for ", reader->op_type(), " '", reader->name(),
                                      "', whose output channels are axis ", *want));
      }
    }
  }

  void CheckOrtCpu(const onnx::NodeProto& n, bool weight) {
    const auto zp = ZeroPoint(n);
    if (weight) {
      if (zp && zp->first == onnx::TensorProto::INT32) return;  // the int32 bias
      if (!zp || (zp->first != onnx::TensorProto::INT8 && zp->first != internal::kInt4)) {
        return Violation("int8 or int4 weights", n, "has no int8 or int4 zero point");
      }
      for (int64_t v : zp->second) {
        if (v != 0) return Violation("weights with zero point 0", n, absl::StrCat("has zero point ", v));
      }
      return;
    }
    if (!zp || zp->first != onnx::TensorProto::UINT8) {
      Violation("uint8 activations with a constant zero point", n,
                zp ? absl::StrCat("has a ", internal::DataTypeName(zp->first), " zero point") : "has no zero point");
    }
  }

  ConformanceReport& report_;
  std::map<std::string, const onnx::TensorProto*> constants_;
};

}  // namespace

std::string ConformanceReport::Summary() const {
  if (ok()) {
    return absl::StrCat(FlavourName(flavour), ": ", rules.size(), " rules held on ", checked_nodes,
                        " QuantizeLinear/DequantizeLinear nodes (", absl::StrJoin(rules, "; "), ")");
  }
  return absl::StrCat(FlavourName(flavour), ": ", violations.size(), violations.size() >= 20 ? "+" : "",
                      " violations of its rules: ", absl::StrJoin(violations, "; "));
}

ConformanceReport CheckConformance(const onnx::ModelProto& model, ExportFlavour flavour) {
  ConformanceReport report;
  report.flavour = flavour;
  if (flavour == ExportFlavour::kTensorRt) {
    report.rules = {"int8 zero points of 0",     "positive, finite, constant scales",
                    "activations per tensor",    "int8 weights in [-127, 127], per tensor or per output channel",
                    "no int32 DequantizeLinear", "every QuantizeLinear read by DequantizeLinear only"};
  } else {
    report.rules = {"uint8 activations with a constant zero point", "int8 (or int4) weights with zero point 0",
                    "positive, finite, constant scales"};
  }
  Checker checker(model, &report);
  internal::ForEachGraph(model.graph(), "", "", [&](const onnx::GraphProto& g, const std::string&, const std::string&) {
    checker.CheckGraph(g);
  });
  return report;
}

}  // namespace squeeze::model
