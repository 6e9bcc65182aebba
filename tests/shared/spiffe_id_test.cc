// Tests of client-lib/shared/include/ibsm/spiffe_id.h: SPIFFE id parsing and
// Identity::id().
#include "ibsm/spiffe_id.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace ibsm::broker {
namespace {

TEST_CASE("ParseSpiffeId accepts a node id", "[identity]") {
  absl::StatusOr<Identity> id = ParseSpiffeId("spiffe://ibsm/CIV");
  INFO(id.status().ToString());
  REQUIRE(id.ok());
  CHECK(id->node == "CIV");
  CHECK(id->agency.empty());
  CHECK_FALSE(id->is_agency());
  CHECK(id->id() == "CIV");
}

TEST_CASE("ParseSpiffeId accepts node/agency", "[identity]") {
  absl::StatusOr<Identity> id = ParseSpiffeId("spiffe://ibsm/CIV/police");
  INFO(id.status().ToString());
  REQUIRE(id.ok());
  CHECK(id->node == "CIV");
  CHECK(id->agency == "police");
  CHECK(id->is_agency());
  CHECK(id->id() == "CIV/police");
}

TEST_CASE("ParseSpiffeId accepts the allowed characters and lengths",
          "[identity]") {
  struct Case {
    std::string uri, node, agency;
  };
  const std::vector<Case> cases = {
      {"spiffe://ibsm/UNODC_1-X", "UNODC_1-X", ""},
      {"spiffe://ibsm/" + std::string(32, 'N'), std::string(32, 'N'), ""},
      {"spiffe://ibsm/MLI/Army.Intel_2-b", "MLI", "Army.Intel_2-b"},
      {"spiffe://ibsm/MLI/" + std::string(64, 'a'), "MLI",
       std::string(64, 'a')},
  };
  for (const Case& c : cases) {
    INFO("uri: " << c.uri);
    absl::StatusOr<Identity> id = ParseSpiffeId(c.uri);
    INFO(id.status().ToString());
    REQUIRE(id.ok());
    CHECK(id->node == c.node);
    CHECK(id->agency == c.agency);
  }
}

TEST_CASE(
    "ParseSpiffeId refuses other trust domains and malformed ids with "
    "UNAUTHENTICATED",
    "[identity]") {
  const std::vector<std::string> bad = {
      "",
      "spiffe://other/CIV",
      "spiffe://ibsmx/CIV",
      "spiffe://ibs/CIV",
      "SPIFFE://ibsm/CIV",
      "https://ibsm/CIV",
      "ibsm/CIV",
      "spiffe://ibsm",
      "spiffe://ibsm/",
      "spiffe://ibsm/CIV/police/extra",             // too many path parts
      "spiffe://ibsm/CIV/police/",                  // trailing slash: 3 parts
      "spiffe://ibsm/CIV/",                         // empty agency
      "spiffe://ibsm//police",                      // empty node
      "spiffe://ibsm/civ",                          // lowercase node
      "spiffe://ibsm/Civ/police",                   // mixed-case node
      "spiffe://ibsm/CI V",                         // space
      "spiffe://ibsm/CIV.X",                        // '.' not allowed in a node
      "spiffe://ibsm/CIV/pol ice",                  // space in agency
      "spiffe://ibsm/CIV/pol/ice",                  // slash in agency
      "spiffe://ibsm/CIV/pol@ice",                  // '@' in agency
      "spiffe://ibsm/" + std::string(33, 'N'),      // node too long
      "spiffe://ibsm/CIV/" + std::string(65, 'a'),  // agency too long
      std::string("spiffe://ibsm/CIV\0", 18),       // NUL
      std::string("spiffe://ibsm/CIV/po\0lice", 25),  // NUL in agency
      "spiffe://ibsm/CIV\n",
  };
  for (const std::string& uri : bad) {
    INFO("uri: " << uri);
    absl::StatusOr<Identity> id = ParseSpiffeId(uri);
    INFO(id.status().ToString());
    CHECK(id.status().code() == absl::StatusCode::kUnauthenticated);
  }
}

TEST_CASE("ParseSpiffeId error message quotes the offending identity",
          "[identity]") {
  absl::StatusOr<Identity> id = ParseSpiffeId("spiffe://other/CIV");
  REQUIRE_FALSE(id.ok());
  CHECK_THAT(std::string(id.status().message()),
             Catch::Contains("spiffe://other/CIV"));
  id = ParseSpiffeId("spiffe://ibsm/civ");
  REQUIRE_FALSE(id.ok());
  CHECK_THAT(std::string(id.status().message()),
             Catch::Contains("spiffe://ibsm/civ"));
}

TEST_CASE("Identity::id() joins node and agency with '/'", "[identity]") {
  Identity node{"MLI", ""};
  CHECK(node.id() == "MLI");
  CHECK_FALSE(node.is_agency());
  Identity agency{"MLI", "army"};
  CHECK(agency.id() == "MLI/army");
  CHECK(agency.is_agency());
}

}  // namespace
}  // namespace ibsm::broker
