// Recommender: the answer to "what should I ship for this model on this device?" (DESIGN.md §4).
//
// A request is answered from the newest stored front that can answer it: a succeeded search of
// the same model by the current method (kSearchMethod), for the same device profile version,
// option space and output weights, whose limits are no stricter than the request's and whose
// picks meet them. Otherwise a search is started for it (through SearchJobs: cached, queued and
// quota-checked like any other) and the request is answered when that search ends. The picks
// themselves are server/recommend.h's.
//
// Thread safe. `done` is called once, on the caller's thread or a job thread.
#ifndef SQUEEZE_SERVER_RECOMMENDER_H_
#define SQUEEZE_SERVER_RECOMMENDER_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "device_profiles/profile_store.h"
#include "server/search_jobs.h"
#include "server/state_store.h"
#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

// A recommendation's search runs this long unless the request says otherwise.
inline constexpr double kRecommendTimeBudgetS = 30;

// Whether a front searched under `stored` limits holds every candidate a search under `wanted`
// would keep (0 is no limit; the SQNR floors compared as the default floor fills them), with the
// same task floors, which shape a front through its error check.
bool NoStricter(const v1::Constraints& stored, const v1::Constraints& wanted);

class Recommender {
 public:
  Recommender(StateStore& state, device_profiles::ProfileStore& profiles, SearchJobs& jobs)
      : state_(state), profiles_(profiles), jobs_(jobs) {}

  // NotFound for another team's or an unknown model or device, InvalidArgument for a bad request
  // (before any stored front answers), as SearchJobs::Start for the search it starts; Aborted when
  // that search fails or is cancelled, Unavailable when the server stops first.
  using Done = std::function<void(absl::StatusOr<v1::RecommendResponse>)>;
  void Recommend(const std::string& team, const v1::RecommendRequest& request, Done done);

 private:
  // The answer of the newest stored front that can give it; nullopt when none can.
  absl::StatusOr<std::optional<v1::RecommendResponse>> StoredAnswer(const std::string& team,
                                                                    const v1::RecommendRequest& request,
                                                                    const v1::Constraints& limits,
                                                                    const device_profiles::Device& device);
  // Starts a search for the request and answers when it ends.
  void SearchAndAnswer(const std::string& team, const v1::RecommendRequest& request, const v1::Constraints& limits,
                       const device_profiles::Device& device, Done done);

  StateStore& state_;
  device_profiles::ProfileStore& profiles_;
  SearchJobs& jobs_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_RECOMMENDER_H_
