// Small error-propagation helpers for absl::Status, shared by the broker and
// the client library. Abseil 20220623 ships no status_macros.h, hence these.
#ifndef IBSM_STATUS_MACROS_H_
#define IBSM_STATUS_MACROS_H_

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define IBSM_CONCAT_INNER_(a, b) a##b
#define IBSM_CONCAT_(a, b) IBSM_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define IBSM_RETURN_IF_ERROR(expr)                                \
  do {                                                            \
    if (::absl::Status ibsm_status_ = (expr); !ibsm_status_.ok()) \
      return ibsm_status_;                                        \
  } while (false)

// `IBSM_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value of an
// absl::StatusOr<T> or returns its status from the enclosing function.
#define IBSM_ASSIGN_OR_RETURN(lhs, expr) \
  IBSM_ASSIGN_OR_RETURN_IMPL_(IBSM_CONCAT_(ibsm_statusor_, __LINE__), lhs, expr)
#define IBSM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()

// Crashes loudly on states that cannot happen unless the program is wrong.
// Never use it for input from the network, clients or files.
#define IBSM_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: IBSM_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                   \
      std::abort();                                                    \
    }                                                                  \
  } while (false)

#endif  // IBSM_STATUS_MACROS_H_
