// runtime/output_fidelity.h: each output's own figures and the task metric its kind calls for,
// checked against values worked out by hand.
#include "runtime/output_fidelity.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "model/weight_math.h"

namespace squeeze::runtime {
namespace {

Tensor Floats(std::vector<int64_t> shape, std::vector<float> values) {
  return Tensor::Float("y", std::move(shape), values);
}

TEST_CASE("An output's kind follows its shape", "[fidelity]") {
  CHECK(OutputKindOf({1, 1000}, true) == OutputKind::kClassScores);
  CHECK(OutputKindOf({1, 80, 6625}, true) == OutputKind::kSequenceScores);
  CHECK(OutputKindOf({1, 1, 320, 320}, true) == OutputKind::kMask);
  CHECK(OutputKindOf({1, 160, 160, 1}, true) == OutputKind::kMask);  // channels last (M-LSD's scores)
  CHECK(OutputKindOf({1, 64, 80, 80}, true) == OutputKind::kMap);
  CHECK(OutputKindOf({1, 1}, true) == OutputKind::kMap);  // one score: nothing to rank
  CHECK(OutputKindOf({1, 1000}, false) == OutputKind::kNotFloat);
  CHECK(OutputKindName(OutputKind::kSequenceScores) == "sequence scores");
}

TEST_CASE("Class scores: top-1 and top-5 agreement over rows", "[fidelity]") {
  // Two rows of 10 classes. Row 0: same best class (3). Row 1: the original's best (0) drops to
  // the candidate's second place: top-1 disagrees, top-5 agrees.
  std::vector<float> a(20, 0.f), b(20, 0.f);
  a[3] = 5, b[3] = 4.5;
  a[10] = 2, a[11] = 1, b[10] = 1, b[11] = 2;
  OutputComparison c("logits");
  REQUIRE(c.Add(Floats({2, 10}, a), Floats({2, 10}, b)).ok());
  const OutputFidelity r = c.Result();
  CHECK(r.name == "logits");
  CHECK(r.kind == OutputKind::kClassScores);
  REQUIRE(r.metrics.size() == 2);
  CHECK(r.metrics[0] == std::make_pair(std::string("top-1 agreement"), 0.5));
  CHECK(r.metrics[1] == std::make_pair(std::string("top-5 agreement"), 1.0));
  // SQNR by hand: signal 25 + 4 + 1 = 30, noise 0.25 + 1 + 1 = 2.25.
  CHECK(r.sqnr_db == Approx(10 * std::log10(30 / 2.25)));
  CHECK(c.signal() == Approx(30));
  CHECK(c.noise() == Approx(2.25));
}

TEST_CASE("Sequence scores: argmax agreement per position, over samples", "[fidelity]") {
  // [1, 3 positions, 2 classes]; sample 1 agrees at 2 of 3 positions, sample 2 at 3 of 3.
  OutputComparison c("ctc");
  REQUIRE(c.Add(Floats({1, 3, 2}, {1, 0, 0, 1, 1, 0}), Floats({1, 3, 2}, {1, 0, 0, 1, 0, 1})).ok());
  REQUIRE(c.Add(Floats({1, 3, 2}, {1, 0, 0, 1, 1, 0}), Floats({1, 3, 2}, {1, 0, 0, 1, 1, 0})).ok());
  const OutputFidelity r = c.Result();
  CHECK(r.kind == OutputKind::kSequenceScores);
  REQUIRE(r.metrics.size() == 1);
  CHECK(r.metrics[0].first == "argmax agreement");
  CHECK(r.metrics[0].second == Approx(5.0 / 6));
  // Rows that are no distributions (box coordinates) are a map: their argmax means nothing.
  OutputComparison boxes("boxes");
  REQUIRE(
      boxes.Add(Floats({1, 2, 4}, {0.1f, 0.2f, 0.5f, 0.9f, 3, 1, 4, 2}), Floats({1, 2, 4}, {0, 0, 0, 0, 0, 0, 0, 0}))
          .ok());
  CHECK(boxes.Result().kind == OutputKind::kMap);
  CHECK(boxes.Result().metrics.empty());
}

TEST_CASE("Masks: IoU thresholded at 0.5 for probabilities, at 0 for logits", "[fidelity]") {
  // Probabilities (all in [0, 1]): original above 0.5 at {0, 1}, candidate at {1, 2}: IoU 1/3.
  OutputComparison p("mask");
  REQUIRE(p.Add(Floats({1, 1, 2, 2}, {0.9f, 0.8f, 0.2f, 0.1f}), Floats({1, 1, 2, 2}, {0.4f, 0.9f, 0.7f, 0.1f})).ok());
  REQUIRE(p.Result().metrics.size() == 1);
  CHECK(p.Result().metrics[0].first == "mask IoU");
  CHECK(p.Result().metrics[0].second == Approx(1.0 / 3));
  // Logits (some outside [0, 1]): the same candidate values are all positive: IoU 2/4.
  OutputComparison l("mask");
  REQUIRE(l.Add(Floats({1, 1, 2, 2}, {3.f, 2.f, -1.f, -2.f}), Floats({1, 1, 2, 2}, {0.4f, 0.9f, 0.7f, 0.1f})).ok());
  CHECK(l.Result().metrics[0].second == Approx(0.5));
  // Both empty: nothing to compare, so no IoU (not a perfect 1).
  OutputComparison e("mask");
  REQUIRE(e.Add(Floats({1, 1, 2, 2}, {0, 0, 0, 0}), Floats({1, 1, 2, 2}, {0, 0, 0, 0})).ok());
  CHECK(e.Result().metrics.empty());
  CHECK(std::isinf(e.Result().sqnr_db));
}

TEST_CASE("Other outputs: maps get SQNR and cosine, integer outputs exact agreement", "[fidelity]") {
  OutputComparison map("features");
  REQUIRE(map.Add(Floats({1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), Floats({1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8})).ok());
  CHECK(map.Result().kind == OutputKind::kMap);
  CHECK(map.Result().metrics.empty());
  CHECK(map.Result().cosine == Approx(1));

  Tensor a, b;
  a.name = b.name = "labels";
  a.type = b.type = ElementType::kInt64;
  a.shape = b.shape = {1, 4};
  const int64_t x[4] = {1, 2, 3, 4}, y[4] = {1, 2, 0, 4};
  a.bytes.assign(reinterpret_cast<const char*>(x), sizeof(x));
  b.bytes.assign(reinterpret_cast<const char*>(y), sizeof(y));
  OutputComparison labels("labels");
  REQUIRE(labels.Add(a, b).ok());
  const OutputFidelity r = labels.Result();
  CHECK(r.kind == OutputKind::kNotFloat);
  REQUIRE(r.metrics.size() == 1);
  CHECK(r.metrics[0] == std::make_pair(std::string("exact agreement"), 0.75));
  CHECK(labels.signal() == 0);  // not in the pooled float figures
}

TEST_CASE("fp16 outputs are compared as their values", "[fidelity]") {
  auto half = [](std::vector<float> v) {
    Tensor t;
    t.name = "y";
    t.type = ElementType::kFloat16;
    t.shape = {1, 2};
    for (float f : v) {
      const uint16_t bits = model::FloatToHalfBits(f);
      t.bytes.append(reinterpret_cast<const char*>(&bits), 2);
    }
    return t;
  };
  OutputComparison c("y");
  REQUIRE(c.Add(half({2, 1}), half({1, 2})).ok());
  CHECK(c.Result().kind == OutputKind::kClassScores);
  CHECK(c.Result().metrics[0].second == 0);
  CHECK(c.signal() == Approx(5));
}

TEST_CASE("Outputs of another shape or type are refused", "[fidelity]") {
  OutputComparison c("y");
  CHECK(absl::IsInvalidArgument(c.Add(Floats({1, 2}, {1, 2}), Floats({2, 1}, {1, 2}))));
}

}  // namespace
}  // namespace squeeze::runtime
