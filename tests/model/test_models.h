// Building small ONNX models for tests: the graph in ONNX's text format (onnx::OnnxParser), the
// weights added as protos where the text format cannot say how they are stored (Constant nodes,
// fp16, raw_data), and the real PP-OCR models under .cache/models.
#ifndef SQUEEZE_TESTS_MODEL_TEST_MODELS_H_
#define SQUEEZE_TESTS_MODEL_TEST_MODELS_H_

#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/internal/tensor_data.h"
#include "model/loader.h"
#include "model/weight_math.h"

namespace squeeze::model::testing {

inline onnx::ModelProto ParseModel(const char* text) {
  onnx::ModelProto model;
  onnx::Status status = onnx::OnnxParser::Parse(model, text);
  INFO(status.ErrorMessage());
  REQUIRE(status.IsOK());
  return model;
}

// Deterministic, varied weights: (i mod 11 − 5) · scale, all exact in fp16.
inline std::vector<float> Ramp(int64_t count, float scale = 0.125f) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[i] = static_cast<float>(i % 11 - 5) * scale;
  return values;
}

inline int64_t Count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

enum class Encoding { kTyped, kRaw };

// An fp32 tensor in float_data (kTyped) or raw_data (kRaw); Ramp values unless given.
inline onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                                     Encoding encoding = Encoding::kTyped, std::vector<float> values = {}) {
  if (values.empty()) values = Ramp(Count(dims));
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  if (encoding == Encoding::kRaw) {
    t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  } else {
    for (float v : values) t.add_float_data(v);
  }
  return t;
}

// An fp16 tensor in int32_data, one value per element (kTyped), or raw_data (kRaw).
inline onnx::TensorProto HalfTensor(const std::string& name, const std::vector<int64_t>& dims,
                                    Encoding encoding = Encoding::kTyped, std::vector<float> values = {}) {
  if (values.empty()) values = Ramp(Count(dims));
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT16);
  for (int64_t d : dims) t.add_dims(d);
  std::string raw;
  for (float v : values) {
    const uint16_t bits = FloatToHalfBits(v);
    if (encoding == Encoding::kRaw) {
      raw.append(reinterpret_cast<const char*>(&bits), sizeof(bits));
    } else {
      t.add_int32_data(bits);
    }
  }
  if (encoding == Encoding::kRaw) t.set_raw_data(raw);
  return t;
}

inline void AddInitializer(onnx::GraphProto* graph, onnx::TensorProto tensor) {
  *graph->add_initializer() = std::move(tensor);
}

// A Constant node producing `output` from `value`, placed first in the graph.
inline void AddConstantNode(onnx::GraphProto* graph, const std::string& output, onnx::TensorProto value) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type("Constant");
  node->add_output(output);
  onnx::AttributeProto* attr = node->add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = std::move(value);
  for (int i = graph->node_size() - 1; i > 0; --i) graph->mutable_node()->SwapElements(i, i - 1);
}

// The subgraph in attribute `attr` of the main graph's node `node_index`.
inline onnx::GraphProto* Subgraph(onnx::ModelProto* model, int node_index, const std::string& attr) {
  for (onnx::AttributeProto& a : *model->mutable_graph()->mutable_node(node_index)->mutable_attribute()) {
    if (a.name() == attr) return a.mutable_g();
  }
  FAIL("no attribute " << attr);
  return nullptr;
}

inline std::string Bytes(const onnx::ModelProto& model) { return model.SerializeAsString(); }

inline LoadedModel MustLoad(const std::string& bytes, const AnalyzeOptions& options = {}) {
  absl::StatusOr<LoadedModel> loaded = LoadModel(bytes, options);
  INFO(loaded.status().ToString());
  REQUIRE(loaded.ok());
  return *std::move(loaded);
}

inline LoadedModel MustLoad(const onnx::ModelProto& model, const AnalyzeOptions& options = {}) {
  return MustLoad(Bytes(model), options);
}

inline const Layer& LayerNamed(const Analysis& analysis, const std::string& name) {
  for (const Layer& layer : analysis.layers) {
    if (layer.name == name) return layer;
  }
  FAIL("no layer named " << name);
  return analysis.layers.front();
}

// A model from .cache/models (installed by deploy/install-deps.sh); empty when missing.
inline std::string ReadCachedModel(const std::string& file) {
  std::ifstream in(std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/" + file, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace squeeze::model::testing

#endif  // SQUEEZE_TESTS_MODEL_TEST_MODELS_H_
