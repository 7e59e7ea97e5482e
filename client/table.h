// Plain-text tables for the terminal: a header and aligned columns.
#ifndef SQUEEZE_CLIENT_TABLE_H_
#define SQUEEZE_CLIENT_TABLE_H_

#include <ostream>
#include <string>
#include <vector>

namespace squeeze::client {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  // Right-aligns the given columns (0-based), for numbers.
  Table& AlignRight(std::vector<size_t> columns) {
    right_ = std::move(columns);
    return *this;
  }
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<size_t> right_;
};

// Human-readable quantities: 1.5 GiB, 68.3 GB/s, 12.4 Gops/s.
std::string FormatBytes(double bytes);
std::string FormatRate(double value, const char* unit);
// 42.0s, 3m 12s, 2h 5m 0s, 1d 3h 0m.
std::string FormatDuration(double seconds);

}  // namespace squeeze::client

#endif  // SQUEEZE_CLIENT_TABLE_H_
