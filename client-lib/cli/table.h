// The CLI's one aligned-table printer (`ibsm audit query`, `ibsm policy
// matrix`): columns separated by two spaces, each as wide as its widest
// cell (the header included), the last column unpadded so that lines carry
// no trailing blanks. Thread-compatible.
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

  // The header and every row, one line each, each ending in "\n".
  std::string Format() const;

 private:
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

}  // namespace ibsm::cli

#endif  // IBSM_CLIENT_LIB_CLI_TABLE_H_
