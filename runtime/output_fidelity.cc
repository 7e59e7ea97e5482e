#include "runtime/output_fidelity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "model/weight_math.h"

namespace squeeze::runtime {
namespace {

bool IsFloat(ElementType type) { return type == ElementType::kFloat32 || type == ElementType::kFloat16; }

// The values of an fp32 or fp16 tensor as floats: fp32 in place, fp16 decoded into `storage`.
absl::Span<const float> FloatsOf(const Tensor& t, std::vector<float>* storage) {
  if (t.type == ElementType::kFloat32) return t.floats();
  storage->resize(t.bytes.size() / 2);
  for (size_t i = 0; i < storage->size(); ++i) {
    uint16_t bits;
    std::memcpy(&bits, t.bytes.data() + 2 * i, 2);
    (*storage)[i] = model::HalfBitsToFloat(bits);
  }
  return *storage;
}

// Whether every row of `row_size` values is a distribution: none below 0, summing to 1.
bool Distributions(absl::Span<const float> values, int64_t row_size) {
  const size_t n = static_cast<size_t>(std::max<int64_t>(1, row_size));
  for (size_t row = 0; row + n <= values.size(); row += n) {
    double sum = 0;
    for (size_t i = row; i < row + n; ++i) {
      if (values[i] < 0) return false;
      sum += values[i];
    }
    if (std::abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

// Index of the largest of `n` values from `v` (the first on ties).
size_t Argmax(const float* v, size_t n) { return static_cast<size_t>(std::max_element(v, v + n) - v); }

// Whether `target` is among the `k` largest of `n` values (ties counted against it).
bool InTopK(const float* v, size_t n, size_t target, size_t k) {
  size_t above = 0;
  for (size_t i = 0; i < n; ++i) above += v[i] > v[target] || (v[i] == v[target] && i < target);
  return above < k;
}

}  // namespace

absl::string_view OutputKindName(OutputKind kind) {
  switch (kind) {
    case OutputKind::kClassScores:
      return "class scores";
    case OutputKind::kSequenceScores:
      return "sequence scores";
    case OutputKind::kMask:
      return "mask";
    case OutputKind::kMap:
      return "map";
    case OutputKind::kNotFloat:
      return "not float";
  }
  return "map";
}

OutputKind OutputKindOf(const std::vector<int64_t>& shape, bool is_float) {
  if (!is_float) return OutputKind::kNotFloat;
  if (shape.size() == 2 && shape[1] >= 2) return OutputKind::kClassScores;
  if (shape.size() == 3 && shape[1] >= 2 && shape[2] >= 2) return OutputKind::kSequenceScores;
  // One channel, channels first [N, 1, H, W] or last [N, H, W, 1] (TensorFlow exports).
  if (shape.size() == 4 &&
      ((shape[1] == 1 && shape[2] >= 2 && shape[3] >= 2) || (shape[3] == 1 && shape[1] >= 2 && shape[2] >= 2))) {
    return OutputKind::kMask;
  }
  return OutputKind::kMap;
}

absl::Status OutputComparison::Add(const Tensor& original, const Tensor& candidate) {
  if (original.shape != candidate.shape || original.type != candidate.type ||
      original.bytes.size() != candidate.bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("output '", result_.name, "' of the exported model has another shape or type"));
  }
  const bool first = !started_;
  if (first) {
    result_.shape = original.shape;
    result_.kind = OutputKindOf(original.shape, IsFloat(original.type));
    started_ = true;
  }
  if (!IsFloat(original.type)) {
    const size_t size = std::max<size_t>(1, ElementSize(original.type));
    for (size_t i = 0; i + size <= original.bytes.size(); i += size) {
      ++values_;
      equal_ += std::memcmp(original.bytes.data() + i, candidate.bytes.data() + i, size) == 0;
    }
    return absl::OkStatus();
  }
  std::vector<float> a_storage, b_storage;
  const absl::Span<const float> a = FloatsOf(original, &a_storage), b = FloatsOf(candidate, &b_storage);
  if (first && result_.kind == OutputKind::kSequenceScores && !Distributions(a, original.shape.back())) {
    result_.kind = OutputKind::kMap;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(b[i]) - a[i];
    signal_ += static_cast<double>(a[i]) * a[i];
    noise_ += d * d;
    dot_ += static_cast<double>(a[i]) * b[i];
    candidate_energy_ += static_cast<double>(b[i]) * b[i];
  }
  // The kind is the first sample's; a later sample of another rank is compared by SQNR alone.
  const OutputKind kind = OutputKindOf(original.shape, true);
  if (kind != result_.kind) return absl::OkStatus();
  if (kind == OutputKind::kClassScores || kind == OutputKind::kSequenceScores) {
    const size_t classes = static_cast<size_t>(original.shape.back());
    for (size_t row = 0; row + classes <= a.size(); row += classes) {
      const size_t best = Argmax(a.data() + row, classes);
      ++rows_;
      top1_ += Argmax(b.data() + row, classes) == best;
      top5_ += InTopK(b.data() + row, classes, best, 5);
    }
  } else if (kind == OutputKind::kMask) {
    const auto [lo, hi] = std::minmax_element(a.begin(), a.end());
    const float threshold = a.empty() || (*lo >= 0 && *hi <= 1) ? 0.5f : 0.f;
    for (size_t i = 0; i < a.size(); ++i) {
      const bool x = a[i] > threshold, y = b[i] > threshold;
      intersection_ += x && y;
      union_ += x || y;
    }
  }
  return absl::OkStatus();
}

void OutputComparison::TakeErrorFrom(const OutputComparison& other) {
  signal_ = other.signal_;
  noise_ = other.noise_;
  dot_ = other.dot_;
  candidate_energy_ = other.candidate_energy_;
  result_.error_on = other.result_.name;
}

OutputFidelity OutputComparison::Result() const {
  OutputFidelity r = result_;
  r.metrics.clear();
  if (r.kind == OutputKind::kNotFloat) {
    r.sqnr_db = equal_ == values_ ? std::numeric_limits<double>::infinity() : 0;
    r.cosine = values_ > 0 ? static_cast<double>(equal_) / static_cast<double>(values_) : 1;
    r.relative_error = values_ > 0 ? 1 - r.cosine : 0;
    r.metrics.emplace_back("exact agreement", r.cosine);
    return r;
  }
  r.relative_error = signal_ > 0 ? noise_ / signal_ : (noise_ > 0 ? std::numeric_limits<double>::infinity() : 0);
  r.sqnr_db = noise_ > 0 ? 10 * std::log10(signal_ / noise_) : std::numeric_limits<double>::infinity();
  r.cosine =
      signal_ > 0 && candidate_energy_ > 0 ? dot_ / std::sqrt(signal_ * candidate_energy_) : (noise_ == 0 ? 1 : 0);
  if (rows_ > 0 && r.kind == OutputKind::kClassScores) {
    r.metrics.emplace_back("top-1 agreement", static_cast<double>(top1_) / static_cast<double>(rows_));
    if (!r.shape.empty() && r.shape.back() >= 10)
      r.metrics.emplace_back("top-5 agreement", static_cast<double>(top5_) / static_cast<double>(rows_));
  } else if (rows_ > 0 && r.kind == OutputKind::kSequenceScores) {
    r.metrics.emplace_back("argmax agreement", static_cast<double>(top1_) / static_cast<double>(rows_));
  } else if (r.kind == OutputKind::kMask && union_ > 0) {
    // Two empty masks agree on nothing worth a figure: no IoU (an empty mask on the calibration
    // inputs — synthetic ones, most often — cannot tell a good export from a bad one).
    r.metrics.emplace_back("mask IoU", static_cast<double>(intersection_) / static_cast<double>(union_));
  }
  return r;
}

}  // namespace squeeze::runtime
