#include "spool_commands.h"

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "alert_format.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/alert.pb.h"
#include "json_writer.h"

namespace ibsm::cli {
namespace {

using Kind = FlagSpec::Kind;

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// A spool that cannot be used as given (missing, not a spool, held by
// another process, unreadable) is a bad --spool value: exit 2.
int SpoolError(Io& io, const Command& cmd, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kDataLoss:
      return UsageError(io, cmd, absl::StrCat("--spool: ", status.message()));
    default:
      return CallError(io, "spool", status);
  }
}

// Counts the results of alerts a Publisher found in its spool. Thread-safe
// (the Publisher calls it from its own thread).
class RecoveredResults {
 public:
  void Add(const absl::StatusOr<PublishReceipt>& result, Io& io) {
    absl::MutexLock lock(&mu_);
    if (result.ok()) {
      ++(result->duplicate ? duplicates_ : stored_);
    } else if (absl::IsCancelled(result.status())) {
      // Closed before an answer: still spooled, counted from the spool.
    } else {
      ++refused_;
      io.err << "ibsm: spooled alert refused: "
             << absl::StatusCodeToString(result.status().code()) << ": "
             << result.status().message() << "\n";
    }
  }
  uint64_t stored() const {
    absl::MutexLock lock(&mu_);
    return stored_;
  }
  uint64_t duplicates() const {
    absl::MutexLock lock(&mu_);
    return duplicates_;
  }
  uint64_t refused() const {
    absl::MutexLock lock(&mu_);
    return refused_;
  }

