#include "server/fair_queue.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/time/clock.h"

namespace squeeze::server {

void FairQueue::Submit(Job job) {
  {
    absl::MutexLock lock(&mutex_);
    queued_.push_back(std::move(job));
    DispatchLocked();
  }
  Changed();
}

bool FairQueue::Remove(const std::string& id) {
  {
    absl::MutexLock lock(&mutex_);
    auto it = std::find_if(queued_.begin(), queued_.end(), [&id](const Job& j) { return j.id == id; });
    if (it == queued_.end()) return false;
    queued_.erase(it);
  }
  Changed();
  return true;
}

int FairQueue::PickLocked(const std::vector<Running>& running) const {
  if (queued_.empty() || static_cast<int>(running.size()) >= slots_) return -1;
  std::map<std::string, int> per_team;
  int64_t memory = 0;
  for (const Running& r : running) {
    ++per_team[r.team];
    memory += r.memory_bytes;
  }
  int best = -1;
  for (int i = 0; i < static_cast<int>(queued_.size()); ++i) {
    const Job& job = queued_[i];
    // A team's own searches start in order: only its oldest queued one is a candidate.
    bool older_of_team = false;
    for (int k = 0; k < i && !older_of_team; ++k) older_of_team = queued_[k].team == job.team;
    if (older_of_team) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    // Fewest running first; between equals, the team that started a search least recently.
    const std::string& other = queued_[best].team;
    if (per_team[job.team] != per_team[other]) {
      if (per_team[job.team] < per_team[other]) best = i;
    } else if (LastStartLocked(job.team) < LastStartLocked(other)) {
      best = i;
    }
  }
  if (best < 0) return -1;
  const int64_t need = queued_[best].memory_bytes;
  if (memory_budget_ > 0 && !running.empty() && memory + need > memory_budget_) return -1;
  return best;
}

int64_t FairQueue::LastStartLocked(const std::string& team) const {
  auto it = last_start_.find(team);
  return it == last_start_.end() ? 0 : it->second;
}

bool FairQueue::DispatchLocked() {
  bool started = false;
  for (int next = PickLocked(running_); next >= 0; next = PickLocked(running_)) {
    Job job = std::move(queued_[next]);
    queued_.erase(queued_.begin() + next);
    running_.push_back(Running{job.id, job.team, job.memory_bytes, clock_.Now() + job.expected});
    last_start_[job.team] = ++starts_;
    workers_.Submit([this, id = job.id, run = std::move(job.run)] {
      run();
      Finished(id);
    });
    started = true;
  }
  return started;
}

void FairQueue::Finished(const std::string& id) {
  {
    absl::MutexLock lock(&mutex_);
    running_.erase(std::remove_if(running_.begin(), running_.end(), [&id](const Running& r) { return r.id == id; }),
                   running_.end());
    DispatchLocked();
  }
  Changed();
}

std::optional<FairQueue::Place> FairQueue::PlaceOf(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto it = std::find_if(queued_.begin(), queued_.end(), [&id](const Job& j) { return j.id == id; });
  if (it == queued_.end()) return std::nullopt;
  // Play the rule forward: the earliest expected end frees a slot, and the pick then starts.
  const absl::Time now = clock_.Now();
  std::vector<Running> running = running_;
  std::vector<Job> saved = queued_;
  const std::map<std::string, int64_t> saved_starts = last_start_;
  const int64_t saved_count = starts_;
  Place place;
  absl::Time clock = now;
  for (int position = 1; !queued_.empty(); ++position) {
    int next = PickLocked(running);
    while (next < 0 && !running.empty()) {
      auto first = std::min_element(running.begin(), running.end(),
                                    [](const Running& a, const Running& b) { return a.expected_end < b.expected_end; });
      clock = std::max(clock, first->expected_end);
      running.erase(first);
      next = PickLocked(running);
    }
    if (next < 0) break;
    const Job& job = queued_[next];
    if (job.id == id) {
      place.position = position;
      place.expected_wait = clock - now;
      break;
    }
    running.push_back(Running{job.id, job.team, job.memory_bytes, clock + job.expected});
    last_start_[job.team] = ++starts_;
    queued_.erase(queued_.begin() + next);
  }
  queued_ = std::move(saved);
  last_start_ = saved_starts;
  starts_ = saved_count;
  return place;
}

FairQueue::Counts FairQueue::counts() {
  absl::MutexLock lock(&mutex_);
  Counts c;
  c.running = static_cast<int>(running_.size());
  c.queued = static_cast<int>(queued_.size());
  for (const Running& r : running_) c.running_memory_bytes += r.memory_bytes;
  return c;
}

void FairQueue::set_on_change(std::function<void()> on_change) {
  absl::MutexLock lock(&mutex_);
  on_change_ = std::move(on_change);
}

void FairQueue::Changed() {
  std::function<void()> on_change;
  {
    absl::MutexLock lock(&mutex_);
    on_change = on_change_;
  }
  if (on_change) on_change();
}

}  // namespace squeeze::server
