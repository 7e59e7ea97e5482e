#include "search/engine/pareto.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "search/engine/internal/nondominated_sort.h"

namespace squeeze::search {
namespace {

// a ≤ b in every coordinate (dominates or equals).
bool WeaklyDominates(const std::vector<double>& a, const std::vector<double>& b) {
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] > b[k]) return false;
  }
  return true;
}

std::vector<size_t> LexicographicOrder(const PointSet& points) {
  std::vector<size_t> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return points[a] < points[b]; });
  return order;
}

// The region of the (x, y) plane dominated by a set of points within [.., rx] × [.., ry], kept as
// a staircase (x ascending, y descending) with its area updated on every insertion.
class Staircase {
 public:
  Staircase(double rx, double ry) : rx_(rx), ry_(ry) {}

  double area() const { return area_; }

  void Insert(double x, double y) {
    auto it = steps_.upper_bound(x);
    if (it != steps_.begin() && std::prev(it)->second <= y) return;  // already dominated
    double current_y = it != steps_.begin() ? std::prev(it)->second : ry_;
    double previous_x = x;
    double gain = 0;
    bool bounded = false;
    it = steps_.lower_bound(x);
    while (it != steps_.end()) {
      gain += (it->first - previous_x) * (current_y - y);
      if (it->second < y) {
        bounded = true;
        break;
      }
      current_y = it->second;
      previous_x = it->first;
      it = steps_.erase(it);
    }
    if (!bounded) gain += (rx_ - previous_x) * (current_y - y);
    area_ += gain;
    steps_[x] = y;
  }

 private:
  double rx_, ry_;
  double area_ = 0;
  std::map<double, double> steps_;
};

// Points already filtered to lie strictly inside the reference box; coordinates 0..2 are used.
double Hypervolume3(std::vector<const std::vector<double>*> points, const std::vector<double>& reference) {
  std::stable_sort(points.begin(), points.end(), [](const auto* a, const auto* b) { return (*a)[2] < (*b)[2]; });
  Staircase staircase(reference[0], reference[1]);
  double volume = 0;
  double previous_z = points.empty() ? reference[2] : (*points.front())[2];
  for (const auto* p : points) {
    volume += staircase.area() * ((*p)[2] - previous_z);
    previous_z = (*p)[2];
    staircase.Insert((*p)[0], (*p)[1]);
  }
  volume += staircase.area() * (reference[2] - previous_z);
  return volume;
}

}  // namespace

bool Dominates(absl::Span<const double> a, absl::Span<const double> b) {
  bool strictly = false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] > b[k]) return false;
    if (a[k] < b[k]) strictly = true;
  }
  return strictly;
}

std::vector<size_t> ParetoFilter(const PointSet& points) {
  if (points.empty()) return {};
  const size_t dims = points[0].size();
  const std::vector<size_t> order = LexicographicOrder(points);
  std::vector<size_t> kept;
  if (dims <= 1) {
    kept.push_back(order.front());
  } else if (dims == 2) {
    double best = std::numeric_limits<double>::infinity();
    for (size_t i : order) {
      if (points[i][1] < best) {
        kept.push_back(i);
        best = points[i][1];
      }
    }
  } else if (dims == 3) {
    // In lexicographic order no point is dominated by a later one, so a point survives when no
    // earlier survivor is ≤ it in the last two coordinates.
    std::map<double, double> steps;  // y ascending, z descending
    for (size_t i : order) {
      const double y = points[i][1], z = points[i][2];
      auto it = steps.upper_bound(y);
      if (it != steps.begin() && std::prev(it)->second <= z) continue;
      kept.push_back(i);
      it = steps.lower_bound(y);
      while (it != steps.end() && it->second >= z) it = steps.erase(it);
      steps[y] = z;
    }
  } else {
    for (size_t i : order) {
      bool dominated = false;
      for (size_t k : kept) {
        if (WeaklyDominates(points[k], points[i])) {
          dominated = true;
          break;
        }
      }
      if (!dominated) kept.push_back(i);
    }
  }
  return kept;
}

