"""ibsm_client: a Python client of IBSM Exchange on Debian's grpc packages.

An example for agencies whose systems are written in Python: the same
wire protocol as the C++ library (docs/client-library.md), reduced to what an
integration needs and written to be read and copied:

  Client            one mutual-TLS channel to the agency's own node
                    (python3-grpcio), NodeInfo, Publish.
  signing_bytes     the originator signing input of docs/signature-format.md,
                    byte for byte, written out from the rules of that page
                    rather than trusted to the serializer.
  AlertSigner       signs alerts with the agency's key (python3-cryptography)
                    and sets originator and created_at first, as the format
                    requires.
  DurableSubscriber open, credit, ack, resume after reconnect.

Needs the stubs that the build generates from proto/ (protoc with
grpc_python_plugin into <build>/client-lib/python/gen; never committed) on
PYTHONPATH: `ibsm-py pythonpath` prints the path. Errors are IbsmError
(a grpc.StatusCode and the node's message); nothing else is raised for a
refusal or an unreachable node.

Threads: a Client, its AlertSigner and publish() may be used from several
threads (grpc channels are thread-safe). A DurableSubscriber is used by one
thread (next/ack/close); it owns one reader thread of its own.
"""

import datetime
import queue
import random
import re
import struct
import threading
import time
from collections import OrderedDict

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from google.protobuf import descriptor as _descriptor

from ibsm.v1 import alert_pb2, broker_pb2, broker_pb2_grpc

SIGNING_CONTEXT = b"IBSM-ALERT-SIGNATURE-V1\n"
_SIGNATURE_FIELDS = (21, 22)  # signature, signing_chain: not signed
_MAX_CHAIN_CERTIFICATES = 4
_MAX_CERTIFICATE_BYTES = 16 * 1024


class IbsmError(Exception):
    """A refusal or a failure, with the gRPC status code and the reason."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code.name, message))
        self.code = code
        self.message = message


# ---- the signing bytes (docs/signature-format.md) ---------------------------

_FD = _descriptor.FieldDescriptor
_VARINT_TYPES = (_FD.TYPE_BOOL, _FD.TYPE_ENUM, _FD.TYPE_INT32, _FD.TYPE_INT64,
                 _FD.TYPE_UINT32, _FD.TYPE_UINT64)


def _varint(value):
    if value < 0:  # rule 3: negative int32/int64 sign-extended to 64 bits
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _tag(number, wire_type):
    return _varint((number << 3) | wire_type)


def _length_delimited(number, payload):
    return _tag(number, 2) + _varint(len(payload)) + payload


def _scalar(field, value):
    """One tag-value of a scalar (rules 2 to 5)."""
    t = field.type
    if t in _VARINT_TYPES:
        return _tag(field.number, 0) + _varint(int(value))
    if t == _FD.TYPE_DOUBLE:
        return _tag(field.number, 1) + struct.pack("<d", value)
    if t == _FD.TYPE_STRING:
        return _length_delimited(field.number, value.encode("utf-8"))
    if t == _FD.TYPE_BYTES:
        return _length_delimited(field.number, bytes(value))
    if t == _FD.TYPE_MESSAGE:
        return _length_delimited(field.number, deterministic_bytes(value))
    raise IbsmError(grpc.StatusCode.UNIMPLEMENTED,
                    "field %s: type %d is not used by the IBSM schema and not "
                    "implemented here" % (field.full_name, t))


def _is_default(field, value):
    if field.type == _FD.TYPE_DOUBLE:
        # proto3 omits +0.0 only; -0.0 has a sign bit and is written.
        return value == 0 and struct.pack("<d", value) == b"\0" * 8
    return value in (0, False, "", b"")


def deterministic_bytes(message, skip_numbers=()):
    """Protobuf's deterministic serialization by the rules of
    docs/signature-format.md: known fields in increasing number, defaults
    omitted, present messages written even when empty, repeated fields in
    list order, map entries sorted by key with key and value always written.
    Unknown fields are refused (an alert built by this program has none)."""
    if message.UnknownFields():
        raise IbsmError(grpc.StatusCode.INVALID_ARGUMENT,
                        "%s has unknown fields: sign only alerts built with "
                        "this schema" % message.DESCRIPTOR.full_name)
    out = bytearray()
    for field in sorted(message.DESCRIPTOR.fields, key=lambda f: f.number):
        if field.number in skip_numbers:
            continue
        value = getattr(message, field.name)
        if field.message_type is not None and \
                field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for key in sorted(value, key=lambda k: k.encode("utf-8")
                              if isinstance(k, str) else k):
                entry = _scalar(key_field, key) + _scalar(value_field, value[key])
                out += _length_delimited(field.number, entry)
        elif field.label == _FD.LABEL_REPEATED:
            for element in value:
                out += _scalar(field, element)
        elif field.type == _FD.TYPE_MESSAGE:
            if message.HasField(field.name):
                out += _scalar(field, value)
        elif not _is_default(field, value):
            out += _scalar(field, value)
    return bytes(out)


def signing_bytes(alert):
    """The bytes an originator signs: the context line, then the alert's
    deterministic serialization without fields 21 and 22."""
    return SIGNING_CONTEXT + deterministic_bytes(alert, _SIGNATURE_FIELDS)


# ---- signing ----------------------------------------------------------------


def _spiffe_ids(certificate):
    try:
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)
            if u.startswith("spiffe://ibsm/")]


def agency_of(certificate):
    """"NODE/agency" from the certificate's one spiffe://ibsm/NODE/agency."""
    ids = _spiffe_ids(certificate)
    parts = ids[0][len("spiffe://ibsm/"):].split("/") if len(ids) == 1 else []
    if len(parts) != 2 or not all(parts):
        raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                        "certificate %s does not carry exactly one agency "
                        "identity spiffe://ibsm/NODE/agency (has %s)" %
                        (certificate.subject.rfc4514_string(), ids or "none"))
    return "/".join(parts)


