"""The keys nginx counts login attempts against (nginx/session-store.conf.template,
`$login_limit_key` and `$login_limit_site`): an IPv4 client's address, an IPv6 client's /64,
and its /48 with ten times the allowance.

Counted per IPv6 address, a guesser with one /64 (what one host or one mobile subscriber gets)
had 2^64 allowances of 60 attempts a minute; per /64 alone, a /56 or /48 holder had 256 to
65 536 (attack review s22). Two tests, both with real nginx:

- the template's own map blocks, fed addresses through realip, for every way nginx writes an
  IPv6 address (the "::" before, inside or after the /64, single zero groups, IPv4-mapped), and
  the addresses that stand for one client each (translated IPv4, Teredo, link-local);
- the whole rendered template in a network namespace, with real IPv6 clients: past the burst,
  a second address of the same /64 gets 429, and so does a fresh /64 of a /48 that has spent
  its allowance, while another /48 does not.
"""
import contextlib
import http.client
import ipaddress
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import netns
from free_ports import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "nginx", "session-store.conf.template")


def map_block():
    text = open(TEMPLATE).read()
    match = re.search(r"#@begin login_limit_key\n(.*?)#@end login_limit_key\n", text, flags=re.S)
    assert match, "the template marks its login limit key map"
    return match.group(1)


def wait_for_port(host, port, process, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, "nginx exited"
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port} after {timeout} s")


@contextlib.contextmanager
def nginx_with_map():
    """nginx with the template's map; `GET /` answers the key for the address in X-Client-Address."""
    folder = tempfile.mkdtemp(prefix="login-limit-key-")
    port = free_port()
    config = os.path.join(folder, "nginx.conf")
    temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(config, "w") as f:
        f.write(f"""worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
{map_block()}
    server {{
        listen 127.0.0.1:{port};
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Client-Address;
        location / {{ return 200 "$login_limit_key $login_limit_site"; }}
    }}
}}
""")
    process = subprocess.Popen(["nginx", "-p", folder, "-c", config, "-e", os.path.join(folder, "error.log"), "-g", "daemon off;"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port("127.0.0.1", port, process)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def keys(address):
            connection.request("GET", "/", headers={"X-Client-Address": address})
            response = connection.getresponse()
            body = response.read().decode()
            assert response.status == 200, (address, response.status, body)
            return tuple(body.split(" "))
        yield keys
        connection.close()
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def random_groups(rng, count):
    """Groups with many zeros, so that nginx's "::" falls at every place, single zeros too."""
    return [0 if rng.random() < 0.45 else rng.choice([rng.randrange(1, 16), rng.randrange(1, 0x10000)]) for _ in range(count)]


def address(groups):
    return str(ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups)))


def test_the_key_is_the_ipv4_address_or_the_ipv6_64():
    with nginx_with_map() as keys:
        def key(address):
            return keys(address)[0]

        # The /48 key of an IPv6 /64 is its first three groups; every other key is itself.
        assert keys("2001:db8:1:2::a") == ("2001:db8:1:2", "2001:db8:1")
        assert keys("2001:db8::1") == ("2001:db8:0:0", "2001:db8:0")
        assert keys("203.0.113.7") == ("203.0.113.7", "203.0.113.7")
        # Addresses that stand for one client each are counted whole (attack review s22: every
        # translated IPv4 client shared one key and one of them could keep all at 429).
        for whole in ("64:ff9b::c633:6407", "64:ff9b::cb00:7101", "64:ff9b:1::a00:1", "fe80::1", "fe80::abcd:1", "febf::1",
                        "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::4136:e378:8000:63bf:3fff:fdd2"):
            assert keys(whole)[0] == keys(whole)[1], whole
        assert len({key(a) for a in ("64:ff9b::c633:6407", "64:ff9b::cb00:7101", "64:ff9b:1::a00:1", "fe80::1", "fe80::abcd:1")}) == 5
        # Teredo: by the client's (obfuscated) IPv4 address, the last two groups.
        assert key("2001:0:4136:e378:8000:63bf:3fff:fdd2") == key("2001:0:4136:e378:8000:1234:3fff:fdd2") == "teredo-3fff:fdd2"
        assert key("2001:0:4136:e378:8000:63bf:3fff:fdd3") != key("2001:0:4136:e378:8000:63bf:3fff:fdd2")
        assert key("203.0.113.7") == "203.0.113.7"
        assert key("203.0.113.8") == "203.0.113.8"
        assert key("::ffff:203.0.113.7") == "203.0.113.7"
        # The /64's four groups written out, however nginx writes the address.
        assert key("2001:db8:1:2::a") == "2001:db8:1:2"
        assert key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2"
        for written in ("2001:db8::1", "2001:db8::2", "2001:db8:0:0:1::", "2001:db8::1:0:0:5"):
            assert key(written) == "2001:db8:0:0", written
        assert key("2001:db8:0:1::1") == "2001:db8:0:1"
        for written in ("::1", "::", "::2:3:4:5"):
            assert key(written) == "0:0:0:0", written
        assert key("::5:0:1:7:8:9") == key("0:0:5::8:9") == key("0:0:5:0:1::") == "0:0:5:0"
        assert key("1::2:3:4:5:6") == key("1:0:0:2:ff::") == "1:0:0:2"
        assert key("1:0:2::") == key("1:0:2:0:ffff:1::") == "1:0:2:0"

        # Every place "::" can fall: the key is the /64, never any of the last four groups.
        rng = random.Random(20261126)
        for _ in range(200):
            network = random_groups(rng, 4)
            expected = ":".join(f"{g:x}" for g in network)
            interfaces = [random_groups(rng, 4) for _ in range(6)] + [[0, 0, 0, 0], [0xffff] * 4, [0, 0, 0, 1], [1, 0, 0, 0]]
            if network[:2] in ([0x64, 0xff9b], [0x2001, 0]) or 0xfe80 <= network[0] <= 0xfebf:
                continue  # counted whole (above)
            for interface in interfaces:
                written = address(network + interface)
                assert keys(written) == (expected, expected.rsplit(":", 1)[0]), f"{written}: {keys(written)!r}, not {expected!r}"


