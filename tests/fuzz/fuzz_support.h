// What the libFuzzer targets of tests/fuzz share: the fixed fuzzing PKI of
// tests/fuzz/pki (made once with certs/make-dev-pki.sh; see README.md), the
// one time at which its chains are verified (so that a corpus of signed
// inputs stays valid after the certificates expire), and the framing that
// splits one fuzz input into several messages. Used by the fuzz targets and
// by make_seeds, which writes the seed corpora with the same keys.
//
// Everything here is created once per process and then only read: safe for
// concurrent use.
#ifndef IBSM_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define IBSM_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ibsm/checkpoint.h"
#include "ibsm/crypto.h"

namespace ibsm::fuzz {

// The node and agency of the fixed PKI the seeds are signed by.
inline constexpr char kNode[] = "CIV";
inline constexpr char kOrigin[] = "ibsm/CIV";
inline constexpr char kPeerNode[] = "MLI";
inline constexpr char kAgency[] = "CIV/police";
inline constexpr char kPeerAgency[] = "MLI/customs";
// Inside the validity of every certificate of tests/fuzz/pki (issued
// 2026-12-03 07:46 UTC for a year).
inline constexpr int64_t kVerifyAtUnix = 1796290000;

// The contents of tests/fuzz/pki/<name>; aborts when it cannot be read
// (a fuzz target without its fixtures would fuzz nothing).
const std::string& PkiFile(const std::string& name);

// The root of the fixed PKI, without CRLs.
X509_STORE& TrustStore();
// Chain options for kVerifyAtUnix, no CRL check.
crypto::ChainOptions FixedTimeChainOptions();

// node-CIV's key: the verifier of checkpoints (origin kOrigin) and the
// signer of make_seeds' checkpoints.
const VerifyingKey& NodeVerifyingKey();
const SigningKey& NodeSigningKey();

// Splits `data` into parts, each a 2-byte big-endian length and that many
// bytes; a last part cut short is kept as it is. At most `max_parts`.
std::vector<absl::string_view> SplitParts(absl::string_view data,
                                          size_t max_parts);
// The inverse, for make_seeds (each part at most 65535 bytes).
std::string JoinParts(const std::vector<std::string>& parts);

}  // namespace ibsm::fuzz

#endif  // IBSM_TESTS_FUZZ_FUZZ_SUPPORT_H_