_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _load_pem_certificates(data, path):
    # x509.load_pem_x509_certificates is cryptography 39+; Debian 12 has 38.
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                        "%s holds no PEM certificate" % path)
    for block in blocks:
        if len(block) > 2 * _MAX_CERTIFICATE_BYTES:
            raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                            "%s: a certificate of more than %d bytes" %
                            (path, _MAX_CERTIFICATE_BYTES))
    return [x509.load_pem_x509_certificate(b) for b in blocks]


class AlertSigner:
    """Signs alerts as the agency of cert_file with key_file (EC or RSA of
    at least 2048 bits). The chain sent is cert_file's certificates as DER,
    the agency's first, without a self-signed root."""

    def __init__(self, cert_file, key_file):
        with open(cert_file, "rb") as f:
            certificates = _load_pem_certificates(f.read(), cert_file)
        with open(key_file, "rb") as f:
            self._key = serialization.load_pem_private_key(f.read(), None)
        chain = [c for c in certificates if c.subject != c.issuer]
        if not chain or len(chain) > _MAX_CHAIN_CERTIFICATES:
            raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                            "%s: %d certificates besides a root; a signing "
                            "chain has 1 to %d" % (cert_file, len(chain),
                                                   _MAX_CHAIN_CERTIFICATES))
        leaf_key = chain[0].public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        own_key = self._key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        if leaf_key != own_key:
            raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                            "%s is not the key of the first certificate of %s"
                            % (key_file, cert_file))
        if isinstance(self._key, rsa.RSAPrivateKey):
            if self._key.key_size < 2048:
                raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                                "%s: RSA keys sign from 2048 bits" % key_file)
        elif not isinstance(self._key, ec.EllipticCurvePrivateKey):
            raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                            "%s: only EC and RSA keys sign alerts" % key_file)
        self.originator = agency_of(chain[0])
        self.chain_der = [c.public_bytes(serialization.Encoding.DER)
                          for c in chain]

    def sign(self, alert):
        """Sets originator and created_at (when unset), then signature and
        signing_chain. Sign once and resend the same bytes on retry."""
        if alert.originator and alert.originator != self.originator:
            raise IbsmError(grpc.StatusCode.INVALID_ARGUMENT,
                            "alert '%s' names originator %s; this certificate "
                            "is %s" % (alert.id, alert.originator,
                                       self.originator))
        alert.originator = self.originator
        if not alert.HasField("created_at"):
            alert.created_at.FromDatetime(
                datetime.datetime.now(datetime.timezone.utc))
        alert.ClearField("signature")
        alert.ClearField("signing_chain")
        data = signing_bytes(alert)
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        alert.signature = signature
        alert.signing_chain.extend(self.chain_der)
        return alert


# ---- the connection and publishing ------------------------------------------

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Backoff:
    """Exponential backoff with +-20 % jitter: 200 ms doubling to 30 s."""

    def __init__(self, initial=0.2, maximum=30.0):
        self._initial, self._maximum, self._next = initial, maximum, initial

    def pause(self):
        wait = self._next * random.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self._maximum)
        return wait

    def reset(self):
        self._next = self._initial


