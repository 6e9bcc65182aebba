#include "services/federation_transport.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "context/node_context.h"
#include "ibsm/certificates.h"
#include "ibsm/internal/v1/federation.grpc.pb.h"
#include "ibsm/status_macros.h"
#include "services/authenticate.h"
#include "services/grpc_status.h"
#include "services/peer_verifier.h"

namespace ibsm::broker {

using internal::v1::LinkFrame;

namespace {

constexpr absl::Duration kConnectTimeout = absl::Seconds(5);
// The biggest frame: a window of alerts of the largest size is split into
// frames of about 1 MiB, but one alert may be up to max_alert_bytes.
constexpr int kMaxFrameBytes = 64 << 20;

// CertificateSha256 of the peer's leaf certificate in `auth`, or empty.
std::string LeafSha256(const grpc::AuthContext* auth) {
  if (auth == nullptr) return "";
  std::vector<grpc::string_ref> pem =
      auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return "";
  return CertificateSha256(absl::string_view(pem[0].data(), pem[0].size()));
}

class ServerLinkStream final : public LinkStream {
 public:
  ServerLinkStream(grpc::ServerContext* context,
                   grpc::ServerReaderWriter<LinkFrame, LinkFrame>* stream)
      : context_(context), stream_(stream) {}
  bool Read(LinkFrame* frame) override { return stream_->Read(frame); }
  bool Write(const LinkFrame& frame) override { return stream_->Write(frame); }
  void Cancel() override { context_->TryCancel(); }
  absl::Status CheckPeer(const std::string&) override {
    return absl::OkStatus();  // the caller was authenticated before
  }
  std::string PeerCertificateSha256() override {
    return LeafSha256(context_->auth_context().get());
  }

 private:
  grpc::ServerContext* const context_;
  grpc::ServerReaderWriter<LinkFrame, LinkFrame>* const stream_;
};

class FederationService final : public internal::v1::FederationLink::Service {
 public:
  FederationService(NodeContext* node, LinkManager* links)
      : node_(node), links_(links) {}

  grpc::Status Link(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<LinkFrame, LinkFrame>* stream) override {
    std::unique_ptr<LiveCalls::Registration> live;
    absl::StatusOr<Identity> who =
        AuthenticateCall(node_, context, "federation link", &live);
    if (!who.ok()) return ToGrpcStatus(who.status());
    if (who->is_agency()) {
      absl::Status refused = absl::PermissionDeniedError(absl::StrCat(
          "the federation port serves node certificates only; ", who->id(),
          " is an agency certificate: use the client port"));
      AuditRefusedCall(node_, who->id(), "federation link", refused);
      return ToGrpcStatus(refused);
    }
    context->set_compression_algorithm(GRPC_COMPRESS_GZIP);
    ServerLinkStream adapter(context, stream);
    absl::Status served = links_->Serve(who->node, &adapter);
    if (!served.ok()) {
      AuditRefusedCall(node_, who->id(), "federation link", served);
      return ToGrpcStatus(served);
    }
    return grpc::Status::OK;
  }

 private:
  NodeContext* const node_;
  LinkManager* const links_;
};

class ClientLinkStream final : public LinkStream {
 public:
  ClientLinkStream(std::shared_ptr<grpc::Channel> channel,
                   PeerVerifier* verifier, std::string address)
      : channel_(std::move(channel)),
        stub_(internal::v1::FederationLink::NewStub(channel_)),
        verifier_(verifier),
        address_(std::move(address)) {
    context_.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    stream_ = stub_->Link(&context_);
  }
  ~ClientLinkStream() override {
    context_.TryCancel();
    (void)stream_->Finish();
  }
  bool Read(LinkFrame* frame) override { return stream_->Read(frame); }
  bool Write(const LinkFrame& frame) override { return stream_->Write(frame); }
  void Cancel() override { context_.TryCancel(); }
  std::string PeerCertificateSha256() override {
    return LeafSha256(context_.auth_context().get());
  }
  absl::Status CheckPeer(const std::string& expected_node) override {
    std::shared_ptr<const grpc::AuthContext> auth = context_.auth_context();
    absl::StatusOr<Identity> who = AuthenticatePeer(verifier_, auth.get());
    if (!who.ok()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the node at ", address_, " (configured as ", expected_node,
          ") presents a certificate that is refused: ",
          who.status().message()));
    }
    if (who->is_agency() || who->node != expected_node) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the node at ", address_, " presents the certificate of ", who->id(),
          ", not of ", expected_node, " as federation.peers says"));
    }
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<internal::v1::FederationLink::Stub> stub_;
  PeerVerifier* const verifier_;
  const std::string address_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<LinkFrame, LinkFrame>> stream_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeFederationService(NodeContext* node,
                                                     LinkManager* links) {
  return std::make_unique<FederationService>(node, links);
}

LinkManager::Dialer MakeFederationDialer(NodeContext* node) {
  return [node](const internal::v1::PeerConfig& peer)
             -> absl::StatusOr<std::unique_ptr<LinkStream>> {
    const internal::v1::TlsConfig& tls = node->config().tls();
    grpc::SslCredentialsOptions files;
    IBSM_ASSIGN_OR_RETURN(files.pem_root_certs,
                          ReadFileToString(tls.ca_file()));
    IBSM_ASSIGN_OR_RETURN(files.pem_private_key,
                          ReadFileToString(tls.key_file()));
    IBSM_ASSIGN_OR_RETURN(files.pem_cert_chain,
                          ReadFileToString(tls.cert_file()));
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxFrameBytes);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    // One channel per dial: the link's own backoff decides when to retry.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
        peer.address(), grpc::SslCredentials(files), args);
    if (!channel->WaitForConnected(
            std::chrono::system_clock::now() +
            absl::ToChronoNanoseconds(kConnectTimeout))) {
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to ", peer.node_id(), " at ", peer.address(),
          " within ", absl::FormatDuration(kConnectTimeout),
          " (down, unreachable, or its certificate or ours refused)"));
    }
    return std::unique_ptr<LinkStream>(std::make_unique<ClientLinkStream>(
        std::move(channel), node->peer_verifier(), peer.address()));
  };
}

}  // namespace ibsm::broker
