// Transformer test models at real sizes (issue 19): real transformer ONNX files are scarce on npm,
// so these are built here, with seeded weights, in the graph shapes exporters write.
//
// - kEncoder: a BERT-shaped encoder. Token and position embeddings, post-LN blocks of separate
//   Q/K/V/O projections (MatMul + bias Add), 4-D multi-head attention (Reshape/Transpose, scaled
//   Q·Kᵀ, Softmax, ·V) and an erf-GELU MLP; output the last hidden state.
// - kDecoderLm: a GPT-shaped decoder-only LM. Pre-LN blocks with a causal mask and a final
//   LayerNormalization; the LM head ties its weight to the token embedding (MatMul by the
//   embedding's Transpose, as an export without constant folding writes it); output the logits.
// - kSpeechEncoder: a Whisper-shaped audio encoder. Two Conv1d (the second of stride 2) with GELU
//   over log-mel frames, position embeddings, pre-LN blocks; output the last hidden state.
//
// Weights are seeded normals (embeddings N(0, 1), projections N(0, 1/fan_in), so attention is not
// uniform and every block moves its output), biases 0, LayerNormalization scale 1 and bias 0;
// opset 17 (LayerNormalization). They measure how the product handles a transformer's graph and
// size, not any task's accuracy: trained weights have outliers these lack.
#ifndef SQUEEZE_BENCH_MODELS_TRANSFORMER_MODEL_H_
#define SQUEEZE_BENCH_MODELS_TRANSFORMER_MODEL_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace squeeze::bench {

enum class TransformerKind { kEncoder, kDecoderLm, kSpeechEncoder };

struct TransformerShape {
  TransformerKind kind = TransformerKind::kEncoder;
  int layers = 2;
  int hidden = 64;
  int heads = 2;
  int ffn = 256;
  int sequence = 16;  // tokens; for the speech encoder, mel frames in (half of them come out)
  int vocab = 1000;   // token ids; unused by the speech encoder
  int mel_bins = 80;  // the speech encoder's input channels
  uint64_t seed = 1;
};

// The named shapes: "bert-base" (12 × 768, 110 M parameters), "bert-mini" (4 × 256), "lm-small"
// (6 × 512 decoder, 16 k vocabulary, tied head), "speech-base" (6 × 512 over 80 × 600 mel frames,
// Whisper base's encoder at a fifth of its 30 s window), and the "tiny-*" of each kind for tests.
// nullopt for another name.
std::optional<TransformerShape> TransformerPreset(const std::string& name);
std::vector<std::string> TransformerPresetNames();

// InvalidArgument for a shape no model can have (hidden not a multiple of heads, a size below 1,
// odd mel frames) or one whose weights pass 2^31 values.
absl::StatusOr<onnx::ModelProto> BuildTransformer(const TransformerShape& shape);

// The parameters of `shape`'s model (every initializer value), without building it.
int64_t TransformerParameters(const TransformerShape& shape);

}  // namespace squeeze::bench

#endif  // SQUEEZE_BENCH_MODELS_TRANSFORMER_MODEL_H_