 private:
  mutable absl::Mutex mu_;
  uint64_t stored_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t duplicates_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

PublisherOptions SpoolPublisherOptions(const std::string& dir,
                                       RecoveredResults* recovered, Io& io) {
  PublisherOptions options;
  options.validate_locally = false;  // the CLI checked the alert itself
  options.spool_dir = dir;
  // The command has waited already; what is left stays spooled.
  options.close_timeout = absl::ZeroDuration();
  options.spool_recovered_result =
      [recovered, &io](absl::StatusOr<PublishReceipt> result) {
        recovered->Add(result, io);
      };
  return options;
}

// ---- ibsm spool status -----------------------------------------------------

int RunSpoolStatus(const Command& cmd, const ParsedFlags& flags, Io& io) {
  if (!flags.Has("spool")) return UsageError(io, cmd, "missing --spool DIR");
  absl::StatusOr<SpoolState> state = ReadSpoolState(flags.Get("spool"));
  if (!state.ok()) return SpoolError(io, cmd, state.status());
  if (flags.Bool("json")) {
    std::string refusals = "[";
    for (size_t i = 0; i < state->refusals.size(); ++i) {
      const SpoolRefusal& r = state->refusals[i];
      absl::StrAppend(
          &refusals, i == 0 ? "" : ",",
          JsonObject()
              .String("alert_id", r.alert_id)
              .String("code", absl::StatusCodeToString(r.status.code()))
              .String("message", r.status.message())
              .String("spooled_at", Rfc3339(r.spooled_at))
              .String("refused_at", Rfc3339(r.refused_at))
              .Close());
    }
    refusals += "]";
    JsonObject out;
    out.String("spool", state->dir)
        .Number("alerts", state->alerts)
        .Number("bytes", state->bytes)
        .Number("max_alerts", state->max_alerts)
        .Number("max_bytes", state->max_bytes);
    if (state->alerts > 0) {
      out.String("oldest_spooled_at", Rfc3339(state->oldest_spooled_at))
          .Number("oldest_age_seconds",
                  absl::ToInt64Seconds(state->oldest_age));
    } else {
      out.Null("oldest_spooled_at").Null("oldest_age_seconds");
    }
    out.Number("refused", state->refusals.size()).Raw("refusals", refusals);
    io.out << out.Close() << "\n";
    return kExitOk;
  }
  io.out << "spool " << state->dir << "\n"
         << "  waiting: " << state->alerts << " alerts, "
         << FormatBytes(state->bytes) << " (bounds: " << state->max_alerts
         << " alerts, " << FormatBytes(state->max_bytes) << ")\n";
  if (state->alerts > 0) {
    io.out << "  oldest:  spooled " << Rfc3339(state->oldest_spooled_at) << " ("
           << absl::FormatDuration(
                  absl::Trunc(state->oldest_age, absl::Seconds(1)))
           << " ago)\n";
  }
  io.out << "  refused: " << state->refusals.size() << "\n";
  for (const SpoolRefusal& r : state->refusals) {
    io.out << "    " << r.alert_id << "  refused " << Rfc3339(r.refused_at)
           << "  " << absl::StatusCodeToString(r.status.code()) << ": "
           << r.status.message() << "\n";
  }
  return kExitOk;
}

// ---- ibsm spool flush ------------------------------------------------------

int RunSpoolFlush(const Command& cmd, const ParsedFlags& flags, Io& io) {
  if (!flags.Has("spool")) return UsageError(io, cmd, "missing --spool DIR");
  const std::string dir = flags.Get("spool");
  absl::StatusOr<SpoolState> before = ReadSpoolState(dir);
  if (!before.ok()) return SpoolError(io, cmd, before.status());
  RecoveredResults results;
  uint64_t waiting = before->alerts;
  if (waiting > 0) {
    // The spooled alerts are signed already: no signing key is loaded.
    auto connected = Connect(flags, cmd, io, /*sign_alerts=*/false,
                             /*lazily=*/true);
    if (int* code = std::get_if<int>(&connected)) return *code;
    std::unique_ptr<Client> client =
        std::move(std::get<std::unique_ptr<Client>>(connected));
    absl::StatusOr<std::unique_ptr<Publisher>> publisher =
        client->OpenPublisher(SpoolPublisherOptions(dir, &results, io));
    if (!publisher.ok()) return SpoolError(io, cmd, publisher.status());
    // DEADLINE_EXCEEDED here only means that some alerts still wait.
    (void)(*publisher)->Flush(client->options().retry_timeout);
    absl::StatusOr<SpoolState> after = (*publisher)->spool_state();
    if (!after.ok()) return SpoolError(io, cmd, after.status());
    waiting = after->alerts;
    if (waiting > 0 && !after->last_error.ok() && !flags.Bool("json")) {
      io.err << "ibsm: the node did not take every spooled alert: "
             << after->last_error.ToString() << "\n";
    }
  }
  if (flags.Bool("json")) {
    io.out << JsonObject()
                  .String("spool", dir)
                  .Number("sent", results.stored() + results.duplicates())
                  .Number("duplicates", results.duplicates())
                  .Number("refused", results.refused())
                  .Number("spooled", waiting)
                  .Close()
           << "\n";
  } else {
    io.out << "spool " << dir << ": sent "
           << results.stored() + results.duplicates() << " ("
           << results.duplicates() << " already stored), refused "
           << results.refused() << ", still spooled " << waiting << "\n";
  }
  if (waiting > 0) return kExitSpooled;
  return results.refused() > 0 ? kExitFailed : kExitOk;
}

}  // namespace

int PublishThroughSpool(const Command& cmd, const ParsedFlags& flags, Io& io,
                        v1::Alert alert) {
  const std::string dir = flags.Get("spool");
  if (dir.empty()) return UsageError(io, cmd, "--spool: empty directory");
  // Lazily: an unreachable node is what the spool is for.
  auto connected = Connect(flags, cmd, io, !flags.Bool("unsigned"),
                           /*lazily=*/true);
  if (int* code = std::get_if<int>(&connected)) return *code;
  std::unique_ptr<Client> client =
      std::move(std::get<std::unique_ptr<Client>>(connected));
  RecoveredResults earlier;
  absl::StatusOr<std::unique_ptr<Publisher>> publisher =
      client->OpenPublisher(SpoolPublisherOptions(dir, &earlier, io));
  if (!publisher.ok()) return SpoolError(io, cmd, publisher.status());
  const std::string id = alert.id();
  std::future<absl::StatusOr<PublishReceipt>> result =
      (*publisher)->PublishAsync(std::move(alert));
  const absl::Duration wait = client->options().retry_timeout;
  if (result.wait_for(absl::ToChronoSeconds(wait)) ==
      std::future_status::ready) {
    absl::StatusOr<PublishReceipt> receipt = result.get();
    // Refused by the spool (full, disk error) or by the node.
    if (!receipt.ok()) return CallError(io, "publish", receipt.status());
    if (flags.Bool("json")) {
      absl::StatusOr<std::string> json = ReceiptJson(*receipt);
      if (json.ok()) io.out << *json << "\n";
    } else {
      io.out << FormatReceipt(*receipt);
    }
    if (uint64_t sent = earlier.stored() + earlier.duplicates(); sent > 0) {
      io.err << "ibsm: spool " << dir << ": " << sent
             << " alerts spooled earlier were sent too\n";
    }
    return kExitOk;
  }
  absl::StatusOr<SpoolState> state = (*publisher)->spool_state();
  std::string why = absl::StrCat("the node did not answer within ",
                                 absl::FormatDuration(wait));
  if (state.ok() && !state->last_error.ok()) {
    absl::StrAppend(&why, ": ", state->last_error.ToString());
  }
  if (flags.Bool("json")) {
    io.out << JsonObject()
                  .String("alert_id", id)
                  .Bool("spooled", true)
                  .String("spool", dir)
                  .Number("spool_alerts", state.ok() ? state->alerts : 0)
                  .String("reason", why)
                  .Close()
           << "\n";
  } else {
    io.out << "alert " << id << ": spooled in " << dir << " (" << why
           << "); it is sent by the next 'ibsm publish --spool " << dir
           << "' or 'ibsm spool flush --spool " << dir << "'\n";
  }
  return kExitSpooled;
}

std::vector<Command> SpoolCommands() {
  const FlagSpec spool_flag{"spool", Kind::kValue, "DIR",
                            "the spool directory (required)", ""};
  std::vector<Command> commands;
  commands.push_back(Command{
      {"spool", "status"},
      "--spool DIR [--json]",
      "Show what waits in an offline spool: alerts, bytes, bounds, refusals",
      "Reads the spool of 'ibsm publish --spool' or of an application's "
      "Publisher (PublisherOptions::spool_dir)\nwithout taking it: it works "
      "while another process publishes through it, and needs no node.\n"
      "Shows the alerts waiting for the node, their bytes, the bounds, the "
      "oldest one's age and the\nrecords of alerts the node refused.",
      {spool_flag},
      [](const ParsedFlags& f, Io& io) {
        return RunSpoolStatus(SpoolCommands()[0], f, io);
      }});
  commands.push_back(Command{
      {"spool", "flush"},
      "--spool DIR [--json]",
      "Send what waits in an offline spool and report counts",
      "Opens the spool (no other process may have it), sends its alerts in "
      "their order with their ids and\nsignatures, waits up to --timeout "
      "(default 30s) for the node's answers and prints how many were\nsent "
      "(and of those, already stored), refused and still spooled. Exit 0 "
      "when all were stored, 1 when\nthe node refused some (see 'ibsm spool "
      "status'), 3 when some still wait.",
      {spool_flag},
      [](const ParsedFlags& f, Io& io) {
        return RunSpoolFlush(SpoolCommands()[1], f, io);
      }});
  return commands;
}

}  // namespace ibsm::cli
