// The search request as the server takes it: the spec's defaults and its validation, the
// calibration samples' structure, the option grid and objectives it names, and the stored input
// shapes. Pure functions of the request (no store, no network), shared by search and export and
// fuzzed on their own (fuzz/requests_fuzzer.cc).
#ifndef SQUEEZE_SERVER_SEARCH_SPEC_H_
#define SQUEEZE_SERVER_SEARCH_SPEC_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "search/engine/objective.h"
#include "search/problem/error_calibration.h"
#include "search/problem/option_grid.h"
#include "squeeze/v1/export.pb.h"
#include "squeeze/v1/model.pb.h"
#include "squeeze/v1/search.pb.h"

namespace squeeze::server {

// Searches keep candidates of at least this output SQNR unless their spec names a floor.
inline constexpr double kDefaultMinSqnrDb = 10;
// The most a spec may ask for: a front this large is already more than anyone reads, and every
// candidate is stored with its per-layer plan; a budget past an hour holds a worker for good.
inline constexpr int kMaxCandidates = 1000;
inline constexpr double kMaxTimeBudgetS = 3600;

// Input shapes by name. InvalidArgument for more than kMaxInputShapes, an empty, repeated or
// over-long name, one holding ';' or a control character (the stored form could not be read
// back), no dimensions or more than kMaxInputRank, or a dimension outside [1, 2^31-1].
inline constexpr int kMaxInputShapes = 256;
inline constexpr size_t kMaxInputNameLength = 256;
inline constexpr int kMaxInputRank = 64;
absl::StatusOr<std::map<std::string, std::vector<int64_t>>> InputShapesOf(
    const google::protobuf::RepeatedPtrField<v1::InputShape>& shapes);
// "a=1,3,224,224;b=1,10": sorted by name, the key uploads are de-duplicated on.
std::string CanonicalInputShapes(const std::map<std::string, std::vector<int64_t>>& shapes);
// "x=1,3,48,192;y=..." as a model record stores its input shapes (CanonicalInputShapes' inverse
// for every map InputShapesOf returns). DataLoss when it does not parse.
absl::StatusOr<std::map<std::string, std::vector<int64_t>>> ParseShapes(const std::string& canonical);

// The spec with its defaults filled in, so equal searches have equal keys.
v1::SearchSpec NormalizedSpec(v1::SearchSpec spec, int max_candidates, double time_budget);

// InvalidArgument naming the field for limits no search can hold: a negative, NaN or infinite
// limit, a task floor outside [0, 1].
absl::Status ValidateConstraints(const v1::Constraints& constraints);

// InvalidArgument for output weights that are negative, not finite, unnamed or all 0. Whether the
// model has such outputs is checked against it (model::ResolveOutputWeights).
absl::Status ValidateOutputWeightValues(const google::protobuf::Map<std::string, double>& weights);

// InvalidArgument naming the field for a recommendation request no answer can hold to: no model
// or device, limits as ValidateConstraints, output weights as above, a time budget outside
// [0, kMaxTimeBudgetS], an option space GridOf refuses. Checked before any stored front answers.
absl::Status ValidateRecommendRequest(const v1::RecommendRequest& request);

// An upload's metadata message: InvalidArgument for an empty name or one over kMaxModelNameLength
// bytes, input shapes InputShapesOf refuses, or a negative declared size;
// ResourceExhausted, with the flag to raise, for a declared
// size over `max_model_bytes`.
inline constexpr size_t kMaxModelNameLength = 200;
absl::Status ValidateUploadMetadata(const v1::UploadMetadata& metadata, int64_t max_model_bytes);

// An export request before anything is looked up: InvalidArgument naming the field for a missing
// job or device, a negative candidate index, an empty recommendation name or an unknown range
// method.
absl::Status ValidateExportRequest(const v1::ExportRequest& request);

// InvalidArgument naming the field for a spec no search can run: devices, objectives, strategy,
// limits (NaN and infinities included), budget, candidates, option grid, calibration bytes.
absl::Status ValidateSpec(const v1::SearchSpec& spec);

// The calibration samples' structure, checked before a job is queued: every tensor a TensorProto
// whose data fills its dims, named inputs neither repeated nor varying between samples, dims as
// the model was uploaded with (`shapes`).
absl::Status ValidateCalibration(const v1::SearchSpec& spec, const std::map<std::string, std::vector<int64_t>>& shapes);

// The option grid a spec's option space names (the default grid where it names nothing).
absl::StatusOr<search::OptionGrid> GridOf(const v1::OptionSpace& space);

// The spec's output weights as the runtime takes them (model/output_weights.h), ordered by name.
std::map<std::string, double> OutputWeightsOf(const v1::SearchSpec& spec);

// The constraints' task-metric floors (those above 0), named as runtime/output_fidelity.h names
// the metrics.
std::vector<search::TaskFloor> TaskFloorsOf(const v1::Constraints& constraints);

// A spec's objective number as the engine's objective.
absl::StatusOr<search::Objective> ObjectiveOf(int objective);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_SEARCH_SPEC_H_
