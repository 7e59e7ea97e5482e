// A plain-text form of an OptionTable, so tables can be saved, diffed, loaded by the bench and
// produced by other tools (e.g. the real PP-OCRv4 det table from search/problem).
//
// Format (CSV, no quoting):
//   # comment lines and blank lines are ignored anywhere
//   layer,option,latency,bytes,error,activation_bytes      <- required header, first
//   __fixed__,,120.5,40960,0,262144                         <- optional, at most once: FixedCost
//   conv1,w8a8 p0.25 unstructured,12.5,1024,1.3e-05,4096    <- one row per option
// Rows of a layer are contiguous; layers come in order of first appearance and options in row
// order (their index is the option index in a Choice). Names and labels must not contain commas
// or line breaks. Numbers are anything strtod reads; the writer prints them exactly (%.17g).
// It holds the additive part of a table only: activation boundaries, narrowings, region savings and the option
// fields that serve them (integer_activations, boundary_latency, fused_latency, removed_channels,
// the credits, narrowable_bytes) are not written, and a parsed table has none.
#ifndef SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_CSV_H_
#define SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_CSV_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "search/engine/option_table.h"

namespace squeeze::search {

inline constexpr absl::string_view kFixedCostRow = "__fixed__";

// The table in `text`, validated. InvalidArgument naming the line of the first problem.
absl::StatusOr<OptionTable> ParseOptionTableCsv(absl::string_view text);

// InvalidArgument when a name or label contains a comma or line break, or the table is invalid.
absl::StatusOr<std::string> FormatOptionTableCsv(const OptionTable& table);

}  // namespace squeeze::search

#endif  // SQUEEZE_SEARCH_ENGINE_OPTION_TABLE_CSV_H_
