// The rules an alert must satisfy before a node accepts it. Pure code, no I/O,
// thread-compatible. The broker enforces them on every publish; the client
// library applies the same function so that mistakes are caught before the
// network round trip.
#ifndef IBSM_ALERT_RULES_H_
#define IBSM_ALERT_RULES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ibsm::v1 {
class Alert;
}

namespace ibsm {

inline constexpr size_t kMaxAlertIdLength = 128;
inline constexpr size_t kDefaultMaxAlertBytes = 1 << 20;

// The classification scheme of the IBSM federation, lowest first, used until
// a sharing policy defines another.
const std::vector<std::string>& DefaultClassificationLevels();

struct AlertLimits {
  size_t max_alert_bytes = kDefaultMaxAlertBytes;
  // Known classification levels; the alert's must be one of them.
  const std::vector<std::string>* classification_levels =
      &DefaultClassificationLevels();
};

// OK, or INVALID_ARGUMENT naming the field and what to change.
absl::Status ValidateAlertId(absl::string_view id);
absl::Status ValidateAlert(const v1::Alert& alert, const AlertLimits& limits);

}  // namespace ibsm

#endif  // IBSM_ALERT_RULES_H_
