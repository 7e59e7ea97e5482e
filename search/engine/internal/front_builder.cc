#include "search/engine/internal/front_builder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <set>

#include "search/engine/internal/evaluation.h"

namespace squeeze::search::internal {
namespace {

size_t CountBoxes(const PointSet& points, const std::vector<double>& lo, const std::vector<double>& hi, int64_t boxes,
                  std::vector<size_t>* firsts) {
  std::set<std::array<int64_t, 4>> seen;
  for (size_t i = 0; i < points.size(); ++i) {
    std::array<int64_t, 4> key = {0, 0, 0, 0};
    for (size_t k = 0; k < points[i].size() && k < 4; ++k) {
      if (hi[k] <= lo[k]) continue;
      const double u = (points[i][k] - lo[k]) / (hi[k] - lo[k]);
      key[k] = std::min<int64_t>(boxes - 1, static_cast<int64_t>(u * static_cast<double>(boxes)));
    }
    if (seen.insert(key).second && firsts != nullptr) firsts->push_back(i);
  }
  return seen.size();
}

}  // namespace

std::vector<double> ObjectivePoint(const ObjectiveValues& values, const SearchSpec& spec) {
  std::vector<double> point;
  point.reserve(spec.objectives.size());
  for (Objective objective : spec.objectives) point.push_back(values.Get(objective));
  return point;
}

std::vector<size_t> ThinByBoxes(const PointSet& points, size_t max_count) {
  std::vector<size_t> all(points.size());
  std::iota(all.begin(), all.end(), 0);
  if (points.size() <= max_count) return all;
  const size_t dims = points[0].size();
  std::vector<double> lo = points[0], hi = points[0];
  std::set<size_t> extremes;
  for (size_t k = 0; k < dims; ++k) {
    size_t best = 0;
    for (size_t i = 0; i < points.size(); ++i) {
      lo[k] = std::min(lo[k], points[i][k]);
      hi[k] = std::max(hi[k], points[i][k]);
      if (points[i][k] < points[best][k]) best = i;
    }
    extremes.insert(best);
  }
  std::vector<size_t> kept;
  if (max_count <= extremes.size()) {
    kept.assign(extremes.begin(), extremes.end());
    kept.resize(max_count);
    return kept;
  }
  const size_t budget = max_count - extremes.size();
  int64_t lo_boxes = 1, hi_boxes = int64_t{1} << 24;  // lo fits (one box), find the largest that fits
  while (lo_boxes < hi_boxes) {
    const int64_t mid = lo_boxes + (hi_boxes - lo_boxes + 1) / 2;
    if (CountBoxes(points, lo, hi, mid, nullptr) <= budget) {
      lo_boxes = mid;
    } else {
      hi_boxes = mid - 1;
    }
  }
  std::vector<size_t> firsts;
  CountBoxes(points, lo, hi, lo_boxes, &firsts);
  std::set<size_t> chosen(firsts.begin(), firsts.end());
  chosen.insert(extremes.begin(), extremes.end());
  kept.assign(chosen.begin(), chosen.end());
  return kept;
}

Front BuildFront(const OptionTable& table, const SearchSpec& spec, Strategy strategy,
                 std::vector<Candidate> candidates) {
  Front front;
  front.strategy = strategy;
  front.objectives = spec.objectives;
  front.reference = spec.reference.empty() ? DefaultReference(table, spec) : spec.reference;
  front.ideal = IdealPoint(table, spec);

  candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                  [&](const Candidate& c) { return !Feasible(c.values, spec.constraints); }),
                   candidates.end());
  PointSet points;
  points.reserve(candidates.size());
  for (const Candidate& c : candidates) points.push_back(ObjectivePoint(c.values, spec));
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (points[a] != points[b]) return points[a] < points[b];
    if (candidates[a].choice != candidates[b].choice) {
      return candidates[a].choice < candidates[b].choice;
    }
    return a < b;
  });
  PointSet sorted_points;
  sorted_points.reserve(order.size());
  for (size_t i : order) sorted_points.push_back(points[i]);

  std::vector<size_t> kept = ParetoFilter(sorted_points);  // ascending, as sorted_points
  PointSet front_points;
  front_points.reserve(kept.size());
  for (size_t k : kept) front_points.push_back(sorted_points[k]);
  std::vector<size_t> thinned(kept.size());
  std::iota(thinned.begin(), thinned.end(), 0);
  if (spec.max_candidates > 0 && kept.size() > spec.max_candidates) {
    thinned = ThinByBoxes(front_points, spec.max_candidates);
  }
  PointSet final_points;
  front.candidates.reserve(thinned.size());
  for (size_t t : thinned) {
    front.candidates.push_back(std::move(candidates[order[kept[t]]]));
    final_points.push_back(std::move(front_points[t]));
  }
  front.hypervolume = Hypervolume(final_points, front.reference).value_or(0.0);
  double box = 1;
  for (size_t k = 0; k < front.reference.size(); ++k) {
    box *= std::max(0.0, front.reference[k] - front.ideal[k]);
  }
  front.hypervolume_fraction = box > 0 ? front.hypervolume / box : 0;
  return front;
}

}  // namespace squeeze::search::internal
