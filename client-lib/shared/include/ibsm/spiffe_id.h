// Who is calling: read from the verified certificate of the TLS peer, never
// from request fields. Pure parsing; thread-compatible.
#ifndef IBSM_SPIFFE_ID_H_
#define IBSM_SPIFFE_ID_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ibsm {

struct Identity {
  std::string node;    // "CIV"
  std::string agency;  // "police"; empty for a node's own certificate

  bool is_agency() const { return !agency.empty(); }
  // "CIV/police" for an agency, "CIV" for a node.
  std::string id() const;
};

// Parses "spiffe://ibsm/<NODE>" or "spiffe://ibsm/<NODE>/<AGENCY>".
absl::StatusOr<Identity> ParseSpiffeId(absl::string_view uri);

// The identity of a call's peer is established by AuthenticateCall()
// (broker/services/authenticate.h) only: it checks the chain against current
// CRLs and binds the id to the issuing node's intermediate before parsing it
// here.

}  // namespace ibsm

#endif  // IBSM_SPIFFE_ID_H_
