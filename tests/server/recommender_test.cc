// Recommendations (server/recommender.h) without a server: answered from a stored front when one
// can answer, else from a search started for them, with every way that search can end.
#include "server/recommender.h"

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/notification.h"
#include "tests/server/job_fixtures.h"

namespace squeeze::server {
namespace {

using Catch::Matchers::Contains;
using testing_jobs::Jobs;
using testing_jobs::kDevice;
using testing_jobs::kTeam;
using testing_jobs::Script;
using testing_jobs::Stores;

// What a recommendation answered, once it has.
struct Answer {
  absl::Notification done;
  std::optional<absl::StatusOr<v1::RecommendResponse>> result;
};

// Asks, and returns at once: the answer comes when it comes.
std::shared_ptr<Answer> AskLater(Recommender& recommender, const v1::RecommendRequest& request,
                                 const std::string& team = kTeam) {
  auto answer = std::make_shared<Answer>();
  recommender.Recommend(team, request, [answer](absl::StatusOr<v1::RecommendResponse> result) {
    answer->result = std::move(result);
    answer->done.Notify();
  });
  return answer;
}

absl::StatusOr<v1::RecommendResponse> Ask(Recommender& recommender, const v1::RecommendRequest& request,
                                          const std::string& team = kTeam) {
  std::shared_ptr<Answer> answer = AskLater(recommender, request, team);
  REQUIRE(answer->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return *answer->result;
}

v1::RecommendRequest Request(const Stores& stores) {
  v1::RecommendRequest request;
  request.set_model_id(stores.Spec().model_id());
  request.set_device_id(kDevice);
  return request;
}

// The job core a server runs, with the recommender over it; `script` set up before.
struct Served {
  Served(Stores& stores, Script& script)
      : jobs(stores, script), recommender(stores.state(), stores.profiles(), jobs.jobs) {}
  Jobs jobs;
  Recommender recommender;
};

int64_t DeviceVersion(Stores& stores) {
  absl::StatusOr<device_profiles::Device> device = stores.profiles().GetDevice(kDevice);
  REQUIRE(device.ok());
  return device->version;
}

TEST_CASE("A first recommendation runs a search and answers from its front, the next from the stored front",
          "[recommender]") {
  Stores stores;
  Script script;
  script.device_version = DeviceVersion(stores);
  Served served(stores, script);
  Recommender& recommender = served.recommender;

  absl::StatusOr<v1::RecommendResponse> first = Ask(recommender, Request(stores));
  REQUIRE(first.ok());
  CHECK_FALSE(first->from_stored_front());
  CHECK(first->constraints_met());
  REQUIRE(first->recommendations_size() > 0);
  CHECK(first->recommendations(0).candidate().predicted_sqnr_db() == 25);
  CHECK(first->synthetic_calibration());
  CHECK(script.Ran() == 1);

  absl::StatusOr<v1::RecommendResponse> again = Ask(recommender, Request(stores));
  REQUIRE(again.ok());
  CHECK(again->from_stored_front());
  CHECK(again->search_id() == first->search_id());
  CHECK(script.Ran() == 1);

  // Looser limits are answered by the same front; stricter ones need their own search.
  v1::RecommendRequest looser = Request(stores);
  looser.mutable_constraints()->set_min_sqnr_db(20);
  absl::StatusOr<v1::RecommendResponse> from_stored = Ask(recommender, looser);
  REQUIRE(from_stored.ok());
  CHECK(from_stored->from_stored_front());
  v1::RecommendRequest stricter = Request(stores);
  stricter.mutable_constraints()->set_max_latency_ms(1);
  absl::StatusOr<v1::RecommendResponse> searched = Ask(recommender, stricter);
  REQUIRE(searched.ok());
  CHECK_FALSE(searched->from_stored_front());
  CHECK(script.Ran() == 2);
  // The candidate is 1.5 ms: none meets 1 ms, so the answer is the closest, saying what binds.
  CHECK_FALSE(searched->constraints_met());
  REQUIRE(searched->recommendations_size() == 1);
  CHECK(searched->recommendations(0).name() == "closest");
  CHECK_FALSE(searched->binding_constraint().empty());
}

TEST_CASE("A front of another device profile version answers no recommendation", "[recommender]") {
  Stores stores;
  Script script;
  script.device_version = DeviceVersion(stores) + 1;  // as if the profile changed since
  Served served(stores, script);
  Recommender& recommender = served.recommender;
  REQUIRE(Ask(recommender, Request(stores)).ok());
  absl::StatusOr<v1::RecommendResponse> again = Ask(recommender, Request(stores));
  REQUIRE(again.ok());
  CHECK_FALSE(again->from_stored_front());
}

TEST_CASE("A recommendation whose search fails is ABORTED with the reason, bad ones are refused before any search",
          "[recommender]") {
  Stores stores;
  Script script;
  script.ends = Script::Ends::kFails;
  Served served(stores, script);
  Recommender& recommender = served.recommender;

  absl::StatusOr<v1::RecommendResponse> failed = Ask(recommender, Request(stores));
  CHECK(failed.status().code() == absl::StatusCode::kAborted);
  CHECK_THAT(std::string(failed.status().message()), Contains("does not run on its calibration inputs"));
  CHECK(script.Ran() == 1);

  v1::RecommendRequest no_device = Request(stores);
  no_device.set_device_id("pixel-99");
  CHECK(Ask(recommender, no_device).status().code() == absl::StatusCode::kNotFound);
  CHECK(Ask(recommender, Request(stores), "beta").status().code() == absl::StatusCode::kNotFound);
  v1::RecommendRequest bad = Request(stores);
  bad.mutable_constraints()->set_max_latency_ms(-1);
  absl::StatusOr<v1::RecommendResponse> refused = Ask(recommender, bad);
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.status().message()), Contains("latency"));
  CHECK(script.Ran() == 1);
}

TEST_CASE("A recommendation waiting on its search when the server stops is UNAVAILABLE, saying to ask again",
          "[recommender]") {
  Stores stores;
  Script script;
  script.ends = Script::Ends::kWaitsForRelease;
  Served served(stores, script);
  Recommender& recommender = served.recommender;
  std::shared_ptr<Answer> answer = AskLater(recommender, Request(stores));
  while (!script.Running()) absl::SleepFor(absl::Milliseconds(2));
  CHECK_FALSE(answer->done.HasBeenNotified());
  served.jobs.jobs.Stop();
  REQUIRE(answer->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const absl::Status status = answer->result->status();
  CHECK(status.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(status.message()), Contains("ask again"));
}

TEST_CASE("A stored front answers only limits it kept every candidate for, and the same task floors", "[recommender]") {
  v1::Constraints stored, wanted;
  CHECK(NoStricter(stored, wanted));
  wanted.set_max_latency_ms(5);
  CHECK(NoStricter(stored, wanted));
  stored.set_max_latency_ms(10);
  CHECK(NoStricter(stored, wanted));
  stored.set_max_latency_ms(4);
  CHECK_FALSE(NoStricter(stored, wanted));
  wanted.set_max_latency_ms(0);  // no limit: a front cut at 4 ms misses the slower candidates
  CHECK_FALSE(NoStricter(stored, wanted));

  v1::Constraints floor_stored, floor_wanted;
  floor_stored.set_min_sqnr_db(20);
  floor_wanted.set_min_sqnr_db(15);
  CHECK_FALSE(NoStricter(floor_stored, floor_wanted));
  floor_wanted.set_min_sqnr_db(25);
  CHECK(NoStricter(floor_stored, floor_wanted));

  v1::Constraints task_stored, task_wanted;
  task_wanted.set_min_top1_agreement(0.99);
  CHECK_FALSE(NoStricter(task_stored, task_wanted));
  task_stored.set_min_top1_agreement(0.99);
  CHECK(NoStricter(task_stored, task_wanted));
  // A front cut to a device's app memory budget answers no later request.
  v1::Constraints budget;
  budget.set_peak_memory_within_app_budget(true);
  CHECK_FALSE(NoStricter(budget, v1::Constraints()));
}

}  // namespace
}  // namespace squeeze::server
