// One federation link's transport, as the link session sees it: a stream
// of LinkFrames both ways, whoever dialled. The gRPC transport
// (services/federation_transport.h) implements it for both ends of the
// FederationLink/Link call; the session code knows nothing of gRPC.
//
// Read() is called by one thread and Write() by another, concurrently;
// Cancel() may be called from any thread and makes both return false.
#ifndef IBSM_BROKER_FEDERATION_LINK_STREAM_H_
#define IBSM_BROKER_FEDERATION_LINK_STREAM_H_

#include <string>

#include "absl/status/status.h"

namespace ibsm::internal::v1 {
class LinkFrame;
}

namespace ibsm::broker {

class LinkStream {
 public:
  virtual ~LinkStream() = default;
  // The next frame from the peer; false when the stream ended.
  virtual bool Read(internal::v1::LinkFrame* frame) = 0;
  // False when the stream is broken.
  virtual bool Write(const internal::v1::LinkFrame& frame) = 0;
  // Ends the stream at once (both directions).
  virtual void Cancel() = 0;
  // For the dialling side: checks, once the peer's first frame arrived,
  // that the peer's certificate names `expected_node` (chain to the root,
  // CRLs, bound to that node's intermediate). The accepting side checked
  // its caller before the session started and answers OK.
  virtual absl::Status CheckPeer(const std::string& expected_node) = 0;
  // CertificateSha256 of the leaf certificate the peer presented in this
  // stream's handshake (empty if the transport has none): the audit record
  // of the link names it, so that after a rotation or a key compromise an
  // auditor knows which certificate each session of a peer used.
  virtual std::string PeerCertificateSha256() = 0;
};

}  // namespace ibsm::broker

#endif  // IBSM_BROKER_FEDERATION_LINK_STREAM_H_
