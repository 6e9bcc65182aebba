// A publishing process for the spool tests (tests/integration/
// spool_publisher_test.cc), which SIGKILL it mid-stream and start it again
// on the same spool:
//
//   ibsm-spool-test-publisher TARGET CA CERT KEY SPOOL_DIR PREFIX COUNT
//
// Publishes COUNT alerts PREFIX-0 .. PREFIX-(COUNT-1) through a Publisher
// with PublisherOptions::spool_dir = SPOOL_DIR, printing "spooled ID" once
// PublishAsync has returned with the alert synced to the spool, then
// flushes. With COUNT 0 it only sends what the spool holds (printing
// "recovered ID" for each result). Ends with "done N", N the alerts left in
// the spool; exit 0 once it is empty, 1 otherwise.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ibsm/client.h"
#include "ibsm/publisher.h"
#include "ibsm/v1/alert.pb.h"

namespace {

absl::Mutex output_mu;

void Line(const std::string& line) {
  absl::MutexLock lock(&output_mu);
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr,
                 "usage: %s TARGET CA CERT KEY SPOOL_DIR PREFIX COUNT\n",
                 argv[0]);
    return 2;
  }
  int count = 0;
  if (!absl::SimpleAtoi(argv[7], &count) || count < 0) {
    std::fprintf(stderr, "COUNT must be a number >= 0\n");
    return 2;
  }
  ibsm::ClientOptions options;
  options.target = argv[1];
  options.ca_file = argv[2];
  options.cert_file = argv[3];
  options.key_file = argv[4];
  options.connect_timeout = absl::ZeroDuration();  // the node may be down
  options.backoff.initial = absl::Milliseconds(50);
  options.backoff.max = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<ibsm::Client>> client =
      ibsm::Client::Connect(options);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 2;
  }
  ibsm::PublisherOptions publisher_options;
  publisher_options.spool_dir = argv[5];
  // A small window and batches: many requests on the stream, so that a
  // kill lands between them.
  publisher_options.max_in_flight = 16;
  publisher_options.max_batch = 4;
  std::atomic<int> failed{0};
  publisher_options.spool_recovered_result =
      [&failed](absl::StatusOr<ibsm::PublishReceipt> r) {
        if (r.ok()) {
          Line(absl::StrCat("recovered ", r->alert_id,
                            r->duplicate ? " duplicate" : ""));
        } else {
          ++failed;
          Line(absl::StrCat("error ", r.status().ToString()));
        }
      };
  absl::StatusOr<std::unique_ptr<ibsm::Publisher>> publisher =
      (*client)->OpenPublisher(publisher_options);
  if (!publisher.ok()) {
    std::fprintf(stderr, "spool: %s\n", publisher.status().ToString().c_str());
    return 2;
  }
  const std::string prefix = argv[6];
  for (int i = 0; i < count; ++i) {
    ibsm::v1::Alert alert;
    alert.set_id(absl::StrCat(prefix, "-", i));
    alert.set_topic("border.incident");
    alert.set_classification("RESTRICTED");
    alert.set_severity(ibsm::v1::SEVERITY_HIGH);
    alert.set_content_type("text/plain");
    alert.set_payload(absl::StrCat("spooled alert ", i));
    // Set when PublishAsync refused the alert before returning (spool full,
    // write error): then it was not accepted.
    auto refused = std::make_shared<std::atomic<bool>>(false);
    (*publisher)
        ->PublishAsync(alert, [&failed, refused, id = alert.id()](
                                  absl::StatusOr<ibsm::PublishReceipt> r) {
          if (!r.ok()) {
            refused->store(true);
            ++failed;
            Line(absl::StrCat("error ", id, " ", r.status().ToString()));
          }
        });
    if (!refused->load()) Line(absl::StrCat("spooled ", alert.id()));
    absl::SleepFor(absl::Milliseconds(1));
  }
  (void)(*publisher)->Flush(absl::Seconds(60));  // the state below tells
  absl::StatusOr<ibsm::SpoolState> state = (*publisher)->spool_state();
  const uint64_t left = state.ok() ? state->alerts : 1;
  Line(absl::StrCat("done ", left));
  return left == 0 && failed == 0 ? 0 : 1;
}
