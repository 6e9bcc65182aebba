#include "storage/key_ring.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/v1/alert.pb.h"
#include "storage/seal.h"

namespace ibsm::broker {
namespace {

// Nonces: a counter, not one random draw per record. A ring starts its
// 96-bit counter at a random value (32 random high bits, 64 random low bits
// that count up), so one process never repeats a nonce under a key. Two rings
// (a restart, or the re-encryption command) holding the same key repeat one
// only if their ranges of counters overlap: with n records sealed in all, below
// n / 2^95 per pair of rings, where one random 96-bit nonce per record would
// collide with probability about n^2 / 2^97 (NIST SP 800-38D caps that at 2^32
// records per key, which a node at 10,000 alerts/s reaches in five days).
// Sequences are not used as nonces: a failed batch gives its sequences
// back, and its bytes may have reached the write-ahead log.
void RandomBytes(void* out, size_t n) {
  if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(n)) != 1) {
    // Without randomness there is no safe key or nonce: stop, never seal
    // with a predictable one.
    std::fprintf(stderr, "ibsm: RAND_bytes failed\n");
    std::abort();
  }
}

absl::Status KeySize(absl::string_view key) {
  if (key.size() != seal::kKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a node key is ", seal::kKeyBytes, " bytes, not ", key.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": encryption key file ", why));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return refuse(absl::StrCat("cannot be read: ", std::strerror(errno)));
  }
  struct stat st;
  std::string key(seal::kKeyBytes + 1, '\0');
  ssize_t n = -1;
  if (::fstat(fd, &st) == 0) n = ::read(fd, key.data(), key.size());
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    return refuse(absl::StrCat("cannot be read: ", std::strerror(read_errno)));
  }
  if (!S_ISREG(st.st_mode)) return refuse("is not a regular file");
  if ((st.st_mode & 077) != 0) {
    return refuse(absl::StrFormat(
        "is accessible by group or others (mode %04o); make it 0600 or 0400",
        st.st_mode & 07777));
  }
  if (static_cast<size_t>(n) != seal::kKeyBytes ||
      static_cast<uint64_t>(st.st_size) != seal::kKeyBytes) {
    return refuse(absl::StrCat(
        "holds ", st.st_size, " bytes; a node key is exactly ", seal::kKeyBytes,
        " random bytes (make one with ibsm-broker keygen)"));
  }
  key.resize(seal::kKeyBytes);
  return key;
}

absl::Status Loss(uint64_t sequence, absl::string_view why) {
  return absl::DataLossError(
      absl::StrCat("the stored alert at sequence ", sequence, " ", why));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const KeyRing>> KeyRing::FromKeys(
    std::string current, std::vector<std::string> older) {
  if (absl::Status s = KeySize(current); !s.ok()) return s;
  std::shared_ptr<KeyRing> ring(new KeyRing());
  ring->current_id_ = seal::KeyId(current);
  ring->keys_.emplace(ring->current_id_, std::move(current));
  for (std::string& key : older) {
    if (absl::Status s = KeySize(key); !s.ok()) return s;
    ring->keys_.emplace(seal::KeyId(key), std::move(key));
  }
  uint64_t low = 0;
  RandomBytes(&ring->nonce_high_, sizeof(ring->nonce_high_));
  RandomBytes(&low, sizeof(low));
  ring->nonce_low_.store(low, std::memory_order_relaxed);
  return std::shared_ptr<const KeyRing>(std::move(ring));
}

absl::StatusOr<std::shared_ptr<const KeyRing>> KeyRing::Load(
    const std::string& current_file,
    const std::vector<std::string>& older_files) {
  absl::StatusOr<std::string> current = ReadKeyFile(current_file);
  if (!current.ok()) return current.status();
  std::vector<std::string> older;
  for (const std::string& file : older_files) {
    absl::StatusOr<std::string> key = ReadKeyFile(file);
    if (!key.ok()) return key.status();
    older.push_back(*std::move(key));
  }
  return FromKeys(*std::move(current), std::move(older));
}

const std::string* KeyRing::Find(absl::string_view key_id) const {
  auto it = keys_.find(key_id);
  return it == keys_.end() ? nullptr : &it->second;
}

std::string KeyRing::NextNonce() const {
  uint64_t low = nonce_low_.fetch_add(1, std::memory_order_relaxed);
  // The low half counts; it would take 2^64 seals to come round again.
  const uint32_t high = nonce_high_;
  std::string nonce(seal::kNonceBytes, '\0');
  for (int i = 0; i < 4; ++i) {
    nonce[i] = static_cast<char>((high >> (24 - 8 * i)) & 0xff);
  }
  for (int i = 0; i < 8; ++i) {
    nonce[4 + i] = static_cast<char>((low >> (56 - 8 * i)) & 0xff);
  }
  return nonce;
}

absl::StatusOr<std::string> WriteNewKeyFile(const std::string& path) {
  std::string key(seal::kKeyBytes, '\0');
  RandomBytes(key.data(), key.size());
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    std::string why =
        absl::StrCat("cannot create key file ", path, ": ", std::strerror(e));
    if (e == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat(why, " (a key file is never overwritten)"));
    }
    return absl::FailedPreconditionError(why);
  }
  // The umask may only have narrowed 0600; make it exactly that.
  const bool ok =
      ::fchmod(fd, 0600) == 0 &&
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
      ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write key file ", path, ": ", std::strerror(e)));
  }
  return seal::KeyId(key);
}

