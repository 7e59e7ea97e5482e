#include "bench/models/transformer_model.h"

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace squeeze::bench {
namespace {

// Embeddings N(0, 1); every projection N(0, 1 / fan_in), which keeps a signal's scale through it.
// (At BERT's and GPT-2's N(0, 0.02) a random model's attention is uniform and its blocks barely
// move the residual stream: every layer would look insensitive.)
constexpr float kEmbeddingStddev = 1.0f;
float FanInStddev(int64_t fan_in) { return 1.0f / std::sqrt(static_cast<float>(fan_in)); }

// Appends nodes and initializers to a graph under exporter-style names ("/encoder/layer.0/...").
class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto* graph, uint64_t seed) : graph_(graph), rng_(seed) {}

  // A learned fp32 weight: N(0, stddev), or `fill` everywhere when stddev is 0.
  std::string Weight(const std::string& name, const std::vector<int64_t>& dims, float stddev, float fill = 0) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t count = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      count *= d;
    }
    std::vector<float> values(static_cast<size_t>(count), fill);
    if (stddev > 0) {
      std::normal_distribution<float> normal(0, stddev);
      for (float& v : values) v = normal(rng_);
    }
    t->mutable_raw_data()->assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    return name;
  }

  // A constant that is no parameter (shapes, scales, masks), named under "const/", added once.
  std::string Scalar(const std::string& name, float value) {
    return Constant(name, onnx::TensorProto::FLOAT, {}, [&](onnx::TensorProto* t) { t->add_float_data(value); });
  }
  std::string Int64s(const std::string& name, const std::vector<int64_t>& values) {
    return Constant(name, onnx::TensorProto::INT64, {static_cast<int64_t>(values.size())}, [&](onnx::TensorProto* t) {
      for (int64_t v : values) t->add_int64_data(v);
    });
  }
  std::string Matrix(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& values) {
    return Constant(name, onnx::TensorProto::FLOAT, dims, [&](onnx::TensorProto* t) {
      t->mutable_raw_data()->assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    });
  }

  // Node `name` of `op` on `inputs`; its one output is named after it.
  onnx::NodeProto* Node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs) {
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(name + "_output_0");
    return n;
  }
  std::string Op(const std::string& op, const std::string& name, const std::vector<std::string>& inputs) {
    return Node(op, name, inputs)->output(0);
  }
  std::string Transpose(const std::string& name, const std::string& x, const std::vector<int64_t>& perm) {
    onnx::NodeProto* n = Node("Transpose", name, {x});
    Ints(n, "perm", perm);
    return n->output(0);
  }

  static void Ints(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }
  static void Int(onnx::NodeProto* node, const std::string& name, int64_t value) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void Float(onnx::NodeProto* node, const std::string& name, float value) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }

  // x·W + b, W of [in, out]: a linear layer as exporters write it (MatMul, then the bias Add).
  std::string Linear(const std::string& path, const std::string& x, int64_t in, int64_t out) {
    const std::string w = Weight(path + ".weight", {in, out}, FanInStddev(in));
    const std::string b = Weight(path + ".bias", {out}, 0);
    return Op("Add", path + "/Add", {Op("MatMul", path + "/MatMul", {x, w}), b});
  }

  std::string LayerNorm(const std::string& path, const std::string& x, int64_t hidden) {
    const std::string scale = Weight(path + ".weight", {hidden}, 0, 1);
    const std::string bias = Weight(path + ".bias", {hidden}, 0);
    onnx::NodeProto* n = Node("LayerNormalization", path + "/LayerNormalization", {x, scale, bias});
    Int(n, "axis", -1);
    Float(n, "epsilon", 1e-5f);
    return n->output(0);
  }

  // 0.5 · x · (1 + erf(x / √2)), as PyTorch exports nn.GELU().
  std::string Gelu(const std::string& path, const std::string& x) {
    const std::string scaled = Op("Div", path + "/Div", {x, Scalar("sqrt2", std::sqrt(2.0f))});
    const std::string erf = Op("Erf", path + "/Erf", {scaled});
    const std::string one = Op("Add", path + "/Add", {erf, Scalar("one", 1.0f)});
    const std::string times = Op("Mul", path + "/Mul", {x, one});
    return Op("Mul", path + "/Mul_1", {times, Scalar("half", 0.5f)});
  }

  // Multi-head self-attention with separate Q, K, V and output projections; `mask` (may be empty)
  // is added to the scaled scores.
  std::string Attention(const std::string& path, const std::string& x, const TransformerShape& s,
                        const std::string& mask) {
    const int64_t dh = s.hidden / s.heads;
    const std::string split = Int64s("split_heads_" + std::to_string(s.heads), {0, -1, s.heads, dh});
    auto heads = [&](const std::string& name, const std::vector<int64_t>& perm) {
      const std::string proj = Linear(absl::StrCat(path, "/", name), x, s.hidden, s.hidden);
      const std::string shaped = Op("Reshape", absl::StrCat(path, "/", name, "/Reshape"), {proj, split});
      return Transpose(absl::StrCat(path, "/", name, "/Transpose"), shaped, perm);
    };
    const std::string q = heads("query", {0, 2, 1, 3});
    const std::string k = heads("key", {0, 2, 3, 1});
    const std::string v = heads("value", {0, 2, 1, 3});
    std::string scores = Op("MatMul", path + "/scores/MatMul", {q, k});
    scores = Op("Mul", path + "/scores/Mul", {scores, Scalar(absl::StrCat("inv_sqrt_", dh), 1.0f / std::sqrt(dh))});
    if (!mask.empty()) scores = Op("Add", path + "/scores/Add", {scores, mask});
    onnx::NodeProto* softmax = Node("Softmax", path + "/Softmax", {scores});
    Int(softmax, "axis", -1);
    const std::string probs = softmax->output(0);
    const std::string context = Op("MatMul", path + "/context/MatMul", {probs, v});
    const std::string merged = Transpose(path + "/context/Transpose", context, {0, 2, 1, 3});
    const std::string flat =
        Op("Reshape", path + "/context/Reshape", {merged, Int64s("merge_heads", {0, -1, s.hidden})});
    return Linear(path + "/output", flat, s.hidden, s.hidden);
  }

  std::string Mlp(const std::string& path, const std::string& x, const TransformerShape& s) {
    const std::string up = Linear(path + "/intermediate", x, s.hidden, s.ffn);
    return Linear(path + "/output", Gelu(path + "/gelu", up), s.ffn, s.hidden);
  }

  // BERT's block: attention and MLP, each added to its input and then normalized.
  std::string PostLnBlock(const std::string& path, const std::string& x, const TransformerShape& s) {
    const std::string attended = Op("Add", path + "/attention/Add", {x, Attention(path + "/attention", x, s, "")});
    const std::string a = LayerNorm(path + "/attention/LayerNorm", attended, s.hidden);
    const std::string mlp = Op("Add", path + "/mlp/Add", {a, Mlp(path + "/mlp", a, s)});
    return LayerNorm(path + "/mlp/LayerNorm", mlp, s.hidden);
  }

  // GPT-2's and Whisper's block: each sublayer reads a normalized input and adds to the stream.
  std::string PreLnBlock(const std::string& path, const std::string& x, const TransformerShape& s,
                         const std::string& mask) {
    const std::string a = LayerNorm(path + "/ln_1", x, s.hidden);
    const std::string attended = Op("Add", path + "/attention/Add", {x, Attention(path + "/attention", a, s, mask)});
    const std::string m = LayerNorm(path + "/ln_2", attended, s.hidden);
    return Op("Add", path + "/mlp/Add", {attended, Mlp(path + "/mlp", m, s)});
  }

  void Input(const std::string& name, onnx::TensorProto::DataType type, const std::vector<int64_t>& dims) {
    Value(graph_->add_input(), name, type, dims);
  }
  void Output(const std::string& value, const std::string& name, const std::vector<int64_t>& dims) {
    // The last node's output takes the output's name.
    onnx::NodeProto* last = graph_->mutable_node(graph_->node_size() - 1);
    if (last->output(0) == value) last->set_output(0, name);
    Value(graph_->add_output(), name, onnx::TensorProto::FLOAT, dims);
  }

 private:
  static void Value(onnx::ValueInfoProto* info, const std::string& name, onnx::TensorProto::DataType type,
                    const std::vector<int64_t>& dims) {
    info->set_name(name);
    onnx::TypeProto::Tensor* t = info->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  }

  template <typename Fill>
  std::string Constant(const std::string& name, onnx::TensorProto::DataType type, const std::vector<int64_t>& dims,
                       Fill fill) {
    const std::string full = "const/" + name;
    if (!constants_.insert(full).second) return full;
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(full);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    fill(t);
    return full;
  }

  onnx::GraphProto* graph_;
  std::mt19937_64 rng_;
  std::set<std::string> constants_;
};

