#include "ibsm/client.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "alert_signing.h"
#include "backoff.h"
#include "ibsm/grpc_status.h"
#include "ibsm/publisher.h"
#include "ibsm/status_macros.h"
#include "ibsm/subscriber.h"
#include "ibsm/tls.h"
#include "ibsm/topic.h"
#include "ibsm/v1/broker.grpc.pb.h"

namespace ibsm {
namespace {

constexpr absl::string_view kSpiffePrefix = "spiffe://ibsm/";
constexpr int kMaxReceiveBytes = 64 << 20;

absl::Status CheckOptions(const ClientOptions& o) {
  if (o.target.empty()) {
    return absl::InvalidArgumentError("no target (host:port of the node) set");
  }
  if (o.ca_file.empty() || o.cert_file.empty() || o.key_file.empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS needs a CA file, a certificate file and a key file");
  }
  return absl::OkStatus();
}

}  // namespace

Client::Client(ClientOptions options, std::string identity,
               std::shared_ptr<grpc::Channel> channel,
               std::shared_ptr<const internal::AlertSigning> signing)
    : options_(std::move(options)),
      identity_(std::move(identity)),
      channel_(std::move(channel)),
      signing_(std::move(signing)) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ClientOptions& options) {
  IBSM_RETURN_IF_ERROR(CheckOptions(options));
  TlsFiles files;
  files.ca_file = options.ca_file;
  files.cert_file = options.cert_file;
  files.key_file = options.key_file;
  IBSM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                        MakeChannelCredentials(files, options.server_node));

  std::string identity;
  if (absl::StatusOr<std::string> uri = CertificateUri(options.cert_file);
      uri.ok() && absl::StartsWith(*uri, kSpiffePrefix)) {
    identity = uri->substr(kSpiffePrefix.size());
  }
  std::shared_ptr<const internal::AlertSigning> signing;
  if (options.sign_alerts) {
    IBSM_ASSIGN_OR_RETURN(
        signing, internal::LoadAlertSigning(options.cert_file, options.key_file,
                                            identity));
  }

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  if (options.keepalive_time > absl::ZeroDuration()) {
    args.SetInt(
        GRPC_ARG_KEEPALIVE_TIME_MS,
        static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  // Reconnect quickly after an outage; our own loops add jitter on top.
  args.SetInt(
      GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.backoff.initial)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.backoff.max)));
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, creds, args);

  if (options.connect_timeout > absl::ZeroDuration()) {
    absl::Time deadline = absl::Now() + options.connect_timeout;
    if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) {
      // Ask once more, fail-fast, so that gRPC tells us why (refused,
      // handshake failure, unknown host...).
      v1::Node::Stub stub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
      v1::NodeInfoRequest request;
      v1::NodeInfo info;
      absl::Status status = FromGrpcStatus(stub.GetInfo(&ctx, request, &info));
      if (!status.ok()) {
        return absl::UnavailableError(
            absl::StrCat("cannot connect to ", options.target, " within ",
                         absl::FormatDuration(options.connect_timeout), ": ",
                         status.message()));
      }
    }
  }
  return std::unique_ptr<Client>(new Client(
      options, std::move(identity), std::move(channel), std::move(signing)));
}

absl::StatusOr<v1::NodeInfo> Client::NodeInfo() {
  v1::Node::Stub stub(channel_);
  internal::Backoff backoff(options_.backoff);
  absl::Time give_up = absl::Now() + options_.retry_timeout;
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(
        std::min(give_up, absl::Now() + options_.call_timeout)));
    v1::NodeInfoRequest request;
    v1::NodeInfo info;
    absl::Status status = FromGrpcStatus(stub.GetInfo(&ctx, request, &info));
    if (status.ok()) return info;
    absl::Duration wait = backoff.Next();
    if (!internal::IsRetryable(status) || absl::Now() + wait >= give_up) {
      return status;
    }
    backoff.Wait(*channel_, wait);
  }
}

std::unique_ptr<Publisher> Client::NewPublisher() {
  return NewPublisher(PublisherOptions());
}

std::unique_ptr<Publisher> Client::NewPublisher(
    const PublisherOptions& options) {
  return std::unique_ptr<Publisher>(
      new Publisher(channel_, options_, options, signing_));
}

absl::StatusOr<std::unique_ptr<Publisher>> Client::OpenPublisher(
    const PublisherOptions& options) {
  std::unique_ptr<Publisher> publisher = NewPublisher(options);
  if (!options.spool_dir.empty()) {
    // The error that kept the spool from opening, if any.
    if (absl::StatusOr<SpoolState> state = publisher->spool_state();
        !state.ok()) {
      return state.status();
    }
  }
  return publisher;
}

absl::StatusOr<std::unique_ptr<Subscriber>> Client::NewSubscriber(
    const SubscribeOptions& options) {
  if (options.topics.empty()) {
    return absl::InvalidArgumentError(
        "a subscription needs at least one topic");
  }
  for (const std::string& t : options.topics) {
    absl::StatusOr<TopicPattern> p = TopicPattern::Parse(t);
    if (!p.ok()) return p.status();
  }
  if (options.credit == 0) {
    return absl::InvalidArgumentError("credit window must be at least 1");
  }
  if (options.start == SubscribeOptions::Start::kSequence &&
      options.start_sequence == 0) {
    return absl::InvalidArgumentError(
        "start at sequence needs a start_sequence of at least 1");
  }
  return std::unique_ptr<Subscriber>(
      new Subscriber(channel_, options_, options));
}

}  // namespace ibsm
