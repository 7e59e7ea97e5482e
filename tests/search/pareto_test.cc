#include "search/engine/pareto.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

namespace squeeze::search {
namespace {

PointSet RandomIntegerPoints(int n, int dims, int range, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> u(0, range - 1);
  PointSet points(n, std::vector<double>(dims));
  for (auto& p : points) {
    for (double& x : p) x = u(gen);
  }
  return points;
}

// Non-dominated set by definition, O(n²): the first of equal points.
std::vector<size_t> SlowFilter(const PointSet& points) {
  std::vector<size_t> kept;
  for (size_t i = 0; i < points.size(); ++i) {
    bool out = false;
    for (size_t j = 0; j < points.size() && !out; ++j) {
      out = Dominates(points[j], points[i]) || (points[j] == points[i] && j < i);
    }
    if (!out) kept.push_back(i);
  }
  std::sort(kept.begin(), kept.end(), [&](size_t a, size_t b) { return points[a] < points[b]; });
  return kept;
}

// Dominated volume by counting unit cells of an integer grid (points and reference integers).
double CountedVolume(const PointSet& points, int dims, int reference) {
  double cells = 0;
  std::vector<int> cell(dims, 0);
  while (true) {
    bool dominated = false;
    for (const auto& p : points) {
      bool all = true;
      for (int k = 0; k < dims; ++k) all = all && p[k] <= cell[k];
      dominated = dominated || all;
    }
    if (dominated) cells += 1;
    int k = 0;
    while (k < dims && ++cell[k] == reference) cell[k++] = 0;
    if (k == dims) break;
  }
  return cells;
}

TEST_CASE("Dominates needs no worse everywhere and better somewhere", "[pareto]") {
  CHECK(Dominates(std::vector<double>{1, 2}, std::vector<double>{1, 3}));
  CHECK_FALSE(Dominates(std::vector<double>{1, 3}, std::vector<double>{1, 2}));
  CHECK_FALSE(Dominates(std::vector<double>{1, 2}, std::vector<double>{1, 2}));
  CHECK_FALSE(Dominates(std::vector<double>{0, 4}, std::vector<double>{1, 2}));
}

TEST_CASE("ParetoFilter matches the definition in 1 to 4 dimensions", "[pareto]") {
  for (int dims = 1; dims <= 4; ++dims) {
    for (uint32_t seed = 1; seed <= 5; ++seed) {
      // A small integer range makes ties and duplicates common.
      const PointSet points = RandomIntegerPoints(300, dims, 12, seed * 10 + dims);
      INFO("dims " << dims << " seed " << seed);
      CHECK(ParetoFilter(points) == SlowFilter(points));
    }
  }
}

TEST_CASE("NonDominatedSort peels successive fronts", "[pareto]") {
  const PointSet points = {{1, 5}, {2, 2}, {5, 1}, {3, 3}, {4, 4}, {2, 2}, {6, 6}};
  const auto fronts = NonDominatedSort(points);
  REQUIRE(fronts.size() == 4);
  CHECK(fronts[0] == std::vector<size_t>{0, 1, 2, 5});
  CHECK(fronts[1] == std::vector<size_t>{3});
  CHECK(fronts[2] == std::vector<size_t>{4});
  CHECK(fronts[3] == std::vector<size_t>{6});
}

TEST_CASE("CrowdingDistances favour the extremes and the isolated", "[pareto]") {
  const PointSet points = {{0, 10}, {1, 9}, {2, 8}, {8, 2}, {10, 0}};
  const auto d = CrowdingDistances(points, {0, 1, 2, 3, 4});
  CHECK(std::isinf(d[0]));
  CHECK(std::isinf(d[4]));
  CHECK(d[1] == Approx(0.4));  // (2-0)/10 + (10-8)/10
  CHECK(d[3] > d[1]);          // far from its neighbours
}

TEST_CASE("Hypervolume is exact against cell counting", "[pareto]") {
  for (int dims = 1; dims <= 4; ++dims) {
    const int reference = dims == 4 ? 7 : 10;
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      const PointSet points = RandomIntegerPoints(dims == 4 ? 25 : 40, dims, reference + 2, seed);
      INFO("dims " << dims << " seed " << seed);
      const auto volume = Hypervolume(points, std::vector<double>(dims, reference));
      REQUIRE(volume.ok());
      CHECK(*volume == Approx(CountedVolume(points, dims, reference)));
    }
  }
}

TEST_CASE("Hypervolume of known shapes", "[pareto]") {
  CHECK(*Hypervolume({{1, 3}, {2, 2}, {3, 1}}, {4, 4}) == Approx(6));
  CHECK(*Hypervolume({{0, 0, 0}}, {2, 3, 4}) == Approx(24));
  CHECK(*Hypervolume({{5, 0}}, {4, 4}) == 0);  // outside the reference box
  CHECK(*Hypervolume({}, {4, 4}) == 0);
}

TEST_CASE("Hypervolume rejects bad dimensions", "[pareto]") {
  CHECK(Hypervolume({{1, 2}}, {3, 3, 3}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Hypervolume({{1, 2, 3, 4, 5}}, {9, 9, 9, 9, 9}).status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace squeeze::search