// Token and position embeddings of `s.sequence` tokens: [1, S, H].
std::string Embeddings(GraphBuilder& b, const TransformerShape& s, const std::string& token_table) {
  b.Input("input_ids", onnx::TensorProto::INT64, {1, s.sequence});
  const std::string tokens = b.Op("Gather", "/embeddings/word_embeddings/Gather", {token_table, "input_ids"});
  const std::string positions =
      b.Weight("embeddings.position_embeddings.weight", {s.sequence, s.hidden}, kEmbeddingStddev);
  return b.Op("Add", "/embeddings/Add", {tokens, positions});
}

// 0 on and below the diagonal, -10000 above: a token attends to itself and those before it.
std::vector<float> CausalMask(int n) {
  std::vector<float> mask(static_cast<size_t>(n) * n, 0.0f);
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) mask[static_cast<size_t>(i) * n + j] = -10000.0f;
  }
  return mask;
}

int64_t BlockParameters(const TransformerShape& s) {
  const int64_t h = s.hidden, f = s.ffn;
  return 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h;
}

}  // namespace

std::optional<TransformerShape> TransformerPreset(const std::string& name) {
  TransformerShape s;
  if (name == "bert-base") {
    s = {TransformerKind::kEncoder, 12, 768, 12, 3072, 128, 30522};
  } else if (name == "bert-mini") {
    s = {TransformerKind::kEncoder, 4, 256, 4, 1024, 128, 30522};
  } else if (name == "lm-small") {
    s = {TransformerKind::kDecoderLm, 6, 512, 8, 2048, 128, 16000};
  } else if (name == "speech-base") {
    s = {TransformerKind::kSpeechEncoder, 6, 512, 8, 2048, 600, 0};
  } else if (name == "tiny-encoder") {
    s = {TransformerKind::kEncoder, 2, 64, 2, 256, 16, 1000};
  } else if (name == "tiny-lm") {
    s = {TransformerKind::kDecoderLm, 2, 64, 2, 256, 16, 1000};
  } else if (name == "tiny-speech") {
    s = {TransformerKind::kSpeechEncoder, 2, 64, 2, 256, 32, 0};
    s.mel_bins = 16;
  } else {
    return std::nullopt;
  }
  return s;
}

