// How closely one graph output of an exported model follows the original's, over calibration
// samples: its own SQNR and cosine (so a small main output is not hidden behind a large auxiliary
// one in the pooled figure) and the agreement a task built on that output sees, chosen by the
// output's kind:
//   class scores     [N, C], C >= 2           top-1 agreement (rows whose best class is the
//                                              original's) and, for C >= 10, top-5 agreement
//                                              (rows whose original best class is among the
//                                              candidate's five best)
//   sequence scores  [N, T, C], T, C >= 2,    argmax agreement per position (e.g. a CTC head);
//                    each row a distribution   rows that are not (box regressions, raw logits)
//                    (>= 0, summing to 1)      make a map
//   mask             [N, 1, H, W] or          IoU of the two maps thresholded at 0.5 where the
//                    [N, H, W, 1]              original's values lie in [0, 1], else at 0;
//                                              none where both masks are empty
//   map              any other float output   SQNR and cosine only
//   not float        integer or bool outputs  exact agreement of the values
#ifndef SQUEEZE_RUNTIME_OUTPUT_FIDELITY_H_
#define SQUEEZE_RUNTIME_OUTPUT_FIDELITY_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "runtime/session.h"

namespace squeeze::runtime {

enum class OutputKind { kClassScores, kSequenceScores, kMask, kMap, kNotFloat };

// "class scores", "sequence scores", "mask", "map", "not float".
absl::string_view OutputKindName(OutputKind kind);

// The kind of an output of this shape (see above); `is_float`: fp32 or fp16 values. A
// [N, T, C] shape is sequence scores only where its values' rows are distributions
// (OutputComparison looks at the first sample's).
OutputKind OutputKindOf(const std::vector<int64_t>& shape, bool is_float);

struct OutputFidelity {
  std::string name;
  std::vector<int64_t> shape;  // the first sample's
  OutputKind kind = OutputKind::kMap;
  double sqnr_db = 0;  // 10·log10(Σy² / Σ(y' − y)²) over the samples; +inf when exact
  double cosine = 0;
  double relative_error = 0;
  double weight = 0;  // its share of the model's SQNR (VerifyOptions::output_weights)
  // The value sqnr_db, cosine and relative_error are taken on when it is not the output itself:
  // a softmax output's logits (model::FidelityOutputs), where the sensitivities take it. Empty:
  // the output.
  std::string error_on;
  // The task metrics its kind calls for, named as above, each in [0, 1].
  std::vector<std::pair<std::string, double>> metrics;
};

// One output's comparison, accumulated sample by sample.
class OutputComparison {
 public:
  explicit OutputComparison(std::string name) { result_.name = std::move(name); }

  // Adds one sample's two values. InvalidArgument when their shapes or types differ.
  absl::Status Add(const Tensor& original, const Tensor& candidate);
  // The figures over the samples added so far.
  OutputFidelity Result() const;
  // Takes SQNR, cosine and relative error from `other`'s values (a softmax output's logits,
  // compared alike), keeping this output's kind and task metrics.
  void TakeErrorFrom(const OutputComparison& other);

  // Sums over float values, for figures pooled over several outputs.
  double signal() const { return signal_; }
  double noise() const { return noise_; }
  double dot() const { return dot_; }
  double candidate_energy() const { return candidate_energy_; }

 private:
  OutputFidelity result_;
  bool started_ = false;
  double signal_ = 0, noise_ = 0, dot_ = 0, candidate_energy_ = 0;
  int64_t rows_ = 0, top1_ = 0, top5_ = 0;  // class and sequence scores: rows (positions) compared
  int64_t intersection_ = 0, union_ = 0;    // mask
  int64_t values_ = 0, equal_ = 0;          // not float
};

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_OUTPUT_FIDELITY_H_
