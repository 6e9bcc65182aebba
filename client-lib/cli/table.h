// The CLI's one aligned-table printer (`ibsm audit query`, `ibsm policy
// matrix`): columns separated by two spaces, each as wide as its widest
// cell (the header included), the last column unpadded so that lines carry
// no trailing blanks. Given a width (a terminal's), a last cell that would
// pass it is wrapped at spaces onto continuation lines that start under the
// last column, so that a table fits the terminal and loses nothing; piped
// output (width 0) is never wrapped, for scripts. Thread-compatible.
//
//   Table table({"INDEX", "ACTOR", "REASON"},
//               {Table::Align::kRight, Table::Align::kLeft});
//   table.AddRow({"7", "CIV/police", "allowed by rule r1"});
//   io.out << table.Format();
#ifndef IBSM_CLIENT_LIB_CLI_TABLE_H_
#define IBSM_CLIENT_LIB_CLI_TABLE_H_

#include <cstddef>
#include <string>
#include <vector>

namespace ibsm::cli {

class Table {
 public:
  enum class Align { kLeft, kRight };

  // `align` gives the alignment of the first columns; the others are
  // left-aligned. The last column is never padded.
  explicit Table(std::vector<std::string> header,
                 std::vector<Align> align = {});

  // A row has as many cells as the header.
  void AddRow(std::vector<std::string> row);

  // The header and every row, one line each, each ending in "\n"; with
  // `max_width` > 0, long last cells wrapped as above.
  std::string Format(size_t max_width = 0) const;

 private:
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

// The width of the terminal standard output is, 0 when it is not one
// (a pipe or file: never wrapped). On a terminal, $COLUMNS, when set to a
// number, wins over what the terminal reports.
size_t TerminalWidth();

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_TABLE_H_
