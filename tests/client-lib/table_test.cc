// The CLI's table printer (client-lib/cli/table.h): alignment, and the
// wrapping of a long last cell to a terminal's width.
#include "table.h"

#include <catch2/catch.hpp>
#include <string>

namespace ibsm::cli {
namespace {

TEST_CASE("table: columns as wide as their widest cell, last unpadded") {
  Table table({"N", "WHO", "WHAT"}, {Table::Align::kRight});
  table.AddRow({"7", "CIV/police", "a b"});
  table.AddRow({"10", "MLI", "c"});
  CHECK(table.Format() ==
        " N  WHO         WHAT\n"
        " 7  CIV/police  a b\n"
        "10  MLI         c\n");
}

TEST_CASE(
    "table: a long last cell is wrapped at spaces under its column to fit "
    "the width, and nothing is lost; width 0 never wraps") {
  Table table({"RULE", "AGENCIES"});
  const std::string agencies =
      "CIV/police CIV/customs MLI/customs MLI/police NER/police "
      "INTERPOL/nccu UNODC/aircop";
  table.AddRow({"border", agencies});
  CHECK(table.Format() == "RULE    AGENCIES\nborder  " + agencies + "\n");
  const std::string wrapped = table.Format(40);
  CHECK(wrapped ==
        "RULE    AGENCIES\n"
        "border  CIV/police CIV/customs\n"
        "        MLI/customs MLI/police\n"
        "        NER/police INTERPOL/nccu\n"
        "        UNODC/aircop\n");
  for (size_t at = 0, end; (end = wrapped.find('\n', at)) != std::string::npos;
       at = end + 1) {
    CHECK(end - at <= 40);
  }
}

TEST_CASE(
    "table: when the other columns leave almost no room, the last one still "
    "gets a readable width; a word longer than the room stays whole") {
  Table table({"A", "B"});
  table.AddRow({std::string(30, 'x'), "one two three four five six seven"});
  table.AddRow({"y", "averyveryverylongwordthatcannotbreakanywhere x"});
  const std::string out = table.Format(20);
  // 32 columns of indent leave no room in 20: the last column gets 24.
  CHECK(out.find(std::string(32, ' ') + "six seven\n") != std::string::npos);
  CHECK(out.find("one two three four five\n") != std::string::npos);
  CHECK(out.find("averyveryverylongwordthatcannotbreakanywhere\n") !=
        std::string::npos);
}

}  // namespace
}  // namespace ibsm::cli
