#include "ibsm/canonical_alert.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "ibsm/v1/alert.pb.h"

namespace ibsm {

std::string CanonicalAlertBytes(const v1::Alert& alert) {
  if (alert.has_created_at() || !alert.signature().empty() ||
      !alert.signing_chain().empty()) {
    // A copy only when there is something to leave out; the broker's hot
    // path hands in an alert without created_at (PreparePublish).
    v1::Alert content = alert;
    content.clear_created_at();
    content.clear_signature();
    content.clear_signing_chain();
    return DeterministicAlertBytes(content);
  }
  return DeterministicAlertBytes(alert);
}

std::string DeterministicAlertBytes(const v1::Alert& alert) {
  std::string bytes;
  AppendDeterministicAlertBytes(alert, &bytes);
  return bytes;
}

void AppendDeterministicAlertBytes(const v1::Alert& alert, std::string* out) {
  {
    // StringOutputStream appends to what `out` holds.
    google::protobuf::io::StringOutputStream stream(out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    // Serializing an in-memory message to a string cannot fail.
    (void)alert.SerializeToCodedStream(&coded);
  }  // the CodedOutputStream flushes into `out` here, then `stream` trims it
}

}  // namespace ibsm
