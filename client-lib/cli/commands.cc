#include "commands.h"

#include <algorithm>
#include <csignal>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "alert_format.h"
#include "audit_commands.h"
#include "ibsm/alert_rules.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/signature_checker.h"
#include "ibsm/subscriber.h"
#include "ibsm/tls.h"
#include "ibsm/topic.h"
#include "ibsm/v1/broker.grpc.pb.h"
#include "ibsm/v1/broker.pb.h"
#include "policy_commands.h"
#include "progress.h"
#include "rpc_call.h"
#include "spool_commands.h"

namespace ibsm::cli {
namespace {

using Kind = FlagSpec::Kind;

FlagSpec Flag(std::string name, Kind kind, std::string value_name,
              std::string help, std::string env = "") {
  return FlagSpec{std::move(name), kind, std::move(value_name), std::move(help),
                  std::move(env)};
}

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void OnSignal(int) { g_interrupted = 1; }

int Usage(Io& io, const Command* cmd, absl::string_view message) {
  io.err << "ibsm: " << message << "\n";
  io.err << "Run 'ibsm"
         << (cmd != nullptr ? absl::StrCat(" ", absl::StrJoin(cmd->path, " "))
                            : std::string())
         << " --help' for usage.\n";
  return kExitUsage;
}

}  // namespace

// A call the node answered with an error: refused (its decision) or failed
// (it could not be reached or did not finish).
int CallError(Io& io, absl::string_view what, const absl::Status& status) {
  bool refused;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnimplemented:
      refused = false;
      break;
    default:
      refused = true;
  }
  io.err << "ibsm: " << what << (refused ? " refused: " : " failed: ")
         << absl::StatusCodeToString(status.code()) << ": " << status.message()
         << "\n";
  return kExitFailed;
}

namespace {

absl::StatusOr<std::string> ReadPayload(Io& io, const std::string& path) {
  if (path == "-") {
    std::string data((std::istreambuf_iterator<char>(io.in)),
                     std::istreambuf_iterator<char>());
    return data;
  }
  return ReadFileToString(path);
}

}  // namespace

// The connection from the common flags. Returns the exit code on failure.
int UsageError(Io& io, const Command& cmd, absl::string_view message) {
  return Usage(io, &cmd, message);
}

