#include "tests/support/test_keys.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>

namespace ibsm::testing {

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

// Writes `key` as PEM private key, public key and self-signed certificate.
PemKey ExportKey(EVP_PKEY* key) {
  PemKey out;
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr,
                                   nullptr) == 1);
  out.private_pem = BioToString(bio);
  BIO_free(bio);

  bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PUBKEY(bio, key) == 1);
  out.public_pem = BioToString(bio);
  BIO_free(bio);

  X509* cert = X509_new();
  REQUIRE(X509_set_version(cert, X509_VERSION_3) == 1);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("CIV"), -1,
                             -1, 0);
  REQUIRE(X509_set_issuer_name(cert, name) == 1);
  REQUIRE(X509_set_pubkey(cert, key) == 1);
  // Ed25519 signs without a separate digest.
  const EVP_MD* md =
      EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  REQUIRE(X509_sign(cert, key, md) > 0);
  bio = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_X509(bio, cert) == 1);
  out.cert_pem = BioToString(bio);
  BIO_free(bio);
  X509_free(cert);

  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  REQUIRE(len > 0);
  out.spki_der.assign(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

PemKey MakeP256() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  PemKey out = ExportKey(key);
  EVP_PKEY_free(key);
  return out;
}

PemKey MakeRsa(unsigned int bits) {
  EVP_PKEY* key = EVP_RSA_gen(bits);
  REQUIRE(key != nullptr);
  PemKey out = ExportKey(key);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace ibsm::testing
