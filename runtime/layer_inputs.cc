#include "runtime/layer_inputs.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "runtime/value_reader.h"

namespace squeeze::runtime {
namespace {

bool ReadsRows(const model::Layer& layer) {
  return layer.op_type == "MatMul" && layer.subgraph.empty() && layer.weight_shape.size() == 2 &&
         layer.weight_layout.groups == 1 && layer.weight_layout.inner == 1 && layer.weight_shape[0] > 0;
}

// One value several layers read, and the rows kept of it.
struct Value {
  int64_t k = 0;
  int64_t stride = 1;  // every stride-th row is kept
  int64_t seen = 0;    // rows seen so far, over the samples
  std::shared_ptr<model::LayerInputRows> rows;
};

void Add(absl::Span<const float> values, Value& v) {
  const int64_t rows = static_cast<int64_t>(values.size()) / v.k;
  for (int64_t r = 0; r < rows; ++r, ++v.seen) {
    if (v.seen % v.stride != 0) continue;
    const auto begin = values.begin() + r * v.k;
    v.rows->values.insert(v.rows->values.end(), begin, begin + v.k);
  }
}

}  // namespace

std::vector<std::string> RowReadingLayers(const model::Analysis& analysis) {
  std::vector<std::string> out;
  for (const model::Layer& layer : analysis.layers) {
    if (ReadsRows(layer)) out.push_back(layer.name);
  }
  return out;
}

absl::StatusOr<model::LayerInputs> CollectLayerInputs(const model::LoadedModel& model,
                                                      const std::vector<std::string>& layers,
                                                      const CalibrationSet& calibration,
                                                      const LayerInputOptions& options) {
  if (calibration.samples.empty()) return absl::InvalidArgumentError("no calibration samples");
  std::map<std::string, const model::Layer*> by_name;
  for (const model::Layer& layer : model.analysis.layers) by_name[layer.name] = &layer;
  std::map<std::string, std::string> input_of;  // main-graph node -> its input 0
  for (const onnx::NodeProto& node : model.proto.graph().node()) {
    if (node.input_size() > 0) input_of[node.name()] = node.input(0);
  }
  std::map<std::string, Value> values;          // by value name
  std::map<std::string, std::string> value_of;  // layer -> value name
  for (const std::string& name : layers) {
    const auto layer = by_name.find(name);
    const auto input = input_of.find(name);
    if (layer == by_name.end() || input == input_of.end() || !ReadsRows(*layer->second)) continue;
    const int64_t k = layer->second->weight_shape[0];
    Value& v = values[input->second];
    if (v.k != 0 && v.k != k) continue;  // read as two different K: not a row layout
    v.k = k;
    value_of[name] = input->second;
  }
  model::LayerInputs out;
  if (values.empty()) return out;

  // Rows per value: within max_rows and, over all values, within max_bytes.
  int64_t row_bytes = 0;
  for (const auto& [name, v] : values) row_bytes += 4 * v.k;
  const int64_t keep = std::max<int64_t>(1, std::min(options.max_rows, options.max_bytes / row_bytes));
  std::vector<std::string> names;
  for (const auto& [name, v] : values) names.push_back(name);
  absl::StatusOr<ValueReader> reader = ValueReader::Create(model, names, options.threads);
  if (!reader.ok()) return reader.status();

  for (const std::vector<Tensor>& sample : calibration.samples) {
    absl::StatusOr<std::vector<Tensor>> got = reader->Read(sample);
    if (!got.ok()) return got.status();
    for (const Tensor& t : *got) {
      Value& v = values.at(t.name);
      const absl::Span<const float> floats = t.floats();
      if (floats.empty() || static_cast<int64_t>(floats.size()) % v.k != 0) continue;
      if (!v.rows) {
        const int64_t total =
            static_cast<int64_t>(floats.size()) / v.k * static_cast<int64_t>(calibration.samples.size());
        v.stride = std::max<int64_t>(1, (total + keep - 1) / keep);
        v.rows = std::make_shared<model::LayerInputRows>();
        v.rows->k = v.k;
      }
      Add(floats, v);
    }
  }
  for (const auto& [layer, value] : value_of) {
    const Value& v = values.at(value);
    if (v.rows && v.rows->rows() > 0) out[layer] = v.rows;
  }
  return out;
}

}  // namespace squeeze::runtime
