// The canonical bytes of an alert: the one byte string that stands for an
// alert's content. The broker hashes it for idempotency (the dedup content
// SHA-256, docs/storage.md). Originator signatures are made over the signing
// bytes instead (ibsm/alert_signature.h), which also cover created_at and
// are built from DeterministicAlertBytes below. Pure code, protobuf only;
// thread-safe (no state).
//
// These bytes are a format: changing what goes into them changes the content
// hash of every alert stored from then on, so a retry of an alert stored
// before the change would be refused as changed content (ALREADY_EXISTS).
// Change them only together with a migration of the stored hashes.
#ifndef IBSM_CANONICAL_ALERT_H_
#define IBSM_CANONICAL_ALERT_H_

#include <string>

namespace ibsm::v1 {
class Alert;
}

namespace ibsm {

// Protobuf's deterministic serialization of `alert` without three fields:
//   - `created_at` (7): a client that rebuilds an alert to retry it stamps a
//     new time, so the time is not content;
//   - `signature` (21) and `signing_chain` (22): a retry that signs again
//     (ECDSA signatures differ each time) is the same alert.
// Every other field is serialized as it is, including `originator` (the
// broker sets it before hashing). Deterministic means: known fields in
// field-number order, proto3 scalars that hold their default value omitted,
// map entries (`attributes`) sorted by key, whatever order they were
// inserted in, and unknown fields (from a newer schema) after the known
// ones, as parsed.
//
// Equal alerts give equal bytes with this protobuf build; the bytes parse
// back into the alert without the three fields left out. Protobuf does not
// promise the deterministic form across its versions or languages, so another
// implementation has to reproduce the rules above rather than rely on its
// own serializer.
std::string CanonicalAlertBytes(const v1::Alert& alert);

// Protobuf's deterministic serialization of `alert` as it is, every field
// included, by the rules above: what CanonicalAlertBytes and the signing
// bytes (ibsm/alert_signature.h) are made of.
std::string DeterministicAlertBytes(const v1::Alert& alert);
// The same bytes, appended to `out` (the signing bytes follow a prefix).
void AppendDeterministicAlertBytes(const v1::Alert& alert, std::string* out);

}  // namespace ibsm

#endif  // IBSM_CANONICAL_ALERT_H_