std::vector<std::string> TransformerPresetNames() {
  return {"bert-base", "bert-mini", "lm-small", "speech-base", "tiny-encoder", "tiny-lm", "tiny-speech"};
}

int64_t TransformerParameters(const TransformerShape& s) {
  const int64_t h = s.hidden;
  int64_t n = s.layers * BlockParameters(s);
  switch (s.kind) {
    case TransformerKind::kEncoder:
      return n + int64_t{s.vocab} * h + int64_t{s.sequence} * h + 2 * h;  // embeddings and their LayerNorm
    case TransformerKind::kDecoderLm:
      return n + int64_t{s.vocab} * h + int64_t{s.sequence} * h + 2 * h;  // the head is the token table
    case TransformerKind::kSpeechEncoder:
      n += (h * s.mel_bins * 3 + h) + (h * h * 3 + h);  // the two Conv1d
      return n + int64_t{s.sequence / 2} * h + 2 * h;
  }
  return n;
}

absl::StatusOr<onnx::ModelProto> BuildTransformer(const TransformerShape& s) {
  if (s.layers < 1 || s.hidden < 1 || s.heads < 1 || s.ffn < 1 || s.sequence < 1 ||
      (s.kind != TransformerKind::kSpeechEncoder && s.vocab < 1) ||
      (s.kind == TransformerKind::kSpeechEncoder && s.mel_bins < 1)) {
    return absl::InvalidArgumentError("every size of a transformer must be at least 1");
  }
  if (s.hidden % s.heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("hidden ", s.hidden, " is no multiple of heads ", s.heads));
  }
  if (s.kind == TransformerKind::kSpeechEncoder && s.sequence % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("mel frames ", s.sequence, " is odd: the stride-2 Conv halves it"));
  }
  if (TransformerParameters(s) > (int64_t{1} << 31) / 2) {
    return absl::InvalidArgumentError("over 1 G parameters: more than a protobuf file can hold as fp32");
  }
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("squeeze-make-transformer");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(17);
  onnx::GraphProto* graph = model.mutable_graph();
  GraphBuilder b(graph, s.seed);

  std::string x;
  switch (s.kind) {
    case TransformerKind::kEncoder: {
      graph->set_name("encoder");
      const std::string table = b.Weight("embeddings.word_embeddings.weight", {s.vocab, s.hidden}, kEmbeddingStddev);
      x = b.LayerNorm("/embeddings/LayerNorm", Embeddings(b, s, table), s.hidden);
      for (int l = 0; l < s.layers; ++l) x = b.PostLnBlock(absl::StrCat("/encoder/layer.", l), x, s);
      b.Output(x, "last_hidden_state", {1, s.sequence, s.hidden});
      break;
    }
    case TransformerKind::kDecoderLm: {
      graph->set_name("decoder_lm");
      const std::string table = b.Weight("embeddings.word_embeddings.weight", {s.vocab, s.hidden}, kEmbeddingStddev);
      x = Embeddings(b, s, table);
      const std::string mask = b.Matrix("causal_mask", {s.sequence, s.sequence}, CausalMask(s.sequence));
      for (int l = 0; l < s.layers; ++l) x = b.PreLnBlock(absl::StrCat("/decoder/layer.", l), x, s, mask);
      x = b.LayerNorm("/decoder/ln_f", x, s.hidden);
      // The head reads the token table: one weight, two uses (tied embeddings).
      const std::string head = b.Transpose("/lm_head/Transpose", table, {1, 0});
      x = b.Op("MatMul", "/lm_head/MatMul", {x, head});
      b.Output(x, "logits", {1, s.sequence, s.vocab});
      break;
    }
    case TransformerKind::kSpeechEncoder: {
      graph->set_name("speech_encoder");
      b.Input("input_features", onnx::TensorProto::FLOAT, {1, s.mel_bins, s.sequence});
      auto conv = [&](const std::string& path, const std::string& in, int64_t channels_in, int64_t stride) {
        const std::string w = b.Weight(path + ".weight", {s.hidden, channels_in, 3}, FanInStddev(channels_in * 3));
        const std::string bias = b.Weight(path + ".bias", {s.hidden}, 0);
        onnx::NodeProto* n = b.Node("Conv", path + "/Conv", {in, w, bias});
        GraphBuilder::Ints(n, "kernel_shape", {3});
        GraphBuilder::Ints(n, "pads", {1, 1});
        GraphBuilder::Ints(n, "strides", {stride});
        return b.Gelu(path + "/gelu", n->output(0));
      };
      x = conv("/conv2", conv("/conv1", "input_features", s.mel_bins, 1), s.hidden, 2);
      x = b.Transpose("/frames/Transpose", x, {0, 2, 1});
      const std::string positions = b.Weight("embed_positions.weight", {s.sequence / 2, s.hidden}, kEmbeddingStddev);
      x = b.Op("Add", "/frames/Add", {x, positions});
      for (int l = 0; l < s.layers; ++l) x = b.PreLnBlock(absl::StrCat("/encoder/layers.", l), x, s, "");
      x = b.LayerNorm("/encoder/layer_norm", x, s.hidden);
      b.Output(x, "last_hidden_state", {1, s.sequence / 2, s.hidden});
      break;
    }
  }
  return model;
}

}  // namespace squeeze::bench