std::variant<std::unique_ptr<Client>, int> Connect(const ParsedFlags& flags,
                                                   const Command& cmd, Io& io,
                                                   bool sign_alerts,
                                                   bool lazily) {
  for (auto [flag, env] :
       {std::pair{"target", "IBSM_TARGET"}, std::pair{"ca", "IBSM_CA"},
        std::pair{"cert", "IBSM_CERT"}, std::pair{"key", "IBSM_KEY"}}) {
    if (!flags.Has(flag)) {
      return Usage(io, &cmd,
                   absl::StrCat("missing --", flag, " (or $", env, ")"));
    }
  }
  ClientOptions options;
  options.target = flags.Get("target");
  options.ca_file = flags.Get("ca");
  options.cert_file = flags.Get("cert");
  options.key_file = flags.Get("key");
  options.tls_server_name = flags.Get("server-name");
  options.server_node = flags.Get("server-node");
  options.sign_alerts = sign_alerts;
  if (flags.Has("timeout")) {
    absl::StatusOr<absl::Duration> t =
        ParseDurationValue("timeout", flags.Get("timeout"));
    if (!t.ok()) return Usage(io, &cmd, t.status().message());
    options.connect_timeout = *t;
    options.call_timeout = *t;
    options.retry_timeout = *t;
  } else {
    options.retry_timeout = absl::Seconds(30);
  }
  if (lazily) options.connect_timeout = absl::ZeroDuration();
  TlsFiles files;
  files.ca_file = options.ca_file;
  files.cert_file = options.cert_file;
  files.key_file = options.key_file;
  if (absl::Status s = CheckTlsFiles(files); !s.ok()) {
    // A missing or mismatched file is a bad flag value.
    return Usage(io, &cmd, absl::StrCat("TLS files: ", s.message()));
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  if (!client.ok() && absl::IsFailedPrecondition(client.status())) {
    // A key or certificate that cannot sign (checked before dialing).
    return Usage(io, &cmd, client.status().message());
  }
  if (!client.ok()) return CallError(io, "connection", client.status());
  return *std::move(client);
}

namespace {

void PrintJsonOr(Io& io, absl::StatusOr<std::string> json) {
  if (json.ok()) {
    io.out << *json << "\n";
  } else {
    io.err << "ibsm: " << json.status().message() << "\n";
  }
}

// ---- ibsm publish ----------------------------------------------------------

int RunPublish(const Command& cmd, const ParsedFlags& flags, Io& io) {
  absl::StatusOr<v1::Alert> alert = AlertFromFlags(
      flags, absl::Now(),
      [&io](const std::string& path) { return ReadPayload(io, path); });
  if (!alert.ok()) return Usage(io, &cmd, alert.status().message());
  // Check everything locally except the classification level, which the
  // node's own scheme decides.
  std::vector<std::string> levels = DefaultClassificationLevels();
  levels.push_back(alert->classification());
  AlertLimits limits;
  limits.classification_levels = &levels;
  if (absl::Status s = ValidateAlert(*alert, limits); !s.ok()) {
    return Usage(io, &cmd, absl::StrCat("invalid alert: ", s.message()));
  }

  if (flags.Has("spool")) return PublishThroughSpool(cmd, flags, io, *alert);

  // Signed unless --unsigned: a federated node refuses unsigned alerts.
  auto connected = Connect(flags, cmd, io, !flags.Bool("unsigned"));
  if (int* code = std::get_if<int>(&connected)) return *code;
  std::unique_ptr<Client> client =
      std::move(std::get<std::unique_ptr<Client>>(connected));
  PublisherOptions options;
  options.validate_locally = false;  // done above
  std::unique_ptr<Publisher> publisher = client->NewPublisher(options);
  absl::StatusOr<PublishReceipt> receipt =
      publisher->Publish(*std::move(alert));
  if (!receipt.ok()) return CallError(io, "publish", receipt.status());
  if (flags.Bool("json")) {
    PrintJsonOr(io, ReceiptJson(*receipt));
  } else {
    io.out << FormatReceipt(*receipt);
  }
  return kExitOk;
}

// ---- ibsm subscribe --------------------------------------------------------

// The progress of `ibsm subscribe` through what the log held when the
// subscription opened: the sequences after its cursor up to the node's
// last sequence then. Done once a delivery reaches that sequence, or when
// the node sends nothing for a while (the rest was not for this
// subscription).
class BacklogProgress {
 public:
  explicit BacklogProgress(ProgressLine line) : line_(std::move(line)) {}

  void Opened(const Subscriber& subscriber) {
    if (state_ != State::kUnknown || !line_.enabled()) return;
    const uint64_t last = subscriber.opened_last_sequence();
    if (last == 0) return;  // not open yet, or an empty log
    from_ = subscriber.opened_cursor();
    to_ = last;
    state_ = to_ > from_ ? State::kDraining : State::kDone;
    start_ = absl::Now();
  }
  void Delivered(uint64_t sequence) {
    if (state_ != State::kDraining) return;
    ++received_;
    if (sequence >= to_) {
      Finish();
      return;
    }
    line_.Update(absl::StrCat(
        "catching up: sequence ",
        CountOf(sequence > from_ ? sequence - from_ : 0, to_ - from_), ", ",
        received_, " alerts received"));
  }
  void Idle() {
    if (state_ == State::kDraining) Finish();
  }

 private:
  enum class State { kUnknown, kDraining, kDone };
  void Finish() {
    state_ = State::kDone;
    line_.Done(
        absl::StrCat("caught up: ", received_,
                     " alerts of the backlog up to sequence ", to_, " in ",
                     absl::FormatDuration(absl::Trunc(
                         absl::Now() - start_, absl::Milliseconds(100)))));
  }

  ProgressLine line_;
  State state_ = State::kUnknown;
  uint64_t from_ = 0;
  uint64_t to_ = 0;
  uint64_t received_ = 0;
  absl::Time start_;
};

int RunSubscribe(const Command& cmd, const ParsedFlags& flags, Io& io) {
  SubscribeOptions options;
  options.topics = flags.GetAll("topic");
  if (options.topics.empty()) return Usage(io, &cmd, "missing --topic");
  options.durable_name = flags.Get("durable");
  std::string from = flags.Get("from", "new");
  if (from == "new") {
    options.start = SubscribeOptions::Start::kNew;
  } else if (from == "earliest") {
    options.start = SubscribeOptions::Start::kEarliest;
  } else {
    absl::StatusOr<uint64_t> seq = ParseUintValue("from", from);
    if (!seq.ok() || *seq == 0) {
      return Usage(io, &cmd,
                   absl::StrCat("--from: '", from,
                                "' is not earliest, new or a "
                                "sequence number >= 1"));
    }
    options.start = SubscribeOptions::Start::kSequence;
    options.start_sequence = *seq;
  }
  uint64_t count = 0;
  if (flags.Has("count")) {
    absl::StatusOr<uint64_t> n = ParseUintValue("count", flags.Get("count"));
    if (!n.ok()) return Usage(io, &cmd, n.status().message());
    count = *n;
  }
  if (flags.Has("credit")) {
    absl::StatusOr<uint64_t> n = ParseUintValue("credit", flags.Get("credit"));
    if (!n.ok() || *n == 0 || *n > 65536) {
      return Usage(io, &cmd, "--credit must be between 1 and 65536");
    }
    options.credit = static_cast<uint32_t>(*n);
  }
  for (const std::string& t : options.topics) {
    if (absl::StatusOr<TopicPattern> p = TopicPattern::Parse(t); !p.ok()) {
      return Usage(io, &cmd, absl::StrCat("--topic: ", p.status().message()));
    }
  }

  std::optional<SignatureChecker> checker;
  if (flags.Bool("verify")) {
    if (!flags.Has("ca")) return Usage(io, &cmd, "--verify needs --ca");
    absl::StatusOr<SignatureChecker> made =
        SignatureChecker::FromFiles(flags.Get("ca"), flags.Get("crl-dir"));
    if (!made.ok()) {
      return Usage(io, &cmd,
                   absl::StrCat("--verify: ", made.status().message()));
    }
    checker = *std::move(made);
  } else if (flags.Has("crl-dir")) {
    return Usage(io, &cmd, "--crl-dir is only used with --verify");
  }

  auto connected = Connect(flags, cmd, io);
  if (int* code = std::get_if<int>(&connected)) return *code;
  std::unique_ptr<Client> client =
      std::move(std::get<std::unique_ptr<Client>>(connected));
  absl::StatusOr<std::unique_ptr<Subscriber>> subscriber =
      client->NewSubscriber(options);
  if (!subscriber.ok()) return Usage(io, &cmd, subscriber.status().message());

  g_interrupted = 0;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const bool json = flags.Bool("json");
  uint64_t received = 0;
  int exit_code = kExitOk;
  BacklogProgress backlog(MakeProgressLine(flags, io.err));
  while (count == 0 || received < count) {
    if (g_interrupted) {
      exit_code = kExitInterrupted;
      break;
    }
    absl::StatusOr<std::optional<v1::Delivery>> next =
        (*subscriber)->Next(absl::Milliseconds(250));
    if (!next.ok()) {
      exit_code = CallError(io, "subscription", next.status());
      break;
    }
    backlog.Opened(**subscriber);
    if (!next->has_value()) {
      backlog.Idle();
      continue;
    }
    const v1::Delivery& d = **next;
    backlog.Delivered(d.sequence());
    if (json) {
      PrintJsonOr(io, ToJsonLine(d));
    } else {
      io.out << FormatDelivery(d);
    }
    if (checker.has_value()) {
      // Human output: a line of the alert's block. --json: on stderr, so
      // that stdout stays one Delivery per line.
      std::ostream& to = json ? io.err : io.out;
      absl::StatusOr<AlertSigner> signer = checker->Verify(d.alert());
      if (signer.ok()) {
        to << "  signature: verified, signed by " << signer->originator << "\n";
      } else {
        to << "  signature: REFUSED: " << signer.status().message() << "\n";
        exit_code = kExitFailed;
      }
    }
    io.out.flush();
    (*subscriber)->Ack(d.sequence());
    ++received;
  }
  (*subscriber)->Stop();  // sends the last acknowledgement
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  return exit_code;
}

// ---- ibsm node info --------------------------------------------------------

int RunNodeInfo(const Command& cmd, const ParsedFlags& flags, Io& io) {
  auto connected = Connect(flags, cmd, io);
  if (int* code = std::get_if<int>(&connected)) return *code;
  std::unique_ptr<Client> client =
      std::move(std::get<std::unique_ptr<Client>>(connected));
  absl::StatusOr<v1::NodeInfo> info = client->NodeInfo();
  if (!info.ok()) return CallError(io, "node info", info.status());
  if (flags.Bool("json")) {
    PrintJsonOr(io, ToJsonLine(*info));
  } else {
    io.out << FormatNodeInfo(*info);
  }
  return kExitOk;
}

// ---- ibsm node links -------------------------------------------------------

int RunNodeLinks(const Command& cmd, const ParsedFlags& flags, Io& io) {
  v1::Links links;
  if (int code = CallUnary<v1::Node>(
          flags, cmd, RpcSpec{"node links", absl::Seconds(10)},
          &v1::Node::Stub::GetLinks, v1::LinksRequest(), &links, io);
      code != kExitOk) {
    return code;
  }
  if (flags.Bool("json")) {
    PrintJsonOr(io, ToJsonLine(links));
  } else {
    io.out << FormatLinks(links, absl::Now());
  }
  return kExitOk;
}

// ---- the table -------------------------------------------------------------

std::vector<Command> MakeCommands() {
  std::vector<Command> commands;
  commands.push_back(Command{
      {"publish"},
      "--id ID --topic TOPIC --classification LEVEL --severity SEVERITY "
      "[flags]",
      "Publish one alert and print its log sequence",
      "Stores the alert durably on the node and prints its sequence. "
      "Re-publishing the same --id is safe: the node answers with the\n"
      "original sequence and 'duplicate'. Transient failures are retried "
      "with the same id.\nThe alert is signed with --key as its originator "
      "(docs/signature-format.md) unless --unsigned is given.\nWith --spool "
      "DIR it is first written to the offline spool in DIR; if the node does "
      "not answer\nwithin --timeout it stays there (exit 3) and is sent by "
      "the next 'ibsm publish --spool DIR'\nor 'ibsm spool flush --spool "
      "DIR'.",
      {
          Flag("id", Kind::kValue, "ID",
               "alert id, unique per agency ([A-Za-z0-9._:-], <= 128)"),
          Flag("topic", Kind::kValue, "TOPIC",
               "e.g. terrorism.suspect-movement"),
          Flag("classification", Kind::kValue, "LEVEL", "e.g. RESTRICTED"),
          Flag("severity", Kind::kValue, "SEVERITY",
               "LOW, MEDIUM, HIGH or CRITICAL"),
          Flag("releasable-to", Kind::kRepeated, "A,B",
               "nodes or groups allowed to receive it"),
          Flag("orcon", Kind::kBool, "",
               "originator control: no onward sharing"),
          Flag("tlp", Kind::kValue, "LABEL",
               "CLEAR, GREEN, AMBER, AMBER+STRICT or RED"),
          Flag("expires-in", Kind::kValue, "DURATION",
               "expiry relative to now, e.g. 3600s, 72h"),
          Flag("expires-at", Kind::kValue, "RFC3339",
               "absolute expiry, e.g. 2025-06-30T00:00:00Z"),
          Flag("attr", Kind::kRepeated, "KEY=VALUE", "structured attribute"),
          Flag("content-type", Kind::kValue, "MIME", "type of the payload"),
          Flag("payload", Kind::kValue, "TEXT",
               "payload text (content type text/plain unless given)"),
          Flag("payload-file", Kind::kValue, "FILE",
               "payload from a file, '-' for standard input"),
          Flag("lat", Kind::kValue, "DEGREES", "latitude (WGS 84), with --lon"),
          Flag("lon", Kind::kValue, "DEGREES",
               "longitude (WGS 84), with --lat"),
          Flag("place", Kind::kValue, "NAME",
               "place name, e.g. \"Pogo border post\""),
          Flag("country", Kind::kValue, "ISO3",
               "country of the location, e.g. CIV"),
          Flag("updates", Kind::kValue, "ORIGINATOR/ID",
               "this alert supersedes that one (same originator, topic, "
               "classification and releasability)"),
          Flag("retracts", Kind::kValue, "ORIGINATOR/ID",
               "this alert withdraws that one (same originator, topic, "
               "classification and releasability)"),
          Flag("unsigned", Kind::kBool, "",
               "do not sign the alert (single-node development only: a "
               "federated node refuses it)"),
          Flag("spool", Kind::kValue, "DIR",
               "publish through the offline spool in DIR: the alert is "
               "kept there until the node stores it (exit 3 while it "
               "waits)"),
      },
      [](const ParsedFlags& f, Io& io) {
        return RunPublish(Commands()[0], f, io);
      }});
  commands.push_back(Command{
      {"subscribe"},
      "--topic PATTERN [--topic PATTERN ...] [flags]",
      "Print alerts on topics as they arrive, acknowledging each",
      "Prints each alert once (duplicates from redelivery are removed) and "
      "acknowledges it after printing.\nWith --durable the node remembers "
      "the position: the next run continues after the last acknowledged\n"
      "alert. Runs until --count alerts were printed, or Ctrl-C (exit 130).\n"
      "With --verify each alert's originator signature is checked and the "
      "result printed; a refused\nsignature makes the exit code 1.",
      {
          Flag("topic", Kind::kRepeated, "PATTERN",
               "topic pattern; '*' one segment, '>' the rest"),
          Flag("durable", Kind::kValue, "NAME",
               "durable subscription name (resume where it stopped)"),
          Flag("from", Kind::kValue, "WHERE",
               "earliest, new (default) or a sequence number; only for a new "
               "subscription"),
          Flag("count", Kind::kValue, "N",
               "exit 0 after N alerts (default: run until interrupted)"),
          Flag("credit", Kind::kValue, "N",
               "flow-control window (default 1024)"),
          Flag("verify", Kind::kBool, "",
               "verify each alert's originator signature against --ca"),
          Flag("crl-dir", Kind::kValue, "DIR",
               "with --verify: check revocation of every signing certificate "
               "with the CRLs in DIR"),
          Flag("progress", Kind::kBool, "",
               "show on stderr how far the backlog is drained (default: "
               "when stderr is a terminal)"),
      },
      [](const ParsedFlags& f, Io& io) {
        return RunSubscribe(Commands()[1], f, io);
      }});
  commands.push_back(Command{
      {"node", "info"},
      "",
      "Show the node's identity, state and the caller it sees",
      "Calls ibsm.v1.Node/GetInfo. 'caller' is the identity the node read "
      "from your certificate.",
      {},
      [](const ParsedFlags& f, Io& io) {
        return RunNodeInfo(Commands()[2], f, io);
      }});
  commands.push_back(Command{
      {"node", "links"},
      "[--json]",
      "Show the node's federation links: state, backlog, traffic, errors",
      "Calls ibsm.v1.Node/GetLinks (the caller needs ROLE_ADMIN or "
      "ROLE_AUDITOR at the node). One row per\nconfigured peer: STATE "
      "(connecting, up, down, refused), DIAL (the peer's address, or '(dials "
      "in)'),\nBACKLOG (alerts waiting, critical/high/other, their bytes and "
      "the bound federation.peers\nmax_backlog_*), IN-FLIGHT (sent, not yet "
      "acknowledged), SENT/RECV (alerts stored by the peer / here),\n"
      "REFUSED (either way), BYTES OUT/IN (link protocol bytes since the "
      "node started), LAST CONTACT and\nLAST ERROR. --json prints the "
      "ibsm.v1.Links message on one line.",
      {},
      [](const ParsedFlags& f, Io& io) {
        return RunNodeLinks(Commands()[3], f, io);
      }});
  for (Command& c : PolicyCommands()) commands.push_back(std::move(c));
  for (Command& c : AuditCommands()) commands.push_back(std::move(c));
  for (Command& c : SpoolCommands()) commands.push_back(std::move(c));
  // Later groups go here.
  return commands;
}

// The common flags that `c` does not define itself (a command may redefine
// one, e.g. a repeatable --target).
std::vector<FlagSpec> CommonFlagsOf(const Command& c) {
  std::vector<FlagSpec> out;
  for (const FlagSpec& s : CommonFlags()) {
    if (std::none_of(c.flags.begin(), c.flags.end(),
                     [&](const FlagSpec& f) { return f.name == s.name; })) {
      out.push_back(s);
    }
  }
  return out;
}

std::string CommandName(const Command& c) { return absl::StrJoin(c.path, " "); }

std::string GlobalHelp() {
  std::string out =
      "ibsm - command-line client of IBSM Exchange\n\n"
      "Usage: ibsm [common flags] <command> [flags]\n\nCommands:\n";
  size_t width = 0;
  for (const Command& c : Commands()) {
    width = std::max(width, CommandName(c).size());
  }
  for (const Command& c : Commands()) {
    std::string name = CommandName(c);
    absl::StrAppend(&out, "  ", name, std::string(width + 2 - name.size(), ' '),
                    c.summary, "\n");
  }
  absl::StrAppend(&out, "\nCommon flags:\n", FormatFlagHelp(CommonFlags()),
                  "\nExit codes: 0 success, 1 refused by the node or call "
                  "failed, 2 usage error, 3 alert spooled, not yet sent, "
                  "130 interrupted.\n"
                  "Run 'ibsm <command> --help' for the flags of a command.\n");
  return out;
}

std::string CommandHelp(const Command& c) {
  std::string out = absl::StrCat("Usage: ibsm ", CommandName(c), " ", c.args,
                                 "\n\n", c.summary, ".\n");
  if (!c.description.empty()) absl::StrAppend(&out, c.description, "\n");
  if (!c.flags.empty()) {
    absl::StrAppend(&out, "\nFlags:\n", FormatFlagHelp(c.flags));
  }
  absl::StrAppend(&out, "\nCommon flags:\n", FormatFlagHelp(CommonFlagsOf(c)));
  return out;
}

// Commands whose path starts with `words`.
std::vector<const Command*> Matching(const std::vector<std::string>& words) {
  std::vector<const Command*> out;
  for (const Command& c : Commands()) {
    if (c.path.size() >= words.size() &&
        std::equal(words.begin(), words.end(), c.path.begin())) {
      out.push_back(&c);
    }
  }
  return out;
}

bool TakesValue(const std::vector<FlagSpec>& specs, const std::string& arg) {
  if (arg.find('=') != std::string::npos) return false;
  for (const FlagSpec& s : specs) {
    if (arg == absl::StrCat("--", s.name)) return s.kind != Kind::kBool;
  }
  return false;
}

}  // namespace

const std::vector<FlagSpec>& CommonFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      Flag("target", Kind::kValue, "HOST:PORT", "the agency's node",
           "IBSM_TARGET"),
      Flag("ca", Kind::kValue, "FILE", "PEM root CA of the federation",
           "IBSM_CA"),
      Flag("cert", Kind::kValue, "FILE", "PEM agency certificate (with chain)",
           "IBSM_CERT"),
      Flag("key", Kind::kValue, "FILE", "PEM private key of the certificate",
           "IBSM_KEY"),
      Flag("server-name", Kind::kValue, "NAME",
           "name expected in the node's certificate, if not the host",
           "IBSM_SERVER_NAME"),
      Flag("server-node", Kind::kValue, "NODE",
           "node id expected in the node's certificate (spiffe://ibsm/NODE)",
           "IBSM_SERVER_NODE"),
      Flag("timeout", Kind::kValue, "DURATION",
           "connect and call timeout, retries included (default 10s/30s)"),
      Flag("json", Kind::kBool, "", "print one JSON object per line"),
      Flag("help", Kind::kBool, "", "show help"),
  };
  return *flags;
}

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>(MakeCommands());
  return *commands;
}

