#include "ibsm/spiffe_id.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ibsm {
namespace {

constexpr absl::string_view kPrefix = "spiffe://ibsm/";

bool ValidNode(absl::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-')) {
      return false;
    }
  }
  return true;
}

bool ValidAgency(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Identity::id() const {
  return agency.empty() ? node : absl::StrCat(node, "/", agency);
}

absl::StatusOr<Identity> ParseSpiffeId(absl::string_view uri) {
  if (!absl::StartsWith(uri, kPrefix)) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate identity '", uri,
                     "' is not in the spiffe://ibsm/ "
                     "trust domain"));
  }
  std::vector<absl::string_view> parts =
      absl::StrSplit(uri.substr(kPrefix.size()), '/');
  if (parts.empty() || parts.size() > 2 || !ValidNode(parts[0]) ||
      (parts.size() == 2 && !ValidAgency(parts[1]))) {
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate identity '", uri,
        "' is not spiffe://ibsm/<NODE> or spiffe://ibsm/<NODE>/<AGENCY>"));
  }
  Identity id;
  id.node = std::string(parts[0]);
  if (parts.size() == 2) id.agency = std::string(parts[1]);
  return id;
}

}  // namespace ibsm
