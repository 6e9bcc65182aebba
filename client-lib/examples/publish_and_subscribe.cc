// ibsm-example: the smallest complete IBSM Exchange client. Copy it as the
// starting point of an agency integration.
//
//   ibsm-example HOST:PORT CA.pem CERT-chain.pem KEY.pem
//
// It connects with the agency certificate, opens a durable subscription on
// "border.>", publishes one alert on "border.incident", receives it back
// (if the sharing policy lets this agency read its own topic), prints it and
// acknowledges it, so the next run of the same durable subscription starts
// after it.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ibsm/ibsm.h"  // Client, Publisher, Subscriber, v1 messages

namespace {

absl::Status Run(const ibsm::ClientOptions& options) {
  // 1. Connect: checks the certificate files and reaches the node.
  IBSM_ASSIGN_OR_RETURN(std::unique_ptr<ibsm::Client> client,
                        ibsm::Client::Connect(options));
  std::printf("connected to %s as %s\n", options.target.c_str(),
              client->identity().c_str());

  // 2. Subscribe first (durable: the node keeps our position), so that the
  //    alert published below is delivered to us.
  ibsm::SubscribeOptions sub_options;
  sub_options.topics = {"border.>"};
  sub_options.durable_name = "example";
  sub_options.start = ibsm::SubscribeOptions::Start::kNew;
  IBSM_ASSIGN_OR_RETURN(std::unique_ptr<ibsm::Subscriber> subscriber,
                        client->NewSubscriber(sub_options));
  // The first Next opens the subscription; nothing has been published yet.
  IBSM_ASSIGN_OR_RETURN(std::optional<ibsm::v1::Delivery> early,
                        subscriber->Next(absl::Milliseconds(100)));
  if (early.has_value()) subscriber->Ack(early->sequence());

  // 3. Publish one alert. The id is ours to choose: publishing it again
  //    (e.g. after a crash) is answered with the same sequence.
  ibsm::v1::Alert alert;
  alert.set_id(absl::StrCat("example-", absl::ToUnixMillis(absl::Now())));
  alert.set_topic("border.incident");
  alert.set_classification("RESTRICTED");
  alert.set_severity(ibsm::v1::SEVERITY_MEDIUM);
  alert.set_content_type("text/plain");
  alert.set_payload("Vehicle crossed the border post without stopping.");
  (*alert.mutable_attributes())["vehicle"] = "white pickup";
  std::unique_ptr<ibsm::Publisher> publisher = client->NewPublisher();
  IBSM_ASSIGN_OR_RETURN(ibsm::PublishReceipt receipt,
                        publisher->Publish(alert));
  std::printf("published %s as sequence %llu%s\n", receipt.alert_id.c_str(),
              static_cast<unsigned long long>(receipt.sequence),
              receipt.duplicate ? " (duplicate)" : "");

  // 4. Receive it and acknowledge it once processed.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    IBSM_ASSIGN_OR_RETURN(std::optional<ibsm::v1::Delivery> delivery,
                          subscriber->Next(absl::Seconds(1)));
    if (!delivery.has_value()) continue;
    std::printf(
        "received #%llu %s/%s on %s: %s\n",
        static_cast<unsigned long long>(delivery->sequence()),
        delivery->alert().originator().c_str(), delivery->alert().id().c_str(),
        delivery->alert().topic().c_str(), delivery->alert().payload().c_str());
    subscriber->Ack(delivery->sequence());  // processed: move the cursor
    if (delivery->alert().id() == alert.id()) {
      subscriber->Stop();  // sends the acknowledgement before closing
      return absl::OkStatus();
    }
  }
  return absl::DeadlineExceededError(
      "our alert did not come back within 10s; does the policy let this "
      "agency subscribe to border.incident?");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s HOST:PORT CA.pem CERT-chain.pem KEY.pem\n",
                 argv[0]);
    return 2;
  }
  ibsm::ClientOptions options;
  options.target = argv[1];
  options.ca_file = argv[2];
  options.cert_file = argv[3];
  options.key_file = argv[4];
  absl::Status status = Run(options);
  if (!status.ok()) {
    std::fprintf(stderr, "ibsm-example: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
