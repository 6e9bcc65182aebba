#include "ibsm/topic.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ibsm {
namespace {

bool IsSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

absl::Status ValidateSegment(absl::string_view what, absl::string_view whole,
                             absl::string_view segment) {
  if (segment.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", whole,
                     "' has an empty segment (check for '..' or a "
                     "leading or trailing '.')"));
  }
  if (segment[0] == '-' || segment[0] == '_') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", whole, "': segment '", segment,
                     "' must start with a lowercase letter or digit"));
  }
  for (char c : segment) {
    if (!IsSegmentChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", whole, "': segment '", segment,
          "' may only contain lowercase letters, digits, '-' and '_'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateShape(absl::string_view what, absl::string_view text) {
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  if (text.size() > kMaxTopicLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", text.size(), " characters long; at most ",
                     kMaxTopicLength, " are allowed"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTopic(absl::string_view topic) {
  if (absl::Status s = ValidateShape("topic", topic); !s.ok()) return s;
  std::vector<absl::string_view> segments = absl::StrSplit(topic, '.');
  if (segments.size() > kMaxTopicSegments) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic '", topic, "' has ", segments.size(),
                     " segments; at most ", kMaxTopicSegments));
  }
  for (absl::string_view segment : segments) {
    if (segment == "*" || segment == ">") {
      return absl::InvalidArgumentError(
          absl::StrCat("topic '", topic,
                       "' contains a wildcard; wildcards are only allowed in "
                       "subscription patterns"));
    }
    if (absl::Status s = ValidateSegment("topic", topic, segment); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TopicPattern> TopicPattern::Parse(absl::string_view pattern) {
  if (absl::Status s = ValidateShape("topic pattern", pattern); !s.ok()) {
    return s;
  }
  TopicPattern result;
  result.text_ = std::string(pattern);
  result.segments_ = absl::StrSplit(pattern, '.');
  if (result.segments_.size() > kMaxTopicSegments) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic pattern '", pattern, "' has too many segments"));
  }
  for (size_t i = 0; i < result.segments_.size(); ++i) {
    const std::string& segment = result.segments_[i];
    if (segment == "*") continue;
    if (segment == ">") {
      if (i + 1 != result.segments_.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("topic pattern '", pattern,
                         "': '>' is only allowed as the last segment"));
      }
      continue;
    }
    if (absl::Status s = ValidateSegment("topic pattern", pattern, segment);
        !s.ok()) {
      return s;
    }
  }
  return result;
}

bool TopicPattern::Matches(absl::string_view topic) const {
  size_t segment_index = 0;
  size_t pos = 0;
  while (true) {
    if (segment_index == segments_.size()) return false;
    const std::string& want = segments_[segment_index];
    if (want == ">") return pos < topic.size();  // at least one left
    size_t end = topic.find('.', pos);
    absl::string_view got = topic.substr(pos, end == absl::string_view::npos
                                                  ? absl::string_view::npos
                                                  : end - pos);
    if (want != "*" && want != got) return false;
    ++segment_index;
    if (end == absl::string_view::npos) {
      return segment_index == segments_.size();
    }
    pos = end + 1;
  }
}

bool MatchesAny(const std::vector<TopicPattern>& patterns,
                absl::string_view topic) {
  for (const TopicPattern& p : patterns) {
    if (p.Matches(topic)) return true;
  }
  return false;
}

}  // namespace ibsm
