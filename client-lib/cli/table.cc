#include "table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ibsm/status_macros.h"

namespace ibsm::cli {

Table::Table(std::vector<std::string> header, std::vector<Align> align)
    : align_(std::move(align)) {
  align_.resize(header.size(), Align::kLeft);
  rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> row) {
  IBSM_CHECK(row.size() == rows_[0].size());  // a caller's bug otherwise
  rows_.push_back(std::move(row));
}

std::string Table::Format() const {
  std::vector<size_t> width(rows_[0].size(), 0);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        absl::StrAppend(&out, row[i]);
        continue;
      }
      const std::string pad(width[i] - row[i].size(), ' ');
      if (align_[i] == Align::kRight) {
        absl::StrAppend(&out, pad, row[i], "  ");
      } else {
        absl::StrAppend(&out, row[i], pad, "  ");
      }
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace ibsm::cli
