// How low-bit block-wise weights are rounded (DESIGN.md §3): to the nearest level, or with the
// rounding error of each weight compensated on the weights not yet rounded, the second-order
// post-training quantizer of GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers", ICLR 2023).
//
// Rounding to the nearest level minimizes ||W − Ŵ||². What a layer passes on is X·W, so GPTQ
// minimizes ||X·(W − Ŵ)||² on the layer's calibration inputs X instead: it rounds the K inputs'
// weights one after another and spreads each one's error over the inputs still to come through
// the inverse Hessian H⁻¹ (H = XᵀX shrunk towards its diagonal by as much as the rows are few,
// plus λI), so that the error lands where the layer's inputs do not look. Ŵ is as far from W as round-to-nearest's or
// farther; the layer's output is closer.
//
// Both the predictor (search/problem: the option's distortion) and the exporter (MatMulNBits
// codes) call QuantizeBlocks with the same inputs, so the predicted error is the shipped error.
// Pure functions; thread safe (QuantizeBlocks runs its rows on oneTBB's pool).
#ifndef SQUEEZE_MODEL_ROUNDING_H_
#define SQUEEZE_MODEL_ROUNDING_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/weight_math.h"

namespace squeeze::model {

enum class WeightRounding {
  kNearest,            // each weight to its nearest level (QuantizeRow's scale)
  kErrorCompensating,  // GPTQ, where a layer's calibration inputs are known (QuantizeBlocks)
};

// "nearest" / "gptq".
const char* WeightRoundingName(WeightRounding rounding);

// A layer's inputs on the calibration samples: the rows of X, each the K values one output
// position reads (a token's activations for a MatMul [.., K] x [K, N]).
struct LayerInputRows {
  int64_t k = 0;
  std::vector<float> values;  // rows x k, row-major
  int64_t rows() const { return k > 0 ? static_cast<int64_t>(values.size()) / k : 0; }
};

// By model::Layer::name; layers that read the same value share one LayerInputRows.
using LayerInputs = std::map<std::string, std::shared_ptr<const LayerInputRows>>;

// Fewer calibration rows than this and GPTQ fits noise: XᵀX has too few directions for the error
// it moves into the others to stay unseen on other inputs. QuantizeBlocks rounds to nearest then.
inline constexpr int64_t kLeastCompensationRows = 64;

// GPTQ's factorization holds K x K doubles twice over: a layer reading more inputs than this
// (2 x 128 MiB at 4,096) rounds to nearest.
inline constexpr int64_t kMostCompensatedInputs = 4096;

// GPTQ's damping: λ = this share of XᵀX's mean diagonal, added to its diagonal.
inline constexpr double kCompensationDamping = 0.01;

// What GPTQ takes of a layer's inputs, once for all of the layer's options: the upper triangular
// U with UᵀU = H⁻¹, row-major K x K, H the inputs' XᵀX shrunk and damped (rounding.cc says how).
struct CompensationBasis {
  int64_t k = 0;
  int64_t rows = 0;  // of X
  std::vector<float> u;
};

// Nullopt for fewer than kLeastCompensationRows rows, more than kMostCompensatedInputs inputs, or
// an H that does not factor (GPTQ then rounds nothing: QuantizeBlocks rounds to nearest). K³ work: one per layer input,
// not per option.
std::optional<CompensationBasis> CompensationBasisOf(const LayerInputRows& inputs);

struct BlockQuantized {
  ChannelMatrix values;       // Ŵ, dequantized; masked values 0
  std::vector<float> scales;  // channels x ceil(per_channel / block): each run's scale (> 0)
  bool compensated = false;   // GPTQ rounded it (else each value went to its nearest level)
};

// `w`'s rows (a MatMul's N output columns, each the K weights along its input) quantized
// symmetrically to `bits` (2..8) in runs of `block` (> 0) values, each run with its own scale
// (QuantizeRow's MSE-clipped one, taken from the run as it stands when reached). Rounded to the
// nearest level, or with GPTQ when `basis` is given for the rows' length and `mask` keeps every
// value (a pruned layer rounds to nearest). Masked values are 0. Ŵ = code × scale exactly, so
// code = round(Ŵ / scale) recovers the codes.
BlockQuantized QuantizeBlocks(const ChannelMatrix& w, const std::vector<uint8_t>& mask, int bits, int64_t block,
                              const CompensationBasis* basis = nullptr);

// Whether QuantizeBlocks compensates with these arguments.
bool CompensatesRounding(const ChannelMatrix& w, const std::vector<uint8_t>& mask, const CompensationBasis* basis);

// ||X·(W − Ŵ)ᵀ||² over the rows of X: the energy of the layer's output error on its calibration
// inputs. `w` and `w_hat` as QuantizeBlocks takes them.
double OutputError(const ChannelMatrix& w, const ChannelMatrix& w_hat, const LayerInputRows& inputs);

// ||X·(W − Ŵ)ᵀ||² / ||X·Wᵀ||² over the rows of X: the layer's relative output error on its
// calibration inputs (0 when X·Wᵀ is 0). `w` and `w_hat` as QuantizeBlocks takes them.
double RelativeOutputDistortion(const ChannelMatrix& w, const ChannelMatrix& w_hat, const LayerInputRows& inputs);

}  // namespace squeeze::model

#endif  // SQUEEZE_MODEL_ROUNDING_H_
