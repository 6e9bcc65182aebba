#include "table.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
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

namespace {

// The narrowest a wrapped last column gets, however wide the others are.
constexpr size_t kMinLastColumn = 24;

// `text` in lines of at most `width` characters, broken at spaces (a word
// longer than `width` stays whole on its own line).
std::vector<std::string> WrapAtSpaces(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  std::string line;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
    start = end + 1;
  }
  lines.push_back(std::move(line));
  return lines;
}

}  // namespace

size_t TerminalWidth() {
  if (!isatty(STDOUT_FILENO)) return 0;
  if (const char* columns = std::getenv("COLUMNS")) {
    size_t n = 0;
    if (absl::SimpleAtoi(columns, &n)) return n;
  }
  winsize size{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) return size.ws_col;
  return 0;
}

std::string Table::Format(size_t max_width) const {
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
        size_t indent = 0;
        for (size_t k = 0; k + 1 < row.size(); ++k) indent += width[k] + 2;
        if (max_width == 0 || indent + row[i].size() <= max_width) {
          absl::StrAppend(&out, row[i]);
          continue;
        }
        const size_t room =
            std::max(kMinLastColumn,
                     max_width > indent ? max_width - indent : size_t{0});
        const std::vector<std::string> lines = WrapAtSpaces(row[i], room);
        for (size_t l = 0; l < lines.size(); ++l) {
          if (l > 0) absl::StrAppend(&out, "\n", std::string(indent, ' '));
          absl::StrAppend(&out, lines[l]);
        }
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
