// storage/seal.h: AES-256-GCM sealing of stored alerts, pure logic.
#include "storage/seal.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/escaping.h"

namespace ibsm::broker::seal {
namespace {

const std::string kKey(kKeyBytes, 'k');
const std::string kOtherKey(kKeyBytes, 'K');
const std::string kNonce(kNonceBytes, 'n');

std::string Ad(uint64_t sequence = 7, const std::string& originator = "CIV/p",
               const std::string& id = "a-1") {
  return AssociatedData(kFormatAes256GcmV1, KeyId(kKey), sequence, originator,
                        id);
}

TEST_CASE("Seal then Open gives the plaintext back") {
  for (const std::string& plain :
       {std::string(), std::string("x"), std::string(1000, '\0'),
        std::string("payload and attributes")}) {
    absl::StatusOr<std::string> sealed = Seal(kKey, kNonce, Ad(), plain);
    REQUIRE(sealed.ok());
    CHECK(sealed->size() == plain.size() + kTagBytes);
    absl::StatusOr<std::string> opened = Open(kKey, kNonce, Ad(), *sealed);
    REQUIRE(opened.ok());
    CHECK(*opened == plain);
  }
}

TEST_CASE("AES-256-GCM matches a known answer (NIST test case 13)") {
  // gcmEncryptExtIV256: zero key, zero IV, empty plaintext and AD.
  const std::string zero_key(32, '\0');
  const std::string zero_iv(12, '\0');
  absl::StatusOr<std::string> tag = Seal(zero_key, zero_iv, "", "");
  REQUIRE(tag.ok());
  CHECK(absl::BytesToHexString(*tag) == "530f8afbc74536b9a963b4f1c4cb738b");
}

TEST_CASE("Open refuses every single altered byte of the sealed value") {
  const std::string plain = "the payload \x01\x02 and its attributes";
  const std::string sealed = *Seal(kKey, kNonce, Ad(), plain);
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string bad = sealed;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      absl::StatusOr<std::string> opened = Open(kKey, kNonce, Ad(), bad);
      INFO("byte " << i << " flip " << int{flip});
      REQUIRE(opened.status().code() == absl::StatusCode::kDataLoss);
      CHECK_THAT(std::string(opened.status().message()),
                 Catch::Contains("does not authenticate"));
    }
  }
}

TEST_CASE("Open refuses a truncated or extended sealed value") {
  const std::string sealed = *Seal(kKey, kNonce, Ad(), "some plaintext");
  for (size_t n = 0; n < sealed.size(); ++n) {
    INFO("length " << n);
    CHECK(Open(kKey, kNonce, Ad(), sealed.substr(0, n)).status().code() ==
          absl::StatusCode::kDataLoss);
  }
  CHECK(Open(kKey, kNonce, Ad(), sealed + "x").status().code() ==
        absl::StatusCode::kDataLoss);
}

TEST_CASE("Open refuses the wrong key, nonce or associated data") {
  const std::string sealed = *Seal(kKey, kNonce, Ad(), "plaintext");
  CHECK(Open(kOtherKey, kNonce, Ad(), sealed).status().code() ==
        absl::StatusCode::kDataLoss);
  std::string nonce = kNonce;
  nonce[11] ^= 1;
  CHECK(Open(kKey, nonce, Ad(), sealed).status().code() ==
        absl::StatusCode::kDataLoss);
  // Another sequence, originator or alert id: a value moved to another
  // record does not open.
  CHECK(Open(kKey, kNonce, Ad(8), sealed).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(Open(kKey, kNonce, Ad(7, "CIV/q"), sealed).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(Open(kKey, kNonce, Ad(7, "CIV/p", "a-2"), sealed).status().code() ==
        absl::StatusCode::kDataLoss);
  // Each byte of the associated data counts.
  const std::string ad = Ad();
  for (size_t i = 0; i < ad.size(); ++i) {
    std::string bad = ad;
    bad[i] ^= 0x20;
    INFO("associated data byte " << i);
    CHECK(Open(kKey, kNonce, bad, sealed).status().code() ==
          absl::StatusCode::kDataLoss);
  }
}

TEST_CASE("the associated data is unambiguous and names the key id") {
  // Length prefixes: moving bytes between originator and id changes it.
  CHECK(Ad(7, "CIV/p", "a-1") != Ad(7, "CIV/pa", "-1"));
  CHECK(Ad(7) != Ad(7 + (uint64_t{1} << 40)));
  CHECK(AssociatedData(kFormatAes256GcmV1, KeyId(kKey), 7, "o", "i") !=
        AssociatedData(kFormatAes256GcmV1, KeyId(kOtherKey), 7, "o", "i"));
  CHECK(AssociatedData(1, "k", 7, "o", "i") !=
        AssociatedData(2, "k", 7, "o", "i"));
}

TEST_CASE("Seal and Open refuse keys and nonces of the wrong size") {
  for (size_t n : {size_t{0}, size_t{16}, size_t{31}, size_t{33}}) {
    CHECK(Seal(std::string(n, 'k'), kNonce, "", "p").status().code() ==
          absl::StatusCode::kInvalidArgument);
    CHECK(Open(std::string(n, 'k'), kNonce, "", std::string(20, 's'))
              .status()
              .code() == absl::StatusCode::kInvalidArgument);
  }
  for (size_t n : {size_t{0}, size_t{8}, size_t{11}, size_t{13}, size_t{16}}) {
    CHECK(Seal(kKey, std::string(n, 'n'), "", "p").status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a key id is 8 bytes of SHA-256 over the key, shown as hex") {
  CHECK(KeyId(kKey).size() == kKeyIdBytes);
  CHECK(KeyId(kKey) != KeyId(kOtherKey));
  CHECK(KeyId(kKey) == KeyId(std::string(kKeyBytes, 'k')));
  CHECK(KeyIdHex(KeyId(kKey)).size() == 16);
}

}  // namespace
}  // namespace ibsm::broker::seal
