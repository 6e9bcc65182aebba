#include "tests/fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "ibsm/certificates.h"

namespace ibsm::fuzz {

const std::string& PkiFile(const std::string& name) {
  static auto* files = new std::vector<std::pair<std::string, std::string>>();
  for (const auto& [n, contents] : *files) {
    if (n == name) return contents;
  }
  const std::string path = std::string(IBSM_FUZZ_PKI_DIR) + "/" + name;
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (!contents.ok()) {
    std::fprintf(stderr, "fuzz: cannot read %s: %s\n", path.c_str(),
                 std::string(contents.status().message()).c_str());
    std::abort();
  }
  files->emplace_back(name, *std::move(contents));
  return files->back().second;
}

X509_STORE& TrustStore() {
  static X509_STORE* store =
      crypto::MakeTrustStore(crypto::ParseCertificates(PkiFile("ca.pem")), {})
          .release();
  return *store;
}

crypto::ChainOptions FixedTimeChainOptions() {
  crypto::ChainOptions options;
  options.at_unix = kVerifyAtUnix;
  return options;
}

const VerifyingKey& NodeVerifyingKey() {
  static const VerifyingKey* key = [] {
    absl::StatusOr<VerifyingKey> k =
        VerifyingKey::FromCertificatePem(PkiFile("node-CIV.pem"));
    if (!k.ok()) std::abort();
    return new VerifyingKey(*std::move(k));
  }();
  return *key;
}

const SigningKey& NodeSigningKey() {
  static const SigningKey* key = [] {
    absl::StatusOr<SigningKey> k = SigningKey::FromPem(PkiFile("node-CIV.key"));
    if (!k.ok()) std::abort();
    return new SigningKey(*std::move(k));
  }();
  return *key;
}

std::vector<absl::string_view> SplitParts(absl::string_view data,
                                          size_t max_parts) {
  std::vector<absl::string_view> parts;
  while (data.size() >= 2 && parts.size() < max_parts) {
    const size_t n =
        (static_cast<uint8_t>(data[0]) << 8) | static_cast<uint8_t>(data[1]);
    data.remove_prefix(2);
    const size_t take = n < data.size() ? n : data.size();
    parts.push_back(data.substr(0, take));
    data.remove_prefix(take);
  }
  return parts;
}

std::string JoinParts(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    if (p.size() > 0xffff) std::abort();
    out.push_back(static_cast<char>(p.size() >> 8));
    out.push_back(static_cast<char>(p.size() & 0xff));
    out += p;
  }
  return out;
}

}  // namespace ibsm::fuzz
