#include "bench/search/budget_milp.h"

#include <glpk.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace squeeze::search::bench {
namespace {

struct ProblemDeleter {
  void operator()(glp_prob* p) const { glp_delete_prob(p); }
};

// Error of the best Lagrangian configuration (each layer minimizes error + λ·latency) within the
// budget, by bisection on λ; 0 when even the fastest configuration misses the budget.
double LagrangianError(const OptionTable& table, double max_latency) {
  auto solve = [&](double lambda, double& latency, double& error) {
    latency = table.fixed.latency;
    error = 0;
    for (const Layer& layer : table.layers) {
      const LayerOption* best = &layer.options.front();
      for (const LayerOption& o : layer.options) {
        const double cost = o.error + lambda * o.latency;
        const double best_cost = best->error + lambda * best->latency;
        if (cost < best_cost || (cost == best_cost && o.latency < best->latency)) best = &o;
      }
      latency += best->latency;
      error += best->error;
    }
  };
  double lo = 0, hi = 1;
  double latency, error;
  for (int i = 0; i < 200; ++i) {  // grow λ until the budget is met
    solve(hi, latency, error);
    if (latency <= max_latency) break;
    hi *= 4;
  }
  if (latency > max_latency) return 0;
  double best = error;
  for (int i = 0; i < 100; ++i) {
    const double mid = (lo + hi) / 2;
    solve(mid, latency, error);
    if (latency <= max_latency) {
      hi = mid;
      best = error;
    } else {
      lo = mid;
    }
  }
  return best;
}

}  // namespace

absl::StatusOr<BudgetMilpResult> SolveLatencyBudgetMilp(const OptionTable& table, double max_latency,
                                                        double time_limit_seconds) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<glp_prob, ProblemDeleter> lp(glp_create_prob());
  glp_prob* p = lp.get();
  glp_set_obj_dir(p, GLP_MIN);
  const int layers = static_cast<int>(table.layers.size());
  // Rows 1..layers: Σ_o x_io = 1. Row layers+1: Σ latency x ≤ budget − fixed.
  // Exact preprocessing, without which GLPK's simplex (costs spanning 1e-2..1e10) reports false
  // optima: drop options another option of the layer beats in latency and error, and options
  // whose error alone exceeds a known feasible configuration's total. Then scale the objective
  // so that a good answer is about 1, since GLPK's tolerances are absolute.
  const double heuristic = LagrangianError(table, max_latency);
  double scale = heuristic > 0 ? 1.0 / heuristic : 1.0;
  std::vector<std::vector<int>> kept(layers);
  for (int i = 0; i < layers; ++i) {
    const auto& options = table.layers[i].options;
    for (size_t a = 0; a < options.size(); ++a) {
      if (heuristic > 0 && options[a].error > heuristic) continue;
      bool dominated = false;
      for (size_t b = 0; b < options.size() && !dominated; ++b) {
        if (b == a) continue;
        const bool no_worse = options[b].latency <= options[a].latency && options[b].error <= options[a].error;
        const bool same = options[b].latency == options[a].latency && options[b].error == options[a].error;
        dominated = no_worse && (!same || b < a);
      }
      if (!dominated) kept[i].push_back(static_cast<int>(a));
    }
    if (kept[i].empty()) kept[i].push_back(0);  // only when the budget is infeasible anyway
  }
  // Rows 1..layers: Σ_o x_io = 1. Row layers+1: Σ latency x ≤ budget − fixed.
  glp_add_rows(p, layers + 1);
  for (int i = 1; i <= layers; ++i) glp_set_row_bnds(p, i, GLP_FX, 1.0, 1.0);
  glp_set_row_bnds(p, layers + 1, GLP_UP, 0.0, max_latency - table.fixed.latency);
  int columns = 0;
  for (const auto& k : kept) columns += static_cast<int>(k.size());
  glp_add_cols(p, columns);
  std::vector<int> ia(1), ja(1);
  std::vector<double> ar(1);
  int column = 0;
  for (int i = 0; i < layers; ++i) {
    for (int j : kept[i]) {
      const LayerOption& o = table.layers[i].options[j];
      ++column;
      glp_set_col_kind(p, column, GLP_BV);
      glp_set_obj_coef(p, column, o.error * scale);
      ia.push_back(i + 1);
      ja.push_back(column);
      ar.push_back(1.0);
      ia.push_back(layers + 1);
      ja.push_back(column);
      ar.push_back(o.latency);
    }
  }
  glp_load_matrix(p, static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());

  glp_iocp parm;
  glp_init_iocp(&parm);
  parm.presolve = GLP_ON;
  parm.msg_lev = GLP_MSG_OFF;
  parm.tm_lim = static_cast<int>(time_limit_seconds * 1000);
  const int rc = glp_intopt(p, &parm);
  const int status = glp_mip_status(p);
  if (rc == GLP_ENOPFS || rc == GLP_ENODFS || status == GLP_NOFEAS) {
    return absl::NotFoundError("milp: no configuration meets the budget");
  }
  if (status != GLP_OPT && status != GLP_FEAS) {
    if (rc == GLP_ETMLIM) return absl::DeadlineExceededError("milp: time limit, no solution");
    return absl::InternalError(absl::StrCat("milp: glp_intopt returned ", rc, ", status ", status));
  }
  BudgetMilpResult result;
  result.optimal = status == GLP_OPT;
  result.choice.assign(layers, 0);
  column = 0;
  for (int i = 0; i < layers; ++i) {
    double best = -1;
    for (int j : kept[i]) {
      const double x = glp_mip_col_val(p, ++column);
      if (x > best) {
        best = x;
        result.choice[i] = static_cast<uint16_t>(j);
      }
    }
  }
  result.values = Evaluate(table, result.choice).value();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace squeeze::search::bench