def _read(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise IbsmError(grpc.StatusCode.FAILED_PRECONDITION,
                        "cannot read the %s %s: %s" % (what, path, e.strerror))


class Client:
    """One mutual-TLS channel to the agency's node. The identity is the
    certificate's; server_name is the name to expect in the node's
    certificate when the target host is not one of its names."""

    def __init__(self, target, ca_file, cert_file, key_file, server_name=None,
                 sign=True, call_timeout=10.0, retry_timeout=30.0):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(ca_file, "CA file"),
            private_key=_read(key_file, "key file"),
            certificate_chain=_read(cert_file, "certificate file"))
        options = [("grpc.keepalive_time_ms", 30000),
                   ("grpc.max_receive_message_length", 8 << 20)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        self.target = target
        self.signer = AlertSigner(cert_file, key_file) if sign else None
        self.call_timeout = call_timeout
        self.retry_timeout = retry_timeout
        self._channel = grpc.secure_channel(target, credentials, options)
        self._publisher = broker_pb2_grpc.PublisherStub(self._channel)
        self._node = broker_pb2_grpc.NodeStub(self._channel)
        self.subscriber_stub = broker_pb2_grpc.SubscriberStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def node_info(self):
        try:
            return self._node.GetInfo(broker_pb2.NodeInfoRequest(),
                                      timeout=self.call_timeout,
                                      wait_for_ready=True)
        except grpc.RpcError as e:
            raise IbsmError(e.code(), e.details() or "")

    def publish(self, alerts):
        """Publishes alerts (signed first, once, when the client signs) and
        returns one PublishResult per alert: code 0 is stored durably
        (duplicate=True: stored before, same sequence). UNAVAILABLE and
        DEADLINE_EXCEEDED, of the call or of an alert, are retried with the
        same bytes for up to retry_timeout; a call that never succeeds, or
        that the node refuses as a whole (a signature that does not verify,
        a certificate it does not accept), raises IbsmError. A refusal of
        one alert (policy, validation) is that result's code."""
        if self.signer is not None:
            for alert in alerts:
                self.signer.sign(alert)
        pending = {a.id: a for a in alerts}
        results = {}
        deadline = time.monotonic() + self.retry_timeout
        backoff = Backoff()
        while True:
            request = broker_pb2.PublishRequest(alerts=list(pending.values()))
            error = None
            try:
                response = self._publisher.Publish(
                    request, timeout=self.call_timeout, wait_for_ready=True)
                for r in response.results:
                    if grpc.StatusCode.UNAVAILABLE.value[0] == r.code or \
                            grpc.StatusCode.DEADLINE_EXCEEDED.value[0] == r.code:
                        error = IbsmError(_code(r.code), r.message)
                        results[r.alert_id] = r
                        continue
                    results[r.alert_id] = r
                    pending.pop(r.alert_id, None)
            except grpc.RpcError as e:
                if e.code() not in _RETRYABLE:
                    raise IbsmError(e.code(), e.details() or "")
                error = IbsmError(e.code(), e.details() or "")
            if not pending:
                break
            pause = backoff.pause()
            if time.monotonic() + pause > deadline:
                if error is not None and not results:
                    raise error
                break
            time.sleep(pause)
        return [results[a.id] for a in alerts]

    def publish_one(self, alert):
        """Publishes one alert; returns its result, raises IbsmError when the
        node refused it."""
        result = self.publish([alert])[0]
        if result.code != 0:
            raise IbsmError(_code(result.code), result.message)
        return result


def _code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN


# ---- durable subscription ---------------------------------------------------

# The subscription ends for good on these; anything else is reconnected.
# ABORTED: another connection took the durable name over.
_TERMINAL = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
             grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
             grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED,
             grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.OUT_OF_RANGE)

START_NEW = broker_pb2.SubscribeRequest.Open.START_NEW
START_EARLIEST = broker_pb2.SubscribeRequest.Open.START_EARLIEST