std::vector<std::vector<size_t>> NonDominatedSort(const PointSet& points) {
  return internal::SortByDominance(points.size(), [&](size_t i, size_t j) { return Dominates(points[i], points[j]); });
}

std::vector<double> CrowdingDistances(const PointSet& points, const std::vector<size_t>& front) {
  const size_t m = front.size();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> distance(m, 0);
  if (m <= 2) return std::vector<double>(m, inf);
  const size_t dims = points[front[0]].size();
  std::vector<size_t> order(m);
  for (size_t k = 0; k < dims; ++k) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return points[front[a]][k] < points[front[b]][k]; });
    const double lo = points[front[order.front()]][k];
    const double hi = points[front[order.back()]][k];
    distance[order.front()] = inf;
    distance[order.back()] = inf;
    if (hi <= lo) continue;
    for (size_t t = 1; t + 1 < m; ++t) {
      distance[order[t]] += (points[front[order[t + 1]]][k] - points[front[order[t - 1]]][k]) / (hi - lo);
    }
  }
  return distance;
}

absl::StatusOr<double> Hypervolume(const PointSet& points, const std::vector<double>& reference) {
  const size_t dims = reference.size();
  if (dims < 1 || dims > 4) {
    return absl::InvalidArgumentError(absl::StrCat("hypervolume: ", dims, " objectives; 1 to 4 are supported"));
  }
  PointSet inside;
  for (const auto& p : points) {
    if (p.size() != dims) {
      return absl::InvalidArgumentError(
          absl::StrCat("hypervolume: a point has ", p.size(), " values, the reference ", dims));
    }
    bool strictly_inside = true;
    for (size_t k = 0; k < dims; ++k) strictly_inside = strictly_inside && p[k] < reference[k];
    if (strictly_inside) inside.push_back(p);
  }
  if (inside.empty()) return 0.0;
  PointSet front;
  for (size_t i : ParetoFilter(inside)) front.push_back(std::move(inside[i]));  // lex order
  switch (dims) {
    case 1:
      return reference[0] - front.front()[0];
    case 2: {
      double volume = 0;
      for (size_t i = 0; i < front.size(); ++i) {
        const double next_x = i + 1 < front.size() ? front[i + 1][0] : reference[0];
        volume += (next_x - front[i][0]) * (reference[1] - front[i][1]);
      }
      return volume;
    }
    case 3: {
      std::vector<const std::vector<double>*> pointers;
      for (const auto& p : front) pointers.push_back(&p);
      return Hypervolume3(std::move(pointers), reference);
    }
    default: {
      // Slice along the 4th coordinate: between consecutive values, the dominated volume is the
      // 3-D hypervolume of the points at or below the slice.
      std::stable_sort(front.begin(), front.end(), [](const auto& a, const auto& b) { return a[3] < b[3]; });
      double volume = 0;
      std::vector<const std::vector<double>*> below;  // non-dominated in the first three
      auto covers = [](const std::vector<double>& a, const std::vector<double>& b) {
        return a[0] <= b[0] && a[1] <= b[1] && a[2] <= b[2];
      };
      for (size_t i = 0; i < front.size(); ++i) {
        // A point the slice already covers adds nothing here or above; points it covers add
        // nothing from here on.
        bool covered = false;
        for (const auto* q : below) covered = covered || covers(*q, front[i]);
        if (!covered) {
          below.erase(std::remove_if(below.begin(), below.end(), [&](const auto* q) { return covers(front[i], *q); }),
                      below.end());
          below.push_back(&front[i]);
        }
        const double next_w = i + 1 < front.size() ? front[i + 1][3] : reference[3];
        if (next_w > front[i][3]) volume += (next_w - front[i][3]) * Hypervolume3(below, reference);
      }
      return volume;
    }
  }
}

}  // namespace squeeze::search
