// The one place each squeeze.v1 message is converted to and from its domain type. Pure functions,
// tested without a network.
#ifndef SQUEEZE_SERVER_PROTO_CONVERSION_H_
#define SQUEEZE_SERVER_PROTO_CONVERSION_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "device_profiles/device.h"
#include "device_profiles/profile_file.h"
#include "model/analysis.h"
#include "model/channel_pruning.h"
#include "model/export.h"
#include "model/output_weights.h"
#include "runtime/sensitivity.h"
#include "runtime/verify.h"
#include "search/engine/front.h"
#include "search/engine/search_spec.h"
#include "search/problem/problem.h"
#include "server/export_request.h"
#include "server/state_store.h"
#include "squeeze/v1/device.pb.h"
#include "squeeze/v1/export.pb.h"
#include "squeeze/v1/model.pb.h"
#include "squeeze/v1/search.pb.h"
#include "squeeze/v1/sensitivity.pb.h"
#include "squeeze/v1/server.pb.h"

namespace squeeze::server {

// Devices, capabilities and profiles: the mapping lives beside the profile file format.
using device_profiles::FromProto;
using device_profiles::ToProto;

// Models.
v1::ModelAnalysis ToProto(const model::Analysis& analysis);
// Each layer's channel_pruning and its note, from model::AnalyzeChannelPruning (one per layer).
void SetChannelPruning(const std::vector<model::ChannelPruningReach>& reach, v1::ModelAnalysis* analysis);
// The graph's outputs (model::GraphOutputs), and back.
void SetOutputs(const std::vector<model::GraphOutput>& outputs, v1::ModelAnalysis* analysis);
std::vector<model::GraphOutput> OutputsOf(const v1::ModelAnalysis& analysis);
v1::Layer ToProto(const model::Layer& layer);
// The stored model; DataLoss when its stored analysis cannot be read back. Without layers, the
// analysis keeps its totals only (for listings).
absl::StatusOr<v1::Model> ToProto(const ModelRecord& record, bool with_layers);

// A stored search job as answers carry it: its spec without the calibration samples' bytes
// (calibration_samples says how many there were), its state, progress and stamps, its fronts.
v1::SearchJob ToProto(const JobRecord& record);

// A search's limits for the engine on `device` (its app budget where the spec asks for it).
search::Constraints FromProto(const v1::Constraints& constraints, const device_profiles::Device& device);

// Sensitivities.
// API keys. A key's secret never passes through here: only the stored record.
v1::ApiKey ToProto(const ApiKeyRecord& key);
// InvalidArgument for a value that names no role; UNSPECIFIED is a member.
absl::StatusOr<Role> FromProto(v1::KeyRole role);

v1::SensitivityReport ToProto(const runtime::SensitivityReport& report);
runtime::SensitivityReport FromProto(const v1::SensitivityReport& report);

// Search results. A candidate's layers are given only `with_layers` (progress snapshots and
// listings leave them out).
v1::Candidate ToProto(const search::Problem& problem, const search::Candidate& candidate, bool with_layers);
v1::DeviceFront ToProto(const search::Problem& problem, const search::Front& front, const std::string& device_id,
                        int64_t device_version, bool with_layers);

// Exports. The plan of a stored candidate, one entry per layer of `analysis`: InvalidArgument when
// the candidate's layers are missing or do not name the analysis' layers in order.
absl::StatusOr<std::vector<model::LayerPlan>> ExportPlanFromProto(const v1::Candidate& candidate,
                                                                  const model::Analysis& analysis);
v1::ExportReport ToProto(const model::ExportReport& report, const runtime::Verification& verification,
                         runtime::RangeMethod range_method);
// An export request as ExportJobs takes it: InvalidArgument naming the field as
// ValidateExportRequest (server/search_spec.h) says. No candidate and no recommendation is
// candidate 0; UNSPECIFIED range method is percentile.
absl::StatusOr<ExportRequest> FromProto(const v1::ExportRequest& request);
// The figures a front's candidate shows once exported.
v1::MeasuredFigures MeasuredFiguresOf(const v1::ExportReport& report);

// One output's measured fidelity.
v1::OutputFidelity ToProto(const runtime::OutputFidelity& output);

}  // namespace squeeze::server

#endif  // SQUEEZE_SERVER_PROTO_CONVERSION_H_