class DurableSubscriber:
    """A subscription the node keeps a cursor for (durable_name, per agency).

    next(timeout) returns the next ibsm.v1.Delivery, or None on timeout;
    ack(sequence) says everything up to it is processed (cumulative; the
    node stores it as the cursor). Credit: the stream opens with `credit`
    deliveries allowed and half the window is granted again each time that
    many deliveries have been taken, so memory is bounded by the window.
    When the stream breaks, it is reopened with backoff; the node resumes
    after the stored cursor, and deliveries already taken (by sequence, or
    by originator and id) are dropped, so each alert is handed over once.
    A refusal (policy, bad pattern, takeover of the name) raises IbsmError
    from next(). close() sends the last ack and waits for the node to end
    the stream, which proves it read the ack."""

    def __init__(self, client, topics, durable_name, start=START_NEW,
                 credit=256, open_timeout=10.0, dedup_capacity=100000):
        if not durable_name:
            raise IbsmError(grpc.StatusCode.INVALID_ARGUMENT,
                            "a durable subscription needs a name")
        self._client = client
        self._topics = list(topics)
        self._name = durable_name
        self._start = start
        self._window = max(2, credit)
        self._deliveries = queue.Queue()
        self._lock = threading.Lock()
        self._requests = None  # the current stream's request queue
        self._generation = 0
        self._taken_credit = 0
        self._last_taken = 0
        self._acked = 0
        self._seen = OrderedDict()
        self._dedup_capacity = dedup_capacity
        self._closing = False
        self._call = None
        self.reconnects = 0
        self.cursor = None  # the node's cursor at the first open
        self._opened = threading.Event()
        self._reader = threading.Thread(target=self._run, daemon=True)
        self._reader.start()
        if not self._opened.wait(open_timeout):
            self.close()
            raise IbsmError(grpc.StatusCode.DEADLINE_EXCEEDED,
                            "the node %s did not open subscription %r within "
                            "%gs" % (client.target, durable_name, open_timeout))
        self._raise_if_ended()

    def _raise_if_ended(self):
        try:
            item = self._deliveries.queue[0]
        except IndexError:
            return
        if item[0] == "error" and self.cursor is None:
            raise item[1]

    def _requests_of(self, q):
        while True:
            r = q.get()
            if r is None:
                return  # half-close
            yield r

    def _run(self):
        backoff = Backoff()
        first = True
        while True:
            with self._lock:
                if self._closing:
                    return
                self._generation += 1
                generation = self._generation
                self._taken_credit = 0
                q = queue.Queue()
                self._requests = q
                acked = self._acked
            open_ = broker_pb2.SubscribeRequest.Open(
                topics=self._topics, durable_name=self._name,
                start=self._start, credit=self._window)
            q.put(broker_pb2.SubscribeRequest(open=open_))
            if acked:
                q.put(broker_pb2.SubscribeRequest(
                    flow=broker_pb2.SubscribeRequest.Flow(ack_sequence=acked)))
            try:
                self._call = self._client.subscriber_stub.Subscribe(
                    self._requests_of(q), wait_for_ready=True)
                for response in self._call:
                    if response.HasField("opened"):
                        if first:
                            self.cursor = response.opened.cursor
                            first = False
                            self._opened.set()
                        else:
                            self.reconnects += 1
                        backoff.reset()
                    for d in response.deliveries:
                        self._deliveries.put(("delivery", d, generation))
                status = None  # the node ended the stream
            except grpc.RpcError as e:
                status = IbsmError(e.code(), e.details() or "")
            q.put(None)  # ends the broken stream's request iterator
            with self._lock:
                if self._closing:
                    return
            if status is not None and status.code in _TERMINAL:
                self._deliveries.put(("error", status, generation))
                self._opened.set()
                return
            if status is None:
                status = IbsmError(grpc.StatusCode.UNAVAILABLE,
                                   "the node ended the stream")
            time.sleep(backoff.pause())

    def next(self, timeout=None):
        """The next delivery not handed over before, or None after timeout
        seconds. Raises IbsmError when the subscription ended for good."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else \
                max(0.0, deadline - time.monotonic())
            try:
                kind, value, generation = self._deliveries.get(
                    timeout=remaining)
            except queue.Empty:
                return None
            if kind == "error":
                raise value
            with self._lock:
                if generation != self._generation:
                    continue  # of a broken stream: it comes again
                self._taken_credit += 1
                if self._taken_credit >= self._window // 2:
                    self._requests.put(broker_pb2.SubscribeRequest(
                        flow=broker_pb2.SubscribeRequest.Flow(
                            credit=self._taken_credit)))
                    self._taken_credit = 0
                if value.sequence <= self._last_taken:
                    continue  # the overlap after a reconnect
                self._last_taken = value.sequence
                key = (value.alert.originator, value.alert.id)
                if key in self._seen:
                    self._seen.move_to_end(key)
                    continue
                self._seen[key] = True
                if len(self._seen) > self._dedup_capacity:
                    self._seen.popitem(last=False)
            return value

    def ack(self, sequence):
        """Everything up to sequence is processed."""
        with self._lock:
            if sequence <= self._acked:
                return
            self._acked = sequence
            if self._requests is not None:
                self._requests.put(broker_pb2.SubscribeRequest(
                    flow=broker_pb2.SubscribeRequest.Flow(
                        ack_sequence=sequence)))

    def close(self, timeout=2.0):
        """Half-closes the stream after the last ack and waits up to timeout
        seconds for the node to end it."""
        with self._lock:
            self._closing = True
            if self._requests is not None:
                self._requests.put(None)
        self._reader.join(timeout)
        if self._reader.is_alive() and self._call is not None:
            self._call.cancel()
            self._reader.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