int RunCli(const std::vector<std::string>& argv, Io& io,
           const std::function<const char*(const char*)>& getenv) {
  // Split off the command words; common flags may come before them.
  std::vector<std::string> words, rest;
  // The first word that is not (the next word of) a command, met before the
  // command is complete: an unknown command or subcommand.
  std::string stray;
  bool help = false, done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--") {
      rest.insert(rest.end(), argv.begin() + i, argv.end());
      break;
    }
    if (a == "--help" || a == "-h") {
      help = true;
      continue;
    }
    if (!a.empty() && a[0] == '-') {
      rest.push_back(a);
      if (TakesValue(CommonFlags(), a) && i + 1 < argv.size()) {
        rest.push_back(argv[++i]);
      }
      continue;
    }
    if (!done && words.empty() && a == "help") {
      help = true;
      continue;
    }
    if (!done) {
      std::vector<std::string> candidate = words;
      candidate.push_back(a);
      if (!Matching(candidate).empty()) {
        words = std::move(candidate);
        for (const Command* c : Matching(words)) {
          if (c->path == words) done = true;
        }
        continue;
      }
      if (stray.empty()) stray = a;
    }
    rest.push_back(a);
  }

  if (words.empty()) {
    if (!stray.empty()) {
      return Usage(io, nullptr, absl::StrCat("unknown command '", stray, "'"));
    }
    if (help) {
      io.out << GlobalHelp();
      return kExitOk;
    }
    std::vector<std::string> names;
    for (const Command& c : Commands()) names.push_back(CommandName(c));
    return Usage(io, nullptr,
                 absl::StrCat("no command given; commands: ",
                              absl::StrJoin(names, ", ")));
  }
  const Command* cmd = nullptr;
  for (const Command* c : Matching(words)) {
    if (c->path == words) cmd = c;
  }
  if (cmd == nullptr) {  // a group without its subcommand, e.g. "ibsm node"
    std::vector<std::string> subs;
    for (const Command* c : Matching(words))
      subs.push_back(c->path[words.size()]);
    std::string group = absl::StrJoin(words, " ");
    if (!stray.empty()) {
      return Usage(io, nullptr,
                   absl::StrCat("unknown command '", group, " ", stray,
                                "'; use ", absl::StrJoin(subs, ", ")));
    }
    if (help) {
      io.out << "Usage: ibsm " << group << " <" << absl::StrJoin(subs, "|")
             << "> [flags]\n";
      return kExitOk;
    }
    return Usage(io, nullptr,
                 absl::StrCat("'ibsm ", group, "' needs a subcommand: ",
                              absl::StrJoin(subs, ", ")));
  }
  if (help) {
    io.out << CommandHelp(*cmd);
    return kExitOk;
  }
  std::vector<FlagSpec> specs = CommonFlagsOf(*cmd);
  specs.insert(specs.end(), cmd->flags.begin(), cmd->flags.end());
  std::vector<std::string> positional;
  absl::StatusOr<ParsedFlags> flags = ParseFlags(specs, rest, &positional);
  if (!flags.ok()) return Usage(io, cmd, flags.status().message());
  // A command with a --file flag takes the file as its one argument too
  // (`ibsm policy check FILE`).
  if (positional.size() == 1 && !flags->Has("file") &&
      std::any_of(cmd->flags.begin(), cmd->flags.end(),
                  [](const FlagSpec& s) { return s.name == "file"; })) {
    flags->Add("file", positional[0]);
    positional.clear();
  }
  // A command with a positional_flag takes its arguments as further values
  // of that flag when the flag was given (`--consistency A B`).
  if (!positional.empty() && !cmd->positional_flag.empty() &&
      flags->Has(cmd->positional_flag)) {
    for (std::string& p : positional)
      flags->Add(cmd->positional_flag, std::move(p));
    positional.clear();
  }
  if (!positional.empty()) {
    return Usage(io, cmd,
                 absl::StrCat("unexpected argument '", positional[0], "'"));
  }
  ApplyEnvironment(specs, getenv, &*flags);
  return cmd->run(*flags, io);
}

}  // namespace ibsm::cli
