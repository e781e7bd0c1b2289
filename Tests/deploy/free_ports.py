"""Free loopback ports for the servers the Python suites start (deploy/local stacks, instances).

Ports are drawn below 32768, outside Linux's ephemeral range (32768–60999): a port picked
there is free when picked, but before the server starts on it the kernel may hand it to any
outgoing connection as its source port (and deploy/local warns of such ports). A port is
never handed out twice by one process, and only one that can be bound now.
"""
import random
import socket

_LOW, _HIGH = 22000, 32000
_handed_out = set()


def free_port():
    for _ in range(1000):
        port = random.randrange(_LOW, _HIGH)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port between {_LOW} and {_HIGH}")
