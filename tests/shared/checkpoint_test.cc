// Tests of client-lib/shared/include/ibsm/checkpoint.h: the C2SP checkpoint
// text, sign/verify round trips with EC P-256 and RSA keys made here, and
// rejection of every tampering and malformed note.
#include "ibsm/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "ibsm/merkle.h"
#include "tests/support/test_keys.h"

namespace ibsm::broker {
namespace {

constexpr char kOrigin[] = "ibsm/CIV";
constexpr char kDash[] = "\xe2\x80\x94 ";  // em dash, space

using testing::BioToString;
using testing::ExportKey;
using testing::MakeP256;
using testing::MakeRsa;
using testing::PemKey;

SigningKey Signer(const PemKey& key) {
  absl::StatusOr<SigningKey> signer = SigningKey::FromPem(key.private_pem);
  INFO(signer.status().ToString());
  REQUIRE(signer.ok());
  return std::move(*signer);
}

VerifyingKey Verifier(const PemKey& key) {
  absl::StatusOr<VerifyingKey> verifier =
      VerifyingKey::FromCertificatePem(key.cert_pem);
  INFO(verifier.status().ToString());
  REQUIRE(verifier.ok());
  return std::move(*verifier);
}

Hash RootOf8() {
  // Root of the RFC 6962 test data of 8 leaves.
  std::string bytes = absl::HexStringToBytes(
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
  Hash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

Checkpoint Sample() { return Checkpoint{kOrigin, 8, RootOf8(), 1718000000}; }

// The key ID computed here, independently: SHA-256(name || 0x0A || 0xff ||
// "ibsm-x509-sha256" || DER SPKI)[:4].
uint32_t ExpectedKeyId(const std::string& name, const PemKey& key) {
  std::string input = name + "\n" + "\xff" + "ibsm-x509-sha256" + key.spki_der;
  unsigned char digest[32];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         digest);
  return (uint32_t{digest[0]} << 24) | (uint32_t{digest[1]} << 16) |
         (uint32_t{digest[2]} << 8) | uint32_t{digest[3]};
}

// A signature line over `text` by `key` under `name`, built by hand.
std::string SignatureLine(const std::string& text, const SigningKey& key,
                          const std::string& name) {
  absl::StatusOr<std::string> sig = key.Sign(text);
  REQUIRE(sig.ok());
  uint32_t id = key.KeyId(name);
  std::string raw = {static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                     static_cast<char>(id >> 8), static_cast<char>(id)};
  return absl::StrCat(kDash, name, " ", absl::Base64Escape(raw + *sig), "\n");
}

// A note of arbitrary `text`, validly signed by `key` as kOrigin.
std::string SignRaw(const std::string& text, const SigningKey& key) {
  return text + "\n" + SignatureLine(text, key, kOrigin);
}

std::string Root8B64() {
  return "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";
}

// ---- Format ----

TEST_CASE("CheckpointBody is the tlog-checkpoint text with a time line",
          "[checkpoint]") {
  CHECK(CheckpointBody(Sample()) ==
        "ibsm/CIV\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
        "time 1718000000\n");
  Checkpoint empty{kOrigin, 0, EmptyRootHash(), 0};
  CHECK(CheckpointBody(empty) ==
        "ibsm/CIV\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime 0\n");
}

TEST_CASE("A signed checkpoint is body, blank line, one signature line",
          "[checkpoint]") {
  PemKey pem = MakeP256();
  SigningKey signer = Signer(pem);
  absl::StatusOr<std::string> note = SignCheckpoint(Sample(), signer);
  REQUIRE(note.ok());
  const std::string body = CheckpointBody(Sample());
  const std::string prefix = body + "\n" + kDash + kOrigin + " ";
  REQUIRE(note->substr(0, prefix.size()) == prefix);
  REQUIRE(note->back() == '\n');
  std::string raw;
  REQUIRE(absl::Base64Unescape(
      note->substr(prefix.size(), note->size() - prefix.size() - 1), &raw));
  REQUIRE(raw.size() > 4 + 8);  // key ID and a DER ECDSA signature
  const uint32_t id = (uint32_t{static_cast<uint8_t>(raw[0])} << 24) |
                      (uint32_t{static_cast<uint8_t>(raw[1])} << 16) |
                      (uint32_t{static_cast<uint8_t>(raw[2])} << 8) |
                      uint32_t{static_cast<uint8_t>(raw[3])};
  CHECK(id == ExpectedKeyId(kOrigin, pem));
  CHECK(signer.KeyId(kOrigin) == id);
  CHECK(Verifier(pem).KeyId(kOrigin) == id);
  CHECK(signer.KeyId("ibsm/OTHER") != id);
  CHECK(raw[4] == 0x30);  // DER SEQUENCE: an ECDSA-Sig-Value
}

// ---- Round trips ----

TEST_CASE("Sign and verify round trip with EC P-256", "[checkpoint]") {
  PemKey pem = MakeP256();
  SigningKey signer = Signer(pem);
  absl::StatusOr<std::string> note = SignCheckpoint(Sample(), signer);
  REQUIRE(note.ok());

  absl::StatusOr<Checkpoint> from_cert =
      VerifyCheckpoint(*note, kOrigin, Verifier(pem));
  INFO(from_cert.status().ToString());
  REQUIRE(from_cert.ok());
  CHECK(*from_cert == Sample());

  absl::StatusOr<VerifyingKey> from_pubkey =
      VerifyingKey::FromPublicKeyPem(pem.public_pem);
  REQUIRE(from_pubkey.ok());
  absl::StatusOr<Checkpoint> again =
      VerifyCheckpoint(*note, kOrigin, *from_pubkey);
  REQUIRE(again.ok());
  CHECK(*again == Sample());
}

TEST_CASE("Sign and verify round trip with RSA 2048", "[checkpoint]") {
  PemKey pem = MakeRsa(2048);
  absl::StatusOr<std::string> note = SignCheckpoint(Sample(), Signer(pem));
  REQUIRE(note.ok());
  absl::StatusOr<Checkpoint> checkpoint =
      VerifyCheckpoint(*note, kOrigin, Verifier(pem));
  INFO(checkpoint.status().ToString());
  REQUIRE(checkpoint.ok());
  CHECK(*checkpoint == Sample());
}

TEST_CASE("Round trip at the edges: empty tree, largest size and time",
          "[checkpoint]") {
  PemKey pem = MakeP256();
  SigningKey signer = Signer(pem);
  VerifyingKey verifier = Verifier(pem);
  for (const Checkpoint& c :
       {Checkpoint{kOrigin, 0, EmptyRootHash(), 0},
        Checkpoint{"example.com/log42", std::numeric_limits<uint64_t>::max(),
                   Hash{}, std::numeric_limits<int64_t>::max()},
        Checkpoint{"x", 1, LeafHash(""), 1}}) {
    INFO(CheckpointBody(c));
    absl::StatusOr<std::string> note = SignCheckpoint(c, signer);
    REQUIRE(note.ok());
    absl::StatusOr<Checkpoint> back =
        VerifyCheckpoint(*note, c.origin, verifier);
    INFO(back.status().ToString());
    REQUIRE(back.ok());
    CHECK(*back == c);
  }
}

// ---- Keys ----

TEST_CASE("A checkpoint does not verify with another key or origin",
          "[checkpoint]") {
  PemKey pem = MakeP256();
  absl::StatusOr<std::string> note = SignCheckpoint(Sample(), Signer(pem));
  REQUIRE(note.ok());

  absl::StatusOr<Checkpoint> other_ec =
      VerifyCheckpoint(*note, kOrigin, Verifier(MakeP256()));
  CHECK(other_ec.status().code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(other_ec.status().message()),
             Catch::Contains("no signature by key 'ibsm/CIV'"));
  CHECK(VerifyCheckpoint(*note, kOrigin, Verifier(MakeRsa(2048)))
            .status()
            .code() == absl::StatusCode::kDataLoss);
  // The right key but another log: the key name differs, so the key ID does.
  CHECK(VerifyCheckpoint(*note, "ibsm/OTHER", Verifier(pem)).status().code() ==
        absl::StatusCode::kDataLoss);
  CHECK(VerifyCheckpoint(*note, "ibsm/CIV ", Verifier(pem)).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("A signature forged under our key ID with another key fails",
          "[checkpoint]") {
  // The attacker names our key and copies its key ID, but signs with its own
  // key: the ID matches, so the signature is checked, and it fails.
  PemKey ours = MakeP256();
  PemKey theirs = MakeP256();
  SigningKey attacker = Signer(theirs);
  const std::string body = CheckpointBody(Sample());
  absl::StatusOr<std::string> sig = attacker.Sign(body);
  REQUIRE(sig.ok());
  uint32_t id = Signer(ours).KeyId(kOrigin);
  std::string raw = {static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                     static_cast<char>(id >> 8), static_cast<char>(id)};
  std::string note = absl::StrCat(body, "\n", kDash, kOrigin, " ",
                                  absl::Base64Escape(raw + *sig), "\n");
  absl::StatusOr<Checkpoint> result =
      VerifyCheckpoint(note, kOrigin, Verifier(ours));
  CHECK(result.status().code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(result.status().message()),
             Catch::Contains("does not verify"));
}

TEST_CASE("Key loading rejects bad input without crashing or prompting",
          "[checkpoint]") {
  PemKey ec = MakeP256();
  CHECK(SigningKey::FromPem("").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(SigningKey::FromPem("garbage").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(SigningKey::FromPem(ec.cert_pem).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(SigningKey::FromPem(ec.public_pem).status().code() ==
        absl::StatusCode::kInvalidArgument);
  std::string truncated = ec.private_pem.substr(0, ec.private_pem.size() / 2);
  CHECK(SigningKey::FromPem(truncated).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(VerifyingKey::FromCertificatePem("").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(VerifyingKey::FromCertificatePem(ec.private_pem).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(VerifyingKey::FromCertificatePem(ec.public_pem).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(VerifyingKey::FromPublicKeyPem(ec.cert_pem).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(VerifyingKey::FromPublicKeyPem("-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                       "-----END PUBLIC KEY-----\n")
            .status()
            .code() == absl::StatusCode::kInvalidArgument);

  SECTION("an encrypted key is an error, not a passphrase prompt") {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    REQUIRE(key != nullptr);
    BIO* bio = BIO_new(BIO_s_mem());
    static const char kPass[] = "secret";
    REQUIRE(
        PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(),
                                 reinterpret_cast<const unsigned char*>(kPass),
                                 6, nullptr, nullptr) == 1);
    std::string encrypted = BioToString(bio);
    BIO_free(bio);
    EVP_PKEY_free(key);
    absl::StatusOr<SigningKey> signer = SigningKey::FromPem(encrypted);
    CHECK(signer.status().code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("unsupported key types and short RSA keys") {
    EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    REQUIRE(ed != nullptr);
    PemKey ed_pem = ExportKey(ed);
    EVP_PKEY_free(ed);
    absl::Status status = SigningKey::FromPem(ed_pem.private_pem).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()),
               Catch::Contains("unsupported key type"));
    CHECK(VerifyingKey::FromCertificatePem(ed_pem.cert_pem).status().code() ==
          absl::StatusCode::kInvalidArgument);

    PemKey rsa1024 = MakeRsa(1024);
    status = SigningKey::FromPem(rsa1024.private_pem).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Catch::Contains("too short"));
    CHECK(VerifyingKey::FromPublicKeyPem(rsa1024.public_pem).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  // Failures leave nothing in OpenSSL's per-thread error queue.
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("SignCheckpoint rejects invalid origins and negative times",
          "[checkpoint]") {
  SigningKey signer = Signer(MakeP256());
  for (const std::string& origin :
       {std::string(), std::string("ibsm CIV"), std::string("ibsm+CIV"),
        std::string("ibsm/CIV\n"), std::string("ibsm/\xc3\xa9"),
        std::string("a\tb"), std::string("ibsm/CIV\x7f")}) {
    INFO(absl::CHexEscape(origin));
    Checkpoint c = Sample();
    c.origin = origin;
    CHECK(SignCheckpoint(c, signer).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  Checkpoint c = Sample();
  c.time_unix = -1;
  CHECK(SignCheckpoint(c, signer).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

// ---- Tampering ----

TEST_CASE("Every single-bit change of a signed checkpoint is rejected",
          "[checkpoint][tamper]") {
  PemKey pem = MakeP256();
  VerifyingKey verifier = Verifier(pem);
  absl::StatusOr<std::string> note = SignCheckpoint(Sample(), Signer(pem));
  REQUIRE(note.ok());
  REQUIRE(VerifyCheckpoint(*note, kOrigin, verifier).ok());
  int rejected = 0;
  for (size_t i = 0; i < note->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = *note;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      absl::StatusCode code =
          VerifyCheckpoint(bad, kOrigin, verifier).status().code();
      INFO("byte " << i << " bit " << bit << ": " << absl::CHexEscape(bad));
      CHECK((code == absl::StatusCode::kInvalidArgument ||
             code == absl::StatusCode::kDataLoss));
      ++rejected;
    }
  }
  CHECK(rejected == static_cast<int>(note->size()) * 8);
}

TEST_CASE("Every truncation of a signed checkpoint is rejected",
          "[checkpoint][tamper]") {
  PemKey pem = MakeP256();
  VerifyingKey verifier = Verifier(pem);
  absl::StatusOr<std::string> note = SignCheckpoint(Sample(), Signer(pem));
  REQUIRE(note.ok());
  for (size_t len = 0; len < note->size(); ++len) {
    INFO("first " << len << " bytes");
    CHECK_FALSE(VerifyCheckpoint(note->substr(0, len), kOrigin, verifier).ok());
  }
}

TEST_CASE("Modified bodies and structure are rejected",
          "[checkpoint][tamper]") {
  PemKey pem = MakeP256();
  VerifyingKey verifier = Verifier(pem);
  SigningKey signer = Signer(pem);
  // ECDSA signatures vary in length; take one whose base64 has padding so
  // that dropping it can be tested too.
  std::string note;
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::StatusOr<std::string> signed_note = SignCheckpoint(Sample(), signer);
    REQUIRE(signed_note.ok());
    note = *signed_note;
    if (note[note.size() - 2] == '=') break;
  }
  auto code = [&](const std::string& n) {
    return VerifyCheckpoint(n, kOrigin, verifier).status().code();
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string out = note;
    size_t pos = out.find(from);
    REQUIRE(pos != std::string::npos);
    out.replace(pos, from.size(), to);
    return out;
  };
  using absl::StatusCode;
  // Valid-looking bodies that were not signed.
  CHECK(code(replace("\n8\n", "\n9\n")) == StatusCode::kDataLoss);
  CHECK(code(replace("\n8\n", "\n80\n")) == StatusCode::kDataLoss);
  CHECK(code(replace("time 1718000000", "time 1718000001")) ==
        StatusCode::kDataLoss);
  CHECK(code(replace("Xcna", "Ycna")) == StatusCode::kDataLoss);
  CHECK(code(replace("ibsm/CIV\n8", "ibsm/CIW\n8")) == StatusCode::kDataLoss);
  CHECK(code(replace("time 1718000000\n", "time 1718000000\nextra\n")) ==
        StatusCode::kDataLoss);
  CHECK(code(replace("time 1718000000\n", "")) == StatusCode::kDataLoss);
  // Broken structure.
  CHECK(code(replace("000\n\n", "000\n")) == StatusCode::kInvalidArgument);
  CHECK(code(note + "x") == StatusCode::kInvalidArgument);
  CHECK(code(note + "\n") == StatusCode::kInvalidArgument);
  CHECK(code(note + "garbage\n") == StatusCode::kInvalidArgument);
  CHECK(code(note.substr(0, note.size() - 1)) == StatusCode::kInvalidArgument);
  CHECK(code(absl::StrReplaceAll(note, {{"\n", "\r\n"}})) ==
        StatusCode::kInvalidArgument);
  CHECK(code(replace("\xe2\x80\x94", "--")) == StatusCode::kInvalidArgument);
  CHECK(code(replace("\xe2\x80\x94 ibsm/CIV", "\xe2\x80\x94  ibsm/CIV")) ==
        StatusCode::kInvalidArgument);
  CHECK(code(replace("time", "ti\xffme")) == StatusCode::kInvalidArgument);
  CHECK(code(replace("time", "ti\x01me")) == StatusCode::kInvalidArgument);
  CHECK(code(std::string(note).insert(0, 1, '\0')) ==
        StatusCode::kInvalidArgument);
  CHECK(code("") == StatusCode::kInvalidArgument);
  CHECK(code("\n\n") == StatusCode::kInvalidArgument);
  // Bad base64 in the signature: invalid characters, missing padding,
  // whitespace, too short to hold a key ID.
  const size_t sig_start = note.rfind(' ') + 1;
  std::string sig_b64 = note.substr(sig_start, note.size() - sig_start - 1);
  REQUIRE(sig_b64.back() == '=');
  std::string bad = note;
  bad[sig_start + 3] = '!';
  CHECK(code(bad) == StatusCode::kInvalidArgument);
  std::string unpadded = sig_b64;
  while (unpadded.back() == '=') unpadded.pop_back();
  CHECK(code(replace(sig_b64, unpadded)) == StatusCode::kInvalidArgument);
  CHECK(code(replace(sig_b64, sig_b64 + " ")) == StatusCode::kInvalidArgument);
  CHECK(code(replace(sig_b64, "AAAAAA==")) == StatusCode::kInvalidArgument);
  CHECK(code(replace(sig_b64, "")) == StatusCode::kInvalidArgument);
  // A valid signature line of an unknown key whose base64 is broken is
  // still malformed.
  CHECK(code(note + kDash + "witness.example/w1 !!!!\n") ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("Strict parsing of validly signed but malformed bodies",
          "[checkpoint][parse]") {
  PemKey pem = MakeP256();
  SigningKey signer = Signer(pem);
  VerifyingKey verifier = Verifier(pem);
  const std::string root = Root8B64();
  auto verify = [&](const std::string& text) {
    return VerifyCheckpoint(SignRaw(text, signer), kOrigin, verifier);
  };
  // The hand-made signature line is what SignCheckpoint makes.
  absl::StatusOr<Checkpoint> good =
      verify("ibsm/CIV\n8\n" + root + "\ntime 1718000000\n");
  INFO(good.status().ToString());
  REQUIRE(good.ok());
  CHECK(*good == Sample());

  const std::vector<std::string> bad_bodies = {
      // Origin line.
      "ibsm/OTHER\n8\n" + root + "\ntime 1\n",
      "ibsm/CIV \n8\n" + root + "\ntime 1\n",
      "\n8\n" + root + "\ntime 1\n",
      // Tree size line: not decimal, leading zeros, signs, spaces, overflow.
      "ibsm/CIV\n08\n" + root + "\ntime 1\n",
      "ibsm/CIV\n00\n" + root + "\ntime 1\n",
      "ibsm/CIV\n+8\n" + root + "\ntime 1\n",
      "ibsm/CIV\n-8\n" + root + "\ntime 1\n",
      "ibsm/CIV\n 8\n" + root + "\ntime 1\n",
      "ibsm/CIV\n8 \n" + root + "\ntime 1\n",
      "ibsm/CIV\n8.0\n" + root + "\ntime 1\n",
      "ibsm/CIV\n0x8\n" + root + "\ntime 1\n",
      "ibsm/CIV\n\n" + root + "\ntime 1\n",
      "ibsm/CIV\n18446744073709551616\n" + root + "\ntime 1\n",
      "ibsm/CIV\n99999999999999999999\n" + root + "\ntime 1\n",
      // Root hash line: wrong length, non-canonical, not base64, hex.
      "ibsm/CIV\n8\n" + root.substr(0, 40) + "\ntime 1\n",
      "ibsm/CIV\n8\n" + root.substr(0, 43) + "\ntime 1\n",
      "ibsm/CIV\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\ntime 1\n",
      "ibsm/CIV\n8\n" + root + "AAAA\ntime 1\n",
      "ibsm/CIV\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz-Nw7_RgQyg=\ntime 1\n",
      "ibsm/"
      "CIV\n8\n5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
      "\ntime 1\n",
      // Time line: missing, malformed, out of range, more extensions.
      "ibsm/CIV\n8\n" + root + "\n",
      "ibsm/CIV\n8\n" + root + "\ntime\n",
      "ibsm/CIV\n8\n" + root + "\ntime \n",
      "ibsm/CIV\n8\n" + root + "\ntime  1\n",
      "ibsm/CIV\n8\n" + root + "\ntime -1\n",
      "ibsm/CIV\n8\n" + root + "\ntime 01\n",
      "ibsm/CIV\n8\n" + root + "\nTime 1\n",
      "ibsm/CIV\n8\n" + root + "\ntime 9223372036854775808\n",
      "ibsm/CIV\n8\n" + root + "\ntime 1\nfoo bar\n",
      "ibsm/CIV\n8\n" + root + "\nfoo bar\ntime 1\n",
      // Fewer lines, blank lines inside the text.
      "ibsm/CIV\n8\n",
      "ibsm/CIV\n",
      "ibsm/CIV\n8\n\n" + root + "\ntime 1\n",
  };
  for (const std::string& body : bad_bodies) {
    INFO(absl::CHexEscape(body));
    absl::StatusOr<Checkpoint> result = verify(body);
    INFO(result.status().ToString());
    CHECK(result.status().code() == absl::StatusCode::kInvalidArgument);
  }
  // Accepted edges of the same fields.
  CHECK(verify("ibsm/CIV\n0\n" + root + "\ntime 0\n").ok());
  CHECK(verify("ibsm/CIV\n18446744073709551615\n" + root +
               "\ntime 9223372036854775807\n")
            .ok());
}

TEST_CASE("Other signatures are ignored, ours must all verify",
          "[checkpoint][signatures]") {
  PemKey pem = MakeP256();
  SigningKey signer = Signer(pem);
  VerifyingKey verifier = Verifier(pem);
  const std::string body = CheckpointBody(Sample());
  const std::string ours = SignatureLine(body, signer, kOrigin);
  SigningKey witness = Signer(MakeP256());
  const std::string cosig = SignatureLine(body, witness, "witness.example/w1");
  // A rotated key of the same name: same name, different key ID.
  const std::string rotated = SignatureLine(body, witness, kOrigin);

  CHECK(VerifyCheckpoint(body + "\n" + ours + cosig, kOrigin, verifier).ok());
  CHECK(VerifyCheckpoint(body + "\n" + cosig + ours, kOrigin, verifier).ok());
  CHECK(VerifyCheckpoint(body + "\n" + rotated + ours, kOrigin, verifier).ok());
  CHECK(VerifyCheckpoint(body + "\n" + ours + ours, kOrigin, verifier).ok());
  // Unknown signatures alone are not enough.
  CHECK(VerifyCheckpoint(body + "\n" + cosig + rotated, kOrigin, verifier)
            .status()
            .code() == absl::StatusCode::kDataLoss);
  // A second signature by our key that fails rejects the whole note.
  const std::string stale = SignatureLine(
      CheckpointBody(Checkpoint{kOrigin, 7, Hash{}, 1}), signer, kOrigin);
  CHECK(VerifyCheckpoint(body + "\n" + ours + stale, kOrigin, verifier)
            .status()
            .code() == absl::StatusCode::kDataLoss);
  // A bounded number of signature lines.
  std::string many = body + "\n" + ours;
  for (int i = 0; i < 100; ++i) many += cosig;
  CHECK(VerifyCheckpoint(many, kOrigin, verifier).status().code() ==
        absl::StatusCode::kInvalidArgument);
  std::string sixteen = body + "\n";
  for (int i = 0; i < 15; ++i) sixteen += cosig;
  sixteen += ours;
  CHECK(VerifyCheckpoint(sixteen, kOrigin, verifier).ok());
  // A bounded note size.
  std::string huge = body + "\n" + ours + kDash + "big " +
                     absl::Base64Escape(std::string(1 << 20, 'x')) + "\n";
  CHECK(VerifyCheckpoint(huge, kOrigin, verifier).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Keys are safe to share between threads", "[checkpoint][threads]") {
  PemKey pem = MakeP256();
  SigningKey signer = Signer(pem);
  VerifyingKey verifier = Verifier(pem);
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Checkpoint c{kOrigin, static_cast<uint64_t>(t * 1000 + i), Hash{}, i};
        absl::StatusOr<std::string> note = SignCheckpoint(c, signer);
        if (!note.ok()) {
          ++failures[t];
          continue;
        }
        absl::StatusOr<Checkpoint> back =
            VerifyCheckpoint(*note, kOrigin, verifier);
        if (!back.ok() || !(*back == c)) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == std::vector<int>(4, 0));
}

}  // namespace
}  // namespace ibsm::broker