absl::StatusOr<std::string> SealStoredAlert(
    const KeyRing* keys, uint64_t sequence,
    const internal::v1::StoredAlert& stored) {
  if (keys == nullptr) return stored.SerializeAsString();
  internal::v1::StoredAlert sealed = stored;
  v1::Alert* alert = sealed.mutable_alert();
  v1::Alert secret;
  secret.mutable_payload()->swap(*alert->mutable_payload());
  secret.mutable_attributes()->swap(*alert->mutable_attributes());
  const std::string& key_id = keys->current_key_id();
  const std::string nonce = keys->NextNonce();
  absl::StatusOr<std::string> box = seal::Seal(
      *keys->Find(key_id), nonce,
      seal::AssociatedData(seal::kFormatAes256GcmV1, key_id, sequence,
                           alert->originator(), alert->id()),
      secret.SerializeAsString());
  if (!box.ok()) return box.status();
  sealed.set_seal_format(seal::kFormatAes256GcmV1);
  sealed.set_key_id(key_id);
  sealed.set_nonce(nonce);
  sealed.set_sealed(*std::move(box));
  return sealed.SerializeAsString();
}

absl::StatusOr<internal::v1::StoredAlert> OpenStoredAlert(
    const KeyRing* keys, uint64_t sequence, absl::string_view value) {
  internal::v1::StoredAlert stored;
  if (!stored.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Loss(sequence, "cannot be parsed");
  }
  if (stored.seal_format() == 0) return stored;  // written in plaintext
  if (stored.seal_format() != seal::kFormatAes256GcmV1) {
    return Loss(sequence,
                absl::StrCat("is sealed in format ", stored.seal_format(),
                             ", which this broker does not know"));
  }
  const std::string* key =
      keys == nullptr ? nullptr : keys->Find(stored.key_id());
  if (key == nullptr) {
    return Loss(
        sequence,
        absl::StrCat("is sealed under key id ", seal::KeyIdHex(stored.key_id()),
                     ", which this node does not hold: add its key "
                     "file to encryption.old_key_files"));
  }
  v1::Alert* alert = stored.mutable_alert();
  absl::StatusOr<std::string> plain = seal::Open(
      *key, stored.nonce(),
      seal::AssociatedData(stored.seal_format(), stored.key_id(), sequence,
                           alert->originator(), alert->id()),
      stored.sealed());
  if (!plain.ok()) {
    return Loss(
        sequence,
        absl::StrCat("fails its integrity check: ", plain.status().message(),
                     "; it was altered or moved from another record"));
  }
  v1::Alert secret;
  if (!secret.ParseFromString(*plain)) {
    return Loss(sequence, "has a sealed part that does not parse");
  }
  alert->mutable_payload()->swap(*secret.mutable_payload());
  alert->mutable_attributes()->swap(*secret.mutable_attributes());
  stored.clear_seal_format();
  stored.clear_key_id();
  stored.clear_nonce();
  stored.clear_sealed();
  return stored;
}

bool SealedUnderCurrentKey(const KeyRing& keys, absl::string_view value) {
  internal::v1::StoredAlert stored;
  return stored.ParseFromArray(value.data(), static_cast<int>(value.size())) &&
         stored.seal_format() == seal::kFormatAes256GcmV1 &&
         stored.key_id() == keys.current_key_id();
}

}  // namespace ibsm::broker
