#include "services/raw_message.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/message.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/byte_buffer.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ibsm::broker {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Protobuf's own nesting limit.
constexpr int kMaxDepth = 100;

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values above U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
        (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Walks the wire bytes of a `type` message and checks every string field
// (at any depth, map keys and values included) for UTF-8, the check protobuf
// would otherwise make while parsing, with an ERROR line on stderr. Returns
// the offending field's name, "" when all strings are valid; `*malformed` is
// set when the bytes are not a well-formed message at all.
std::string FindInvalidUtf8(const Descriptor* type, CodedInputStream* in,
                            int depth, bool* malformed) {
  if (depth > kMaxDepth) {
    *malformed = true;
    return "";
  }
  while (true) {
    const uint32_t tag = in->ReadTag();
    if (tag == 0) {
      // The end of the message (or of a nested one), or a bad tag.
      if (!in->ConsumedEntireMessage()) *malformed = true;
      return "";
    }
    const FieldDescriptor* field =
        type->FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag));
    const bool delimited = WireFormatLite::GetTagWireType(tag) ==
                           WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (field == nullptr || !delimited ||
        (field->type() != FieldDescriptor::TYPE_STRING &&
         field->type() != FieldDescriptor::TYPE_MESSAGE)) {
      if (!WireFormatLite::SkipField(in, tag)) {
        *malformed = true;
        return "";
      }
      continue;
    }
    uint32_t length;
    if (!in->ReadVarint32(&length)) {
      *malformed = true;
      return "";
    }
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      std::string value;
      if (!in->ReadString(&value, static_cast<int>(length))) {
        *malformed = true;
        return "";
      }
      if (!IsValidUtf8(value)) return field->full_name();
      continue;
    }
    const CodedInputStream::Limit limit =
        in->PushLimit(static_cast<int>(length));
    std::string bad =
        FindInvalidUtf8(field->message_type(), in, depth + 1, malformed);
    if (!bad.empty() || *malformed) return bad;
    in->PopLimit(limit);
  }
}

}  // namespace

absl::Status ParseRequest(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message,
                          size_t max_bytes) {
  message->Clear();
  const std::string& type = message->GetDescriptor()->full_name();
  if (bytes.Length() > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the request is ", bytes.Length(),
                     " bytes; this node takes at most ", max_bytes));
  }
  std::vector<grpc::Slice> slices;
  if (!bytes.Dump(&slices).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request could not be read as a ", type));
  }
  std::string flat;
  flat.reserve(bytes.Length());
  for (const grpc::Slice& slice : slices) {
    flat.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  auto not_valid = [&type](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is not a valid ", type, " message (", why,
                     "); send the message the method's .proto declares"));
  };
  {
    CodedInputStream in(reinterpret_cast<const uint8_t*>(flat.data()),
                        static_cast<int>(flat.size()));
    bool malformed = false;
    std::string bad =
        FindInvalidUtf8(message->GetDescriptor(), &in, 0, &malformed);
    if (!bad.empty()) {
      return not_valid(absl::StrCat("string field ", bad,
                                    " is not valid UTF-8; use bytes fields "
                                    "for binary data"));
    }
    if (malformed) return not_valid("the bytes are not protobuf wire format");
  }
  if (!message->ParseFromString(flat)) {
    return not_valid("protobuf could not parse the bytes");
  }
  return absl::OkStatus();
}

absl::Status SerializeResponse(const google::protobuf::Message& message,
                               grpc::ByteBuffer* bytes) {
  // gRPC's writer fills an empty buffer only; callers reuse theirs.
  bytes->Clear();
  bool own_buffer = false;
  grpc::Status s =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(
          message, bytes, &own_buffer);
  if (!s.ok()) {
    return absl::InternalError(
        absl::StrCat("serializing the response failed: ", s.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace ibsm::broker
