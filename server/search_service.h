// squeeze.v1.SearchService: search jobs over gRPC. Handlers validate and hand over to SearchJobs;
// nothing long runs on a gRPC thread.
#ifndef SQUEEZE_SERVER_SEARCH_SERVICE_H_
#define SQUEEZE_SERVER_SEARCH_SERVICE_H_

#include "server/export_jobs.h"
#include "server/recommender.h"
#include "server/search_jobs.h"
#include "squeeze/v1/search.grpc.pb.h"

namespace squeeze::server {

class SearchService final : public v1::SearchService::CallbackService {
 public:
  // `exports`, when given, adds measured figures to exported candidates in GetSearch.
  SearchService(SearchJobs& jobs, Recommender& recommender, ExportJobs* exports = nullptr)
      : jobs_(jobs), recommender_(recommender), exports_(exports) {}

  grpc::ServerUnaryReactor* StartSearch(grpc::CallbackServerContext* context, const v1::SearchSpec* request,
                                        v1::SearchJob* response) override;
  grpc::ServerWriteReactor<v1::SearchJob>* WatchSearch(grpc::CallbackServerContext* context,
                                                       const v1::WatchSearchRequest* request) override;
  grpc::ServerUnaryReactor* GetSearch(grpc::CallbackServerContext* context, const v1::GetSearchRequest* request,
                                      v1::SearchJob* response) override;
  grpc::ServerUnaryReactor* ListSearches(grpc::CallbackServerContext* context, const v1::ListSearchesRequest* request,
                                         v1::ListSearchesResponse* response) override;
  grpc::ServerUnaryReactor* CancelSearch(grpc::CallbackServerContext* context, const v1::CancelSearchRequest* request,
                                         v1::SearchJob* response) override;
  grpc::ServerUnaryReactor* Recommend(grpc::CallbackServerContext* context, const v1::RecommendRequest* request,
                                      v1::RecommendResponse* response) override;

 private:
  class WatchReactor;
  SearchJobs& jobs_;
  Recommender& recommender_;
  ExportJobs* exports_;
};

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_SEARCH_SERVICE_H_
