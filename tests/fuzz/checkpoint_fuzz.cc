// libFuzzer target for the checkpoint verifier (client-lib/shared
// checkpoint.h): the bytes are a signed note, checked against node-CIV's key
// of the fixed fuzzing PKI under the origin "ibsm/CIV", and read by the two
// unverified peeks. Never a crash; a note that verifies must name what its
// body says (the verified checkpoint's body is a prefix of the note).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "ibsm/checkpoint.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view note(reinterpret_cast<const char*>(data), size);
  (void)ibsm::PeekTreeSize(note);
  (void)ibsm::PeekRoot(note);
  auto checkpoint = ibsm::VerifyCheckpoint(note, ibsm::fuzz::kOrigin,
                                           ibsm::fuzz::NodeVerifyingKey());
  if (!checkpoint.ok()) return 0;
  const std::string body = ibsm::CheckpointBody(*checkpoint);
  if (note.substr(0, body.size()) != body) std::abort();
  if (ibsm::PeekTreeSize(note) != checkpoint->tree_size) std::abort();
  return 0;
}
