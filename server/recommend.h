// Picking the few candidates of a front worth showing first, and saying why.
#ifndef SQUEEZE_SERVER_RECOMMEND_H_
#define SQUEEZE_SERVER_RECOMMEND_H_

#include <vector>

#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

// Whether a candidate meets the limits (0 = no limit; a peak-memory limit of `app_budget_bytes`
// applies when the constraints ask for the app budget). The SQNR floor holds for the prediction
// and, where the candidate was exported and measured, for the measurement too; task floors
// (min_top1_agreement ...) hold for the measurement, on the outputs that count.
bool MeetsConstraints(const v1::Candidate& candidate, const v1::Constraints& constraints, int64_t app_budget_bytes);

// From the candidates that meet `constraints` (MeetsConstraints): the fastest (by measured
// latency among those measured on the device, when any were), the smallest, the most accurate, and
// the balanced knee (nearest the ideal point once latency, size and error are scaled to [0, 1]
// over those candidates). A candidate picked twice carries both names. Empty when none qualifies.
std::vector<v1::Recommendation> Recommend(const v1::DeviceFront& front, const v1::Constraints& constraints,
                                          int64_t app_budget_bytes);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_RECOMMEND_H_
