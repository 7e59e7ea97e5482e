#include "model/conformance.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/internal/graph.h"
#include "model/internal/tensor_data.h"
#include "model/quantized_region.h"

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
      if (n.op_type() == "MatMulNBits") {
        ++report_.checked_nodes;
        CheckMatMulNBits(n);
        continue;
      }
      const bool quantize = n.op_type() == "QuantizeLinear", dequantize = n.op_type() == "DequantizeLinear";
      if (!quantize && !dequantize) continue;
      ++report_.checked_nodes;
      const onnx::TensorProto* x = Constant(n.input(0));
      const bool weight = dequantize && x != nullptr;
      CheckScale(n);
      if (report_.flavour == ExportFlavour::kRuntimePrecision) {
        Violation("no QuantizeLinear or DequantizeLinear (the CoreML provider converts neither)", n,
                  "would run on the CPU provider");
      } else if (report_.flavour == ExportFlavour::kTensorRt) {
        CheckTensorRt(n, quantize, weight, x, readers);
      } else if (report_.flavour == ExportFlavour::kQnn) {
        CheckQnn(n, quantize, weight, x, readers);
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
    if (quantize) CheckPair(n, readers);
  }

  // A QuantizeLinear read by DequantizeLinear only.
  void CheckPair(const onnx::NodeProto& n,
                 const std::map<std::string, std::vector<std::pair<const onnx::NodeProto*, int>>>& readers) {
    auto it = readers.find(n.output(0));
    if (it == readers.end()) return;
    for (const auto& [reader, input] : it->second) {
      if (reader->op_type() != "DequantizeLinear") {
        return Violation("Q/DQ pairs (a QuantizeLinear is read by DequantizeLinear only)", n,
                         absl::StrCat("is read by ", reader->op_type(), " '", reader->name(), "'"));
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

  void CheckQnn(const onnx::NodeProto& n, bool quantize, bool weight, const onnx::TensorProto* x,
                const std::map<std::string, std::vector<std::pair<const onnx::NodeProto*, int>>>& readers) {
    const auto zp = ZeroPoint(n);
    if (!zp) return Violation("constant zero points", n, "has no constant zero point");
    const onnx::TensorProto* scale = n.input_size() > 1 ? Constant(n.input(1)) : nullptr;
    const bool per_tensor = scale != nullptr && internal::ElementCount(*scale) == 1;
    if (!weight) {
      if (zp->first != onnx::TensorProto::UINT8 && zp->first != onnx::TensorProto::UINT16) {
        Violation("uint8 or uint16 activations", n,
                  absl::StrCat("has a ", internal::DataTypeName(zp->first), " zero point"));
      }
      if (!per_tensor) Violation("activations per tensor", n, "has a per-axis scale on an activation");
    } else if (x->data_type() == onnx::TensorProto::INT8 || x->data_type() == onnx::TensorProto::INT32) {
      for (int64_t v : zp->second) {
        if (v != 0)
          return Violation("int8 weights and int32 biases with zero point 0", n, absl::StrCat("has zero point ", v));
      }
      if (x->data_type() == onnx::TensorProto::INT8 && !per_tensor) CheckWeightAxis(n, *x, readers);
    } else if (x->data_type() == onnx::TensorProto::UINT8) {
      if (!per_tensor) Violation("uint8 constants per tensor", n, "has a per-axis scale");
    } else {
      Violation("int8 weights, int32 biases or uint8 constants", n,
                absl::StrCat("dequantizes ", internal::DataTypeName(x->data_type())));
    }
    if (quantize) CheckPair(n, readers);
  }

  // ONNX Runtime's MatMulNBits (model::WritesMatMulNBits), as its kernel checks its inputs: bits
  // 2, 4 or 8, a power-of-two block of at least 16, constant codes of uint8 [N, ceil(K / block),
  // block x bits / 8] and scales of [N, ceil(K / block)] (or flat), positive and finite. Only
  // ONNX Runtime's CPU provider takes it.
  void CheckMatMulNBits(const onnx::NodeProto& n) {
    if (report_.flavour != ExportFlavour::kOrtCpu) {
      return Violation("no com.microsoft ops (ONNX Runtime's own)", n, "is one");
    }
    const int64_t k = internal::IntAttribute(n, "K", -1), cols = internal::IntAttribute(n, "N", -1);
    const int64_t bits = internal::IntAttribute(n, "bits", 4), block = internal::IntAttribute(n, "block_size", -1);
    if (bits != 2 && bits != 4 && bits != 8)
      return Violation("MatMulNBits of 2, 4 or 8 bits", n, absl::StrCat("has ", bits));
    if (block < 16 || (block & (block - 1)) != 0) {
      return Violation("MatMulNBits blocks a power of two of at least 16", n, absl::StrCat("has ", block));
    }
    if (k < 1 || cols < 1) return Violation("MatMulNBits with K and N", n, "lacks them");
    const int64_t blocks = (k + block - 1) / block;
    const onnx::TensorProto* codes = n.input_size() > 1 ? Constant(n.input(1)) : nullptr;
    const std::vector<int64_t> want = {cols, blocks, block * bits / 8};
    if (codes == nullptr || codes->data_type() != onnx::TensorProto::UINT8 ||
        std::vector<int64_t>(codes->dims().begin(), codes->dims().end()) != want) {
      return Violation("MatMulNBits codes constant uint8 [N, ceil(K / block), block x bits / 8]", n,
                       codes == nullptr ? "reads computed codes" : "has other codes");
    }
    const onnx::TensorProto* scales = n.input_size() > 2 ? Constant(n.input(2)) : nullptr;
    if (scales == nullptr) return Violation("scales are constants", n, "has a computed scale");
    const std::vector<float> values = internal::DecodeFloats(*scales);
    if (static_cast<int64_t>(values.size()) != cols * blocks) {
      return Violation("MatMulNBits scales [N, ceil(K / block)]", n, absl::StrCat("has ", values.size()));
    }
    for (float s : values) {
      if (!(s > 0) || !std::isfinite(s)) return Violation("scales are positive and finite", n, absl::StrCat("has ", s));
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

// Ops whose outputs are integers or booleans whatever they read.
bool WritesIntegers(const std::string& op) {
  static const std::set<std::string> kOps = {"Shape",   "Size", "ArgMax",         "ArgMin",      "NonZero", "Equal",
                                             "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not",     "And",
                                             "Or",      "Xor",  "IsNaN",          "IsInf"};
  return kOps.count(op) > 0;
}

// The main graph's ops that read a dequantized activation but run in float (see conformance.h).
void CountFloatOps(const onnx::ModelProto& model, ConformanceReport* report) {
  const onnx::GraphProto& g = model.graph();
  std::set<std::string> constants;
  for (const auto& t : g.initializer()) constants.insert(t.name());
  std::map<std::string, const onnx::NodeProto*> producer;
  std::map<std::string, std::vector<const onnx::NodeProto*>> readers;
  for (const onnx::NodeProto& n : g.node()) {
    if (n.op_type() == "Constant") constants.insert(n.output().begin(), n.output().end());
    for (const std::string& o : n.output()) producer[o] = &n;
    for (const std::string& i : n.input()) readers[i].push_back(&n);
  }
  std::set<std::string> outputs;
  for (const auto& o : g.output()) outputs.insert(o.name());
  auto dequantized_activation = [&](const std::string& t) {
    auto p = producer.find(t);
    return p != producer.end() && p->second->op_type() == "DequantizeLinear" && p->second->input_size() > 0 &&
           !constants.count(p->second->input(0));
  };
  auto read_by_quantize_only = [&](const std::string& t) {
    auto r = readers.find(t);
    if (r == readers.end()) return !outputs.count(t);
    for (const onnx::NodeProto* reader : r->second) {
      if (reader->op_type() != "QuantizeLinear") return false;
    }
    return !outputs.count(t);
  };
  // A layer of float weights is the float domain's own: where it reads a dequantized value, that
  // is the conversion between the domains.
  auto float_layer = [&](const onnx::NodeProto& n) {
    static const std::set<std::string> kLayers = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
    if (!kLayers.count(n.op_type()) || n.input_size() < 2) return false;
    auto p = producer.find(n.input(1));
    return p == producer.end() || p->second->op_type() != "DequantizeLinear";
  };
  for (const onnx::NodeProto& n : g.node()) {
    const std::string& op = n.op_type();
    if (op == "QuantizeLinear" || op == "DequantizeLinear" || op == "Constant" || WritesIntegers(op)) continue;
    bool reads = false;
    for (int k = 0; k < n.input_size(); ++k) {
      reads = reads || (IsDataInput(op, k) && dequantized_activation(n.input(k)));
    }
    if (!reads || float_layer(n)) continue;
    bool float_out = false;
    for (const std::string& o : n.output()) {
      if (o.empty() || read_by_quantize_only(o)) continue;
      // A Relu or Clip alone between a layer and its output quantization folds into it.
      auto r = readers.find(o);
      const bool folded = r != readers.end() && r->second.size() == 1 && !outputs.count(o) &&
                          (r->second[0]->op_type() == "Relu" || r->second[0]->op_type() == "Clip") &&
                          r->second[0]->output_size() == 1 && read_by_quantize_only(r->second[0]->output(0));
      if (!folded) float_out = true;
    }
    if (!float_out) continue;
    ++report->float_ops_between_quantized;
    if (report->float_ops.size() < 5) report->float_ops.push_back(absl::StrCat(op, " '", n.name(), "'"));
  }
}

}  // namespace

std::string ConformanceReport::Summary() const {
  const std::string float_text =
      float_ops_between_quantized == 0
          ? (flavour == ExportFlavour::kQnn ? "; no float op between quantized tensors" : "")
          : absl::StrCat("; ", float_ops_between_quantized,
                         " ops read dequantized activations and write float values (", absl::StrJoin(float_ops, ", "),
                         float_ops_between_quantized > 5 ? ", ..." : "", ")");
  if (ok()) {
    return absl::StrCat(FlavourName(flavour), ": ", rules.size(), " rules held on ", checked_nodes,
                        " QuantizeLinear/DequantizeLinear/MatMulNBits nodes (", absl::StrJoin(rules, "; "), ")",
                        float_text);
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
  } else if (flavour == ExportFlavour::kQnn) {
    report.rules = {"uint8 or uint16 activations per tensor, constant zero points",
                    "int8 weights (per tensor or per output channel) and int32 biases of zero point 0",
                    "uint8 constants per tensor",
                    "positive, finite, constant scales",
                    "every QuantizeLinear read by DequantizeLinear only",
                    "whole-graph QDQ: no op reads a dequantized activation and writes a float value"};
  } else if (flavour == ExportFlavour::kRuntimePrecision) {
    report.rules = {"no QuantizeLinear or DequantizeLinear (the CoreML provider converts neither)"};
  } else {
    report.rules = {"uint8 activations with a constant zero point", "int8 (or int4) weights with zero point 0",
                    "positive, finite, constant scales",
                    "MatMulNBits of 2, 4 or 8 bits in power-of-two blocks, its codes and scales shaped as its kernel "
                    "reads them"};
  }
  Checker checker(model, &report);
  internal::ForEachGraph(model.graph(), "", "", [&](const onnx::GraphProto& g, const std::string&, const std::string&) {
    checker.CheckGraph(g);
  });
  CountFloatOps(model, &report);
  if (flavour == ExportFlavour::kQnn) {
    for (const std::string& op : report.float_ops) {
      report.violations.push_back(
          absl::StrCat("whole-graph QDQ: ", op, " reads a dequantized activation and writes a float value"));
    }
  }
  return report;
}

}  // namespace squeeze::model
