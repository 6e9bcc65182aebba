// Keys and self-signed certificates made with OpenSSL for unit tests that
// need a signer but no PKI on disk (checkpoints, audit verification).
// Thread-compatible; key generation is slow, so tests keep keys they reuse.
#ifndef IBSM_TESTS_SUPPORT_TEST_KEYS_H_
#define IBSM_TESTS_SUPPORT_TEST_KEYS_H_

#include <string>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct bio_st BIO;

namespace ibsm::testing {

struct PemKey {
  std::string private_pem;
  std::string public_pem;
  std::string cert_pem;  // self-signed, CN=CIV, valid for an hour
  std::string spki_der;
};

// Writes `key` as PEM private key, public key and self-signed certificate.
PemKey ExportKey(EVP_PKEY* key);
PemKey MakeP256();
PemKey MakeRsa(unsigned int bits);

// Everything written to a memory BIO so far.
std::string BioToString(BIO* bio);

}  // namespace ibsm::testing

#endif  // IBSM_TESTS_SUPPORT_TEST_KEYS_H_
