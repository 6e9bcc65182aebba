// Request parsing and response serialization for the services' raw
// (grpc::ByteBuffer) methods. The services take request bytes themselves
// instead of letting gRPC's generated code parse them, because that code
// answers bytes that are not the expected message with UNIMPLEMENTED and no
// message on unary calls, reports them as a clean end of a stream (OK), and
// lets protobuf print an ERROR line to stderr for invalid UTF-8. Here every
// such request is INVALID_ARGUMENT with a reason, checked before protobuf
// parses anything, with the size bounded first.
//
// Pure functions, safe for concurrent use.
#ifndef IBSM_BROKER_SERVICES_RAW_MESSAGE_H_
#define IBSM_BROKER_SERVICES_RAW_MESSAGE_H_

#include <cstddef>

#include "absl/status/status.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace grpc {
class ByteBuffer;
}  // namespace grpc

namespace ibsm::broker {

// Largest request the services parse: gRPC's own receive limit (4 MiB by
// default) already applies; this also holds if that limit is raised.
inline constexpr size_t kMaxRequestBytes = 64 << 20;

// Parses `bytes` into `*message` (cleared first). INVALID_ARGUMENT naming
// the message type (and the field, for a string that is not UTF-8) when the
// bytes are not a valid message; RESOURCE_EXHAUSTED above `max_bytes`.
absl::Status ParseRequest(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message,
                          size_t max_bytes = kMaxRequestBytes);

// Serializes `message` into `*bytes`, replacing what it held. INTERNAL if
// protobuf cannot (which only a message over 2 GiB would cause).
absl::Status SerializeResponse(const google::protobuf::Message& message,
                               grpc::ByteBuffer* bytes);

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_SERVICES_RAW_MESSAGE_H_
