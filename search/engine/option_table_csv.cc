#include "search/engine/option_table_csv.h"

#include <cstdio>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace squeeze::search {
namespace {

constexpr absl::string_view kHeader = "layer,option,latency,bytes,error,activation_bytes";

std::string Number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  return buffer;
}

bool Plain(absl::string_view text) { return text.find_first_of(",\r\n") == absl::string_view::npos; }

}  // namespace

absl::StatusOr<OptionTable> ParseOptionTableCsv(absl::string_view text) {
  OptionTable table;
  bool header = false, fixed = false;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("option table line ", line_number, ": ", why));
    };
    if (!header) {
      if (line != kHeader) return fail(absl::StrCat("expected the header '", kHeader, "'"));
      header = true;
      continue;
    }
    std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    if (fields.size() != 6) return fail(absl::StrCat(fields.size(), " fields; 6 expected"));
    double numbers[4];
    for (int k = 0; k < 4; ++k) {
      absl::string_view field = absl::StripAsciiWhitespace(fields[2 + k]);
      if (field.empty() && fields[0] == kFixedCostRow) {
        numbers[k] = 0;
      } else if (!absl::SimpleAtod(field, &numbers[k])) {
        return fail(absl::StrCat("'", field, "' is not a number"));
      }
    }
    if (fields[0] == kFixedCostRow) {
      if (fixed) return fail("a second __fixed__ row");
      if (numbers[2] != 0) return fail("the __fixed__ row has no error");
      table.fixed = FixedCost{numbers[0], numbers[1], numbers[3]};
      fixed = true;
      continue;
    }
    if (table.layers.empty() || table.layers.back().name != fields[0]) {
      for (const Layer& layer : table.layers) {
        if (layer.name == fields[0]) {
          return fail(absl::StrCat("rows of layer '", fields[0], "' are not contiguous"));
        }
      }
      table.layers.push_back(Layer{std::string(fields[0]), {}});
    }
    table.layers.back().options.push_back(
        LayerOption{std::string(fields[1]), numbers[0], numbers[1], numbers[2], numbers[3]});
  }
  if (!header) return absl::InvalidArgumentError("option table: no header");
  if (absl::Status s = ValidateOptionTable(table); !s.ok()) return s;
  return table;
}

absl::StatusOr<std::string> FormatOptionTableCsv(const OptionTable& table) {
  if (absl::Status s = ValidateOptionTable(table); !s.ok()) return s;
  std::string out = absl::StrCat(kHeader, "\n");
  absl::StrAppend(&out, kFixedCostRow, ",,", Number(table.fixed.latency), ",", Number(table.fixed.bytes), ",0,",
                  Number(table.fixed.activation_bytes), "\n");
  for (const Layer& layer : table.layers) {
    if (!Plain(layer.name) || layer.name.empty() || layer.name == kFixedCostRow) {
      return absl::InvalidArgumentError(absl::StrCat("option table: layer name '", layer.name, "' cannot be written"));
    }
    for (const LayerOption& o : layer.options) {
      if (!Plain(o.label)) {
        return absl::InvalidArgumentError(
            absl::StrCat("option table: label '", o.label, "' contains a comma or line break"));
      }
      absl::StrAppend(&out, layer.name, ",", o.label, ",", Number(o.latency), ",", Number(o.bytes), ",",
                      Number(o.error), ",", Number(o.activation_bytes), "\n");
    }
  }
  return out;
}

}  // namespace squeeze::search
