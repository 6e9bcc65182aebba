#include "flags.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ibsm::cli {
namespace {

const FlagSpec* Find(const std::vector<FlagSpec>& specs,
                     absl::string_view name) {
  for (const FlagSpec& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

}  // namespace

bool ParsedFlags::Has(absl::string_view name) const {
  return values_.find(name) != values_.end();
}

std::string ParsedFlags::Get(absl::string_view name,
                             std::string fallback) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> ParsedFlags::GetAll(absl::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return {};
  return it->second;
}

void ParsedFlags::Add(const std::string& name, std::string value) {
  values_[name].push_back(std::move(value));
}

void ParsedFlags::Set(const std::string& name, std::string value) {
  values_[name] = {std::move(value)};
}

absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<FlagSpec>& specs,
                                       const std::vector<std::string>& args,
                                       std::vector<std::string>* positional) {
  ParsedFlags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional->insert(positional->end(), args.begin() + i + 1, args.end());
      break;
    }
    if (!absl::StartsWith(arg, "-") || arg == "-") {
      positional->push_back(arg);
      continue;
    }
    const FlagSpec* short_spec = nullptr;
    if (arg.size() == 2 && arg[1] != '-') {
      for (const FlagSpec& s : specs) {
        if (s.short_name != 0 && s.short_name == arg[1]) short_spec = &s;
      }
    }
    if (!absl::StartsWith(arg, "--") && short_spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", arg, "' (flags start with --)"));
    }
    absl::string_view body = short_spec != nullptr
                                 ? absl::string_view(short_spec->name)
                                 : absl::string_view(arg).substr(2);
    std::string name(body);
    std::optional<std::string> value;
    if (size_t eq = body.find('=');
        short_spec == nullptr && eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
    }
    const FlagSpec* spec = Find(specs, name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '--", name, "'"));
    }
    if (spec->kind == FlagSpec::Kind::kBool) {
      if (value.has_value()) {
        return Bad(name, "takes no value");
      }
      flags.Add(name, "true");
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return Bad(name,
                   absl::StrCat("needs a value (", spec->value_name, ")"));
      }
      value = args[++i];
    }
    if (spec->kind == FlagSpec::Kind::kValue && flags.Has(name)) {
      return Bad(name, "given more than once");
    }
    flags.Add(name, *std::move(value));
  }
  return flags;
}

void ApplyEnvironment(const std::vector<FlagSpec>& specs,
                      const std::function<const char*(const char*)>& getenv,
                      ParsedFlags* flags) {
  for (const FlagSpec& s : specs) {
    if (s.env.empty() || flags->Has(s.name)) continue;
    const char* v = getenv(s.env.c_str());
    if (v != nullptr && *v != '\0') flags->Add(s.name, v);
  }
}

std::string FormatFlagHelp(const std::vector<FlagSpec>& specs) {
  std::vector<std::string> lefts;
  size_t width = 0;
  for (const FlagSpec& s : specs) {
    std::string left =
        s.short_name != 0
            ? absl::StrCat("  -", std::string(1, s.short_name), ", --", s.name)
            : absl::StrCat("  --", s.name);
    if (s.kind != FlagSpec::Kind::kBool)
      absl::StrAppend(&left, " ", s.value_name);
    width = std::max(width, left.size());
    lefts.push_back(std::move(left));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    absl::StrAppend(&out, lefts[i],
                    std::string(width + 2 - lefts[i].size(), ' '),
                    specs[i].help);
    if (specs[i].kind == FlagSpec::Kind::kRepeated) {
      absl::StrAppend(&out, " (repeatable)");
    }
    if (!specs[i].env.empty()) absl::StrAppend(&out, " [$", specs[i].env, "]");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

absl::StatusOr<absl::Duration> ParseDurationValue(absl::string_view flag,
                                                  absl::string_view value) {
  absl::Duration d;
  int64_t seconds;
  if (absl::SimpleAtoi(value, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(value, &d)) {
    return Bad(flag, absl::StrCat("'", value,
                                  "' is not a duration (e.g. 3600s, 90m, 1h)"));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return Bad(flag, "must be a positive duration");
  }
  return d;
}

absl::StatusOr<absl::Time> ParseTimeValue(absl::string_view flag,
                                          absl::string_view value) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, value, &t, &err)) {
    return Bad(flag, absl::StrCat("'", value,
                                  "' is not an RFC 3339 time (e.g. "
                                  "2025-01-31T12:00:00Z)"));
  }
  return t;
}

absl::StatusOr<uint64_t> ParseUintValue(absl::string_view flag,
                                        absl::string_view value) {
  uint64_t v;
  if (!absl::SimpleAtoi(value, &v) || absl::StartsWith(value, "-") ||
      absl::StartsWith(value, "+")) {
    return Bad(flag,
               absl::StrCat("'", value, "' is not a non-negative integer"));
  }
  return v;
}

absl::StatusOr<double> ParseDoubleValue(absl::string_view flag,
                                        absl::string_view value) {
  double v;
  if (!absl::SimpleAtod(value, &v) || !(v == v)) {
    return Bad(flag, absl::StrCat("'", value, "' is not a number"));
  }
  return v;
}

absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(
    absl::string_view flag, absl::string_view value) {
  size_t eq = value.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return Bad(flag, absl::StrCat("'", value, "' is not KEY=VALUE"));
  }
  return std::make_pair(std::string(value.substr(0, eq)),
                        std::string(value.substr(eq + 1)));
}

std::vector<std::string> SplitList(absl::string_view value) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

}  // namespace ibsm::cli
