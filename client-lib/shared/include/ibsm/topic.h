// Topic names and topic patterns. Pure code, no I/O; safe for concurrent use
// (a TopicPattern is immutable after Parse).
//
// A topic is 1..16 dot-separated segments of [a-z0-9_-] (each starting with a
// letter or digit), at most 255 characters: "terrorism.suspect-movement".
// A pattern uses the same segments plus two wildcards:
//   '*'  matches exactly one segment     ("trafficking.*" matches
//        "trafficking.drugs" but not "trafficking" nor "trafficking.a.b");
//   '>'  as the last segment matches one or more segments ("terrorism.>").
// A lone ">" matches every topic.
#ifndef IBSM_TOPIC_H_
#define IBSM_TOPIC_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ibsm {

inline constexpr size_t kMaxTopicLength = 255;
inline constexpr size_t kMaxTopicSegments = 16;

// OK, or INVALID_ARGUMENT saying what is wrong with `topic`.
absl::Status ValidateTopic(absl::string_view topic);

class TopicPattern {
 public:
  // INVALID_ARGUMENT with the reason when `pattern` is not a valid pattern.
  static absl::StatusOr<TopicPattern> Parse(absl::string_view pattern);

  bool Matches(absl::string_view topic) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> segments_;
};

// True when `topic` matches at least one of `patterns`.
bool MatchesAny(const std::vector<TopicPattern>& patterns,
                absl::string_view topic);

}  // namespace ibsm

#endif  // IBSM_TOPIC_H_
