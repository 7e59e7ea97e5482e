#include "model/internal/export_opset.h"

#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <exception>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/internal/graph_editor.h"
#include "model/internal/validation.h"

namespace squeeze::model::internal {
namespace {

void SetDims(onnx::ValueInfoProto* value, const std::vector<int64_t>& dims) {
  auto* shape = value->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->clear_dim();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// `proto` with its inputs at the analysed shapes and every value's shape libonnx's inference (or,
// where it stops, `shape_probe`) finds, for the version converter.
onnx::ModelProto Shaped(const Analysis& analysis, const ShapeProbe& shape_probe, const onnx::ModelProto& proto) {
  onnx::ModelProto shaped = proto;
  for (auto& input : *shaped.mutable_graph()->mutable_input()) {
    auto it = analysis.input_shapes.find(input.name());
    if (it == analysis.input_shapes.end() || !input.type().has_tensor_type()) continue;
    SetDims(&input, it->second);
  }
  try {
    onnx::shape_inference::InferShapes(shaped);
  } catch (const std::exception&) {
    // What inference could not follow, the converter names below if it matters.
  }
  if (!shape_probe) return shaped;
  // Values inference typed but could not shape (after a computed Reshape, ...): measured.
  std::vector<std::string> unshaped;
  for (const auto& v : shaped.graph().value_info()) {
    const auto& type = v.type().tensor_type();
    bool known = type.has_shape();
    for (const auto& d : type.shape().dim()) known &= d.has_dim_value();
    if (!known && type.elem_type() != 0) unshaped.push_back(v.name());
  }
  if (unshaped.empty()) return shaped;
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> probed =
      shape_probe(proto, analysis.input_shapes, unshaped);
  if (!probed.ok()) return shaped;
  for (auto& v : *shaped.mutable_graph()->mutable_value_info()) {
    if (auto it = probed->find(v.name()); it != probed->end()) SetDims(&v, it->second);
  }
  return shaped;
}

}  // namespace

absl::Status ConvertForQdq(const Analysis& analysis, const std::vector<LayerPlan>& plan, const ShapeProbe& shape_probe,
                           onnx::ModelProto* proto, ExportReport* report) {
  report->original_opset = OpsetOf(*proto);
  bool needs_qdq = false;
  for (const LayerPlan& p : plan) needs_qdq |= p.weight_bits <= 8;
  if (needs_qdq && report->original_opset < kQdqOpset) {
    try {
      onnx::ModelProto converted =
          onnx::version_conversion::ConvertVersion(Shaped(analysis, shape_probe, *proto), static_cast<int>(kQdqOpset));
      std::map<std::string, onnx::ValueInfoProto> declared;
      for (const auto& input : proto->graph().input()) declared[input.name()] = input;
      for (auto& input : *converted.mutable_graph()->mutable_input()) {
        if (auto it = declared.find(input.name()); it != declared.end()) input = it->second;
      }
      *proto = std::move(converted);
    } catch (const std::exception& e) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the model is at ai.onnx opset ", report->original_opset, "; per-channel DequantizeLinear needs opset ",
          kQdqOpset, " and libonnx's version converter failed: ", OneLine(e.what())));
    }
    if (proto->ir_version() < 7) proto->set_ir_version(7);
    report->warnings.push_back(absl::StrCat("converted from ai.onnx opset ", report->original_opset, " to ", kQdqOpset,
                                            " for per-channel DequantizeLinear"));
  }
  report->opset = OpsetOf(*proto);
  return absl::OkStatus();
}

}  // namespace squeeze::model::internal
