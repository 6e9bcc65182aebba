#include "storage/reencrypt.h"

#include <utility>

#include "ibsm/internal/v1/storage.pb.h"
#include "ibsm/status_macros.h"
#include "storage/key_ring.h"
#include "storage/store.h"

namespace ibsm::broker {

absl::StatusOr<ReencryptResult> ReencryptLog(Store* store,
                                             size_t batch_records) {
  const KeyRing* keys = store->keys();
  if (keys == nullptr) {
    return absl::FailedPreconditionError(
        "encryption is not configured (no `encryption` in the config): "
        "there is no key to re-encrypt under");
  }
  ReencryptResult result;
  uint64_t from = 1;
  while (true) {
    storage::Batch batch = store->NewBatch();
    absl::Status failed;
    size_t visited = 0;
    size_t added = 0;
    uint64_t last = 0;
    IBSM_RETURN_IF_ERROR(store->ScanLog(
        from, batch_records, [&](uint64_t sequence, absl::string_view value) {
          ++visited;
          last = sequence;
          if (SealedUnderCurrentKey(*keys, value)) return true;
          absl::StatusOr<internal::v1::StoredAlert> stored =
              store->DecodeAlert(sequence, value);
          if (stored.ok())
            failed = batch.PutAlert(sequence, *stored);
          else
            failed = stored.status();
          if (!failed.ok()) return false;
          ++added;
          return true;
        }));
    if (added > 0) {
      IBSM_RETURN_IF_ERROR(
          store->Commit(std::move(batch), Durability::kSynced));
      result.rewritten += added;
      ++result.batches;
    }
    result.scanned += visited;
    if (!failed.ok()) return failed;
    if (visited < batch_records) return result;
    from = last + 1;
  }
}

}  // namespace ibsm::broker
