// ParseRequest: the one parser of request bytes for the raw service methods.
#include "services/raw_message.h"

#include <grpcpp/support/byte_buffer.h>

#include <catch2/catch.hpp>
#include <string>

#include "ibsm/v1/broker.pb.h"

namespace ibsm::broker {
namespace {

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// A SubscribeRequest whose open carries one topic with these bytes.
std::string SubscribeWithTopic(const std::string& topic) {
  std::string open =
      std::string("\x0a") + static_cast<char>(topic.size()) + topic;
  return std::string("\x0a") + static_cast<char>(open.size()) + open;
}

TEST_CASE("ParseRequest accepts a valid message, UTF-8 included",
          "[raw_message]") {
  v1::SubscribeRequest request;
  request.mutable_open()->add_topics("border.>");
  request.mutable_open()->set_durable_name("desk");
  v1::SubscribeRequest parsed;
  REQUIRE(ParseRequest(Buffer(request.SerializeAsString()), &parsed).ok());
  CHECK(parsed.open().topics(0) == "border.>");
  // Two-, three- and four-byte sequences are valid UTF-8.
  REQUIRE(ParseRequest(Buffer(SubscribeWithTopic("\xc3\xa9\xe2\x82\xac"
                                                 "\xf0\x9f\x98\x80")),
                       &parsed)
              .ok());
}

TEST_CASE("ParseRequest refuses bytes that are not the message",
          "[raw_message]") {
  v1::SubscribeRequest parsed;
  absl::Status s = ParseRequest(Buffer("\xff\xff\xff\xff"), &parsed);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(s.message()),
             Catch::Contains("ibsm.v1.SubscribeRequest"));
  // A length that runs past the end.
  s = ParseRequest(Buffer(std::string("\x0a\x10\x0a", 3)), &parsed);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ParseRequest names a string field that is not UTF-8",
          "[raw_message]") {
  v1::SubscribeRequest parsed;
  for (const std::string& bad :
       {std::string("\xc3\x28"), std::string("\xc0\xaf"),  // overlong
        std::string("\xed\xa0\x80"),                       // surrogate
        std::string("\xf4\x90\x80\x80"),                   // above U+10FFFF
        std::string("ok\xe2\x82")}) {                      // truncated
    absl::Status s = ParseRequest(Buffer(SubscribeWithTopic(bad)), &parsed);
    INFO(s.ToString());
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(s.message()),
               Catch::Contains("ibsm.v1.SubscribeRequest.Open.topics"));
  }
}

TEST_CASE("ParseRequest refuses a request above its size bound",
          "[raw_message]") {
  v1::SubscribeRequest request;
  request.mutable_open()->add_topics(std::string(100, 'a'));
  v1::SubscribeRequest parsed;
  absl::Status s =
      ParseRequest(Buffer(request.SerializeAsString()), &parsed, 50);
  CHECK(s.code() == absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace ibsm::broker
