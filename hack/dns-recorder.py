#!/usr/bin/env python3
"""The local control plane's only DNS server: it resolves nothing and records everything.

    dns-recorder.py --listen 127.53.64.59 --log .local/cluster/dns-queries.log

Listens on UDP port 53 of one loopback address. Every datagram is appended to the log as one line,
written and flushed before the reply goes out:

    2025-01-01T12:00:00.123+00:00 A node-1. from 127.0.0.1:41234
    2025-01-01T12:00:00.456+00:00 malformed 7 bytes from 127.0.0.1:41235

and every query is answered REFUSED at once, echoing its question, so a resolver gives up quickly.
Names are logged with anything outside [A-Za-z0-9._*-] escaped as \\DDD. Nothing is forwarded
anywhere. A packet that cannot be parsed is logged as malformed and never stops the loop.
"""

import argparse
import datetime
import socket
import struct
import sys

REFUSED = 5
TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
         64: "SVCB", 65: "HTTPS", 255: "ANY"}
PLAIN = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")


def label_text(raw):
    return "".join(chr(b) if b in PLAIN else "\\%03d" % b for b in raw)


def question(packet):
    """(name, qtype, end of the question) of the first question, or None if there is none to read."""
    if len(packet) < 12 or struct.unpack_from("!H", packet, 4)[0] == 0:
        return None
    labels, i = [], 12
    while True:
        if i >= len(packet):
            return None
        n = packet[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(packet):  # resolvers never compress a lone question
            return None
        labels.append(label_text(packet[i:i + n]))
        i += n
    if i + 4 > len(packet):
        return None
    return ".".join(labels) + ".", struct.unpack_from("!H", packet, i)[0], i + 4


def refusal(packet, parsed):
    """The REFUSED answer to a query (None for a packet that is itself an answer or too short)."""
    if len(packet) < 12 or packet[2] & 0x80:
        return None
    ident = packet[0:2]
    flags = 0x8000 | (packet[2] & 0x79) << 8 | REFUSED  # QR, the query's opcode and RD, RCODE
    body = packet[12:parsed[2]] if parsed else b""
    return ident + struct.pack("!HHHHH", flags, 1 if parsed else 0, 0, 0, 0) + body


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="loopback address to listen on (UDP)")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--log", required=True, help="query log, appended to")
    args = ap.parse_args()
    if not args.listen.startswith("127."):
        sys.exit("dns-recorder: refusing a non-loopback address %s" % args.listen)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.listen, args.port))
    log = open(args.log, "a", encoding="ascii")
    print("listening on %s:%d, logging to %s" % (args.listen, args.port, args.log), file=sys.stderr, flush=True)
    while True:
        try:
            packet, peer = sock.recvfrom(65535)
        except OSError as e:
            print("receive failed: %s" % e, file=sys.stderr, flush=True)
            continue
        try:
            parsed = question(packet)
            what = "%s %s" % (TYPES.get(parsed[1], "TYPE%d" % parsed[1]), parsed[0]) if parsed else \
                "malformed %d bytes" % len(packet)
            stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
            log.write("%s %s from %s:%d\n" % (stamp, what, peer[0], peer[1]))
            log.flush()
            answer = refusal(packet, parsed)
            if answer is not None:
                sock.sendto(answer, peer)
        except Exception as e:  # one bad packet or a failed send must not end the recorder
            print("packet from %s: %r" % (peer, e), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
