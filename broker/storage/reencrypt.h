// Re-encryption of the log (ibsm-broker reencrypt, docs/running-a-node.md):
// every stored alert that is not sealed under the store's current key
// (plaintext records, records under an older key) is opened and sealed
// again under the current key, in synced batches. Crash-safe by
// construction: each batch is atomic, and a record already under the
// current key is skipped, so running it again after a crash finishes the
// job. For a stopped node only (the Store's RocksDB lock refuses a running
// one); thread-compatible.
#ifndef IBSM_BROKER_STORAGE_REENCRYPT_H_
#define IBSM_BROKER_STORAGE_REENCRYPT_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"

namespace ibsm::broker {

class Store;

struct ReencryptResult {
  uint64_t scanned = 0;    // log records read
  uint64_t rewritten = 0;  // sealed again under the current key
  uint64_t batches = 0;    // synced batches written
};

// FAILED_PRECONDITION when `store` has no keys. Stops at the first record
// that does not open (DATA_LOSS naming its sequence and, for a key the ring
// lacks, the key id), after committing the batches before it.
absl::StatusOr<ReencryptResult> ReencryptLog(Store* store,
                                             size_t batch_records = 1024);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_STORAGE_REENCRYPT_H_
