#!/usr/bin/env python3
"""A delay line for kernels without `sch_netem`: holds every packet that an iptables NFQUEUE
rule hands it for DELAY milliseconds, then lets it go, in order. With

    iptables-legacy -A OUTPUT -o eth0 -j NFQUEUE --queue-num Q --queue-bypass

in a namespace it does what `tc qdisc add dev eth0 root netem delay DELAY ms` does there:
every packet that namespace sends (replies, SYN-ACKs, ACKs) leaves DELAY ms late, on new and
established connections alike. Nothing is dropped or changed; only the verdict waits.

    delay_line.py QUEUE DELAY_MS

Prints "ready" once bound to the queue. On SIGTERM it lets every packet it holds go at once and
exits; delete the iptables rule first (with --queue-bypass, packets queued while nothing is
bound pass undelayed instead of being dropped). It talks netlink itself (nfnetlink_queue), so
it needs nothing beyond Python and a kernel with NETFILTER_NETLINK_QUEUE.
"""
import collections
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attribute(kind, payload):
    header = struct.pack("=HH", 4 + len(payload), kind)
    return header + payload + b"\0" * (-(4 + len(payload)) % 4)


class Queue:
    """One nfnetlink_queue, bound and configured to copy packet metadata only."""

    def __init__(self, number):
        self.number = number
        self.sequence = 0
        self.socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.socket.bind((0, 0))
        self.request(NFQNL_MSG_CONFIG, attribute(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0)), ack=True)
        self.request(NFQNL_MSG_CONFIG, attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)), ack=True)
        self.request(NFQNL_MSG_CONFIG, attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 65536)), ack=True)

    def request(self, message, attributes, ack=False):
        self.sequence += 1
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, self.number) + attributes
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        self.socket.send(struct.pack("=IHHII", 16 + len(body), NFNL_SUBSYS_QUEUE << 8 | message, flags, self.sequence, 0) + body)
        if ack:
            reply = self.socket.recv(65536)
            kind = struct.unpack_from("=H", reply, 4)[0]
            code = struct.unpack_from("=i", reply, 16)[0] if kind == NLMSG_ERROR else 0
            if code != 0:
                raise OSError(-code, f"nfnetlink_queue refused configuration message {message}")

    def accept(self, packet_id):
        self.request(NFQNL_MSG_VERDICT, attribute(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id)))

    def packet_ids(self):
        """The ids of the packets in one read of the socket."""
        data = self.socket.recv(1 << 20)
        ids = []
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET):
                position = offset + 20  # nlmsghdr, nfgenmsg
                while position + 4 <= offset + length:
                    size, attribute_kind = struct.unpack_from("=HH", data, position)
                    if size < 4:
                        break
                    if attribute_kind & 0x7FFF == NFQA_PACKET_HDR:
                        ids.append(struct.unpack_from("!I", data, position + 4)[0])
                    position += (size + 3) & ~3
            offset += (length + 3) & ~3
        return ids


def main():
    number, delay = int(sys.argv[1]), int(sys.argv[2]) / 1000
    queue = Queue(number)
    held = collections.deque()  # (release time, packet id), oldest first
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    print("ready", flush=True)
    while not stopping:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.2
        try:
            readable, _, _ = select.select([queue.socket], [], [], min(timeout, 0.2))
        except InterruptedError:
            continue
        if readable:
            now = time.monotonic()
            held.extend((now + delay, packet_id) for packet_id in queue.packet_ids())
        now = time.monotonic()
        while held and held[0][0] <= now:
            queue.accept(held.popleft()[1])
    while held:
        queue.accept(held.popleft()[1])


if __name__ == "__main__":
    main()
