"""ibsm-py: the Python client's command line (client-lib/python/ibsm_client.py).

  ibsm-py publish --id ID --topic T --classification C --severity S [...]
  ibsm-py subscribe --topic P [--topic P2 ...] --durable NAME [--from earliest|new]
                    [--count N] [--idle SECONDS]
  ibsm-py info                            the node, and who it says you are
  ibsm-py signing-bytes ALERT.textproto   the signing bytes, in hex
  ibsm-py pythonpath                      PYTHONPATH for your own program

Connection flags and their environment variables are the C++ CLI's
(docs/cli.md): --target/IBSM_TARGET, --ca/IBSM_CA, --cert/IBSM_CERT,
--key/IBSM_KEY, --server-name/IBSM_SERVER_NAME. Exit codes: 0 success, 1 the
node refused or the call failed (one line on stderr: the gRPC status code and
the node's reason), 2 usage error.
"""

import argparse
import os
import sys

import grpc
from google.protobuf import text_format

import ibsm_client
from ibsm.v1 import alert_pb2

SEVERITIES = {"LOW": alert_pb2.SEVERITY_LOW, "MEDIUM": alert_pb2.SEVERITY_MEDIUM,
              "HIGH": alert_pb2.SEVERITY_HIGH,
              "CRITICAL": alert_pb2.SEVERITY_CRITICAL}


def _connection_flags(parser):
    env = os.environ.get
    parser.add_argument("--target", default=env("IBSM_TARGET"))
    parser.add_argument("--ca", default=env("IBSM_CA"))
    parser.add_argument("--cert", default=env("IBSM_CERT"))
    parser.add_argument("--key", default=env("IBSM_KEY"))
    parser.add_argument("--server-name", default=env("IBSM_SERVER_NAME"))
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds per call; retries for 3 times as long")


def _client(args, sign=True):
    for flag in ("target", "ca", "cert", "key"):
        if not getattr(args, flag):
            _usage("--%s (or IBSM_%s) is required" % (flag, flag.upper()))
    return ibsm_client.Client(args.target, args.ca, args.cert, args.key,
                              server_name=args.server_name, sign=sign,
                              call_timeout=args.timeout,
                              retry_timeout=3 * args.timeout)


def _usage(message):
    print("ibsm-py: %s" % message, file=sys.stderr)
    sys.exit(2)


def publish(args):
    alert = alert_pb2.Alert(id=args.id, topic=args.topic,
                            classification=args.classification,
                            severity=SEVERITIES[args.severity],
                            content_type=args.content_type,
                            payload=args.payload.encode("utf-8"), tlp=args.tlp)
    for pair in args.attribute:
        key, sep, value = pair.partition("=")
        if not sep:
            _usage("--attribute %r is not KEY=VALUE" % pair)
        alert.attributes[key] = value
    with _client(args, sign=not args.unsigned) as client:
        result = client.publish_one(alert)
    print("published %s as sequence %d%s" %
          (result.alert_id, result.sequence,
           " (duplicate)" if result.duplicate else ""))


def subscribe(args):
    start = ibsm_client.START_EARLIEST if args.start == "earliest" \
        else ibsm_client.START_NEW
    taken = 0
    with _client(args, sign=False) as client:
        sub = ibsm_client.DurableSubscriber(client, args.topic, args.durable,
                                            start=start, credit=args.credit)
        try:
            while args.count == 0 or taken < args.count:
                d = sub.next(timeout=args.idle)
                if d is None:
                    if args.idle is not None:
                        break  # nothing more within --idle
                    continue
                a = d.alert
                print("#%d %s %s %s %s%s" % (
                    d.sequence, a.originator, a.id, a.topic, a.classification,
                    " signed" if a.signature else ""), flush=True)
                sub.ack(d.sequence)
                taken += 1
        finally:
            sub.close()
    print("received %d, reconnected %d times" % (taken, sub.reconnects),
          file=sys.stderr)


def info(args):
    with _client(args, sign=False) as client:
        node = client.node_info()
    print("node %s (%s), caller %s, last sequence %d" %
          (node.node_id, node.version, node.caller, node.last_sequence))


def show_signing_bytes(args):
    alert = alert_pb2.Alert()
    with open(args.file) as f:
        text_format.Parse(f.read(), alert)
    data = ibsm_client.signing_bytes(alert)
    print("%d bytes" % len(data))
    hex_ = data.hex()
    for i in range(0, len(hex_), 74):
        print(hex_[i:i + 74])


def main():
    parser = argparse.ArgumentParser(prog="ibsm-py")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("publish", help="publish one signed alert")
    _connection_flags(p)
    p.add_argument("--id", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--classification", required=True)
    p.add_argument("--severity", required=True, choices=sorted(SEVERITIES))
    p.add_argument("--payload", default="")
    p.add_argument("--content-type", default="text/plain")
    p.add_argument("--tlp", default="")
    p.add_argument("--attribute", action="append", default=[],
                   metavar="KEY=VALUE")
    p.add_argument("--unsigned", action="store_true",
                   help="do not sign (a federated node refuses it)")
    p.set_defaults(run=publish)

    p = commands.add_parser("subscribe", help="durable subscription")
    _connection_flags(p)
    p.add_argument("--topic", action="append", required=True)
    p.add_argument("--durable", required=True)
    p.add_argument("--from", dest="start", choices=("earliest", "new"),
                   default="new", help="where a new durable name starts")
    p.add_argument("--count", type=int, default=0,
                   help="exit after N alerts (0: run until interrupted)")
    p.add_argument("--credit", type=int, default=256,
                   help="deliveries the node may send ahead (the window)")
    p.add_argument("--idle", type=float, default=None,
                   help="exit when nothing arrives for this many seconds")
    p.set_defaults(run=subscribe)

    p = commands.add_parser("info", help="the node, and who it says you are")
    _connection_flags(p)
    p.set_defaults(run=info)

    p = commands.add_parser("signing-bytes",
                            help="the signing bytes of an alert in text format")
    p.add_argument("file")
    p.set_defaults(run=show_signing_bytes)

    p = commands.add_parser("pythonpath", help="PYTHONPATH for this client")
    p.set_defaults(run=lambda args: print(os.environ.get("PYTHONPATH", "")))

    args = parser.parse_args()
    try:
        args.run(args)
    except ibsm_client.IbsmError as e:
        print("ibsm-py: %s" % e, file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:  # unreadable or malformed files
        print("ibsm-py: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