def request_from(source, server, port, path="/login"):
    """One POST from the IPv6 address `source` (bound on this thread's namespace); its status."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.bind((source, 0))
        s.connect((server, port))
        body = b'{"user":"ada","password":"guess"}'
        s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return int(answer.split(b" ", 2)[1])


def test_addresses_of_one_ipv6_64_and_of_one_48_share_the_login_limits():
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    net = netns.Network()
    folder = tempfile.mkdtemp(prefix="login-limit-ns-")
    try:
        net.add_host("edge", "10.78.0.10")
        # Thirteen /64s of one /48, a second address in the first, and another /48.
        networks = [f"2001:db8:1:{n:x}::a" for n in range(2, 15)]
        sibling, elsewhere = "2001:db8:1:2:ffff::b", "2001:db8:2:1::a"
        for ipv6 in networks + [sibling, elsewhere]:
            net.exec("edge", netns.IP, "addr", "add", f"{ipv6}/64", "dev", "lo", "nodad")
        port = 8080
        # Nothing listens at the instances' address: attempts that pass the limits get nginx's
        # 502; the limits' own answer is 429, given before any instance is asked.
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "STATE_DIR": folder,
               "LISTEN": f"[::]:{port}", "FCGI_ADDRESSES": "[::1]:9", "ACCESS_LOG": "off"}
        config = subprocess.run([os.path.join(ROOT, "nginx", "render")], env=env, capture_output=True, text=True, check=True).stdout
        path = os.path.join(folder, "nginx.conf")
        with open(path, "w") as f:
            f.write(config)
        error_log = os.path.join(folder, "nginx-error.log")
        process = net.start("nginx", "edge", ["nginx", "-p", folder, "-c", path, "-e", error_log, "-g", "daemon off;"],
                            os.path.join(folder, "nginx.out"))
        server = networks[0]

        def scenario():
            deadline = time.time() + 10
            while True:
                assert process.poll() is None, open(os.path.join(folder, "nginx.out")).read()
                try:
                    socket.create_connection((server, port), timeout=0.5).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)
            # Per /64: 60 a minute in bursts of 30, so about 31 at once use up one /64's
            # allowance; per /48: ten times that, so the /48's allowance ends within the
            # eleventh /64.
            bursts = []
            for source in networks:
                burst = []
                while len(burst) < 45 and 429 not in burst:
                    burst.append(request_from(source, server, port))
                bursts.append(burst)
            return bursts, request_from(sibling, server, port), request_from(elsewhere, server, port)
        bursts, from_sibling, from_elsewhere = netns.call_inside(net.namespace("edge"), scenario)
        first = bursts[0]
        assert 429 not in first[:30] and first[-1] == 429 and set(first[:-1]) == {502}, first
        assert from_sibling == 429, "another address of the same /64 must share its allowance"
        passed = [len(burst) - 1 for burst in bursts]
        assert sum(passed) <= 301 + 31 + 40, passed  # the /48's burst, plus what leaks meanwhile
        assert passed[-1] == 0 and passed[-2] == 0, f"fresh /64s of a spent /48 must get 429 at once: {passed}"
        assert from_elsewhere != 429, "another /48 has an allowance of its own"
    finally:
        net.close()
        shutil.rmtree(folder, ignore_errors=True)
