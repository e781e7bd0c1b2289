"""Several hosts: nginx, two app hosts with two session-fcgi instances each, and Redis, each in a
network namespace of its own on one bridged LAN, with the test's clients on a fifth. Instances
listen on TCP and let in the nginx host only. Then one app host is cut off mid-traffic, and the
Redis host is slowed down.

    client  10.77.0.1  ─┐
    nginx   10.77.0.10 ─┤  bridge br0 in its own namespace ("the switch");
    app A   10.77.0.21 ─┤  app A and app B: session-fcgi on :9001 and :9002
    app B   10.77.0.22 ─┤  (--listen 0.0.0.0:PORT --allowed-peers 10.77.0.10)
    redis   10.77.0.30 ─┘  redis-server :6379, password-protected

Nothing is added to the machine's own namespace; every namespace, veth and process is removed
afterwards, also when a test fails. Needs root and `ip netns`; run by deploy/test; alone:
python3 -m pytest Tests/deploy/test_several_hosts.py -q -s (-s prints the measured numbers).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

import fastcgi_probe
import netns
from test_deploy_local import debug_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

ADDRESSES = {"client": "10.77.0.1", "nginx": "10.77.0.10", "a": "10.77.0.21", "b": "10.77.0.22", "redis": "10.77.0.30"}
PORTS = (9001, 9002)
NGINX_PORT = 8080
REDIS_PORT = 6379
REDIS_TIMEOUT_MS = 300
# The template's fastcgi_read_timeout and fastcgi_connect_timeout, in seconds.
READ_TIMEOUT = 5.0
CONNECT_TIMEOUT = 1.0

REASON = netns.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"several hosts in network namespaces: {REASON}")


def instances(role=None):
    return [(ADDRESSES[r], port) for r in ("a", "b") if role in (None, r) for port in PORTS]


class Stack:
    """The five hosts, Redis, the four instances and nginx (rendered by nginx/render)."""

    def __init__(self, folder):
        self.folder = folder
        self.net = netns.Network()
        try:
            self._build()
        except BaseException:
            self.net.close()
            raise

    def _build(self):
        for role in ("client", "nginx", "a", "b", "redis"):
            self.net.add_host(role, ADDRESSES[role])
        self.password_file = os.path.join(self.folder, "redis-password")
        with open(self.password_file, "w") as f:
            f.write(os.urandom(24).hex())
        os.chmod(self.password_file, 0o600)
        self.password = open(self.password_file).read()
        self.logs = {}
        self._start_redis()
        for address, port in instances():
            self._start_instance(address, port)
        self._start_nginx()
        self.wait_until_serving()

    def _start_redis(self):
        config = os.path.join(self.folder, "redis.conf")
        with open(config, "w") as f:
            f.write(f"bind {ADDRESSES['redis']}\nport {REDIS_PORT}\nsave \"\"\nappendonly no\ndir {self.folder}\n"
                    f"requirepass {self.password}\n")
        os.chmod(config, 0o600)
        self.net.start("redis", "redis", ["redis-server", config], os.path.join(self.folder, "redis.log"))
        deadline = time.time() + 10
        while time.time() < deadline and self.redis("PING") != "PONG":
            time.sleep(0.05)
        assert self.redis("PING") == "PONG", open(os.path.join(self.folder, "redis.log")).read()

    def _start_instance(self, address, port):
        role = "a" if address == ADDRESSES["a"] else "b"
        log = os.path.join(self.folder, f"fcgi-{role}-{port}.log")
        self.logs[(address, port)] = log
        self.net.start(f"session-fcgi {address}:{port}", role, [
            debug_binary(), "--listen", f"0.0.0.0:{port}", "--allowed-peers", ADDRESSES["nginx"],
            "--redis-url", f"redis://{ADDRESSES['redis']}:{REDIS_PORT}", "--redis-password-file", self.password_file,
            "--redis-timeout-ms", str(REDIS_TIMEOUT_MS), "--threads", "8", "--log-file", log,
        ], os.path.join(self.folder, f"fcgi-{role}-{port}.out"))

    def _start_nginx(self):
        state = os.path.join(self.folder, "nginx")
        os.makedirs(state)
        env = {"PATH": SYSTEM_PATH, "STATE_DIR": state, "LISTEN": f"{ADDRESSES['nginx']}:{NGINX_PORT}",
               "FCGI_ADDRESSES": " ".join(f"{a}:{p}" for a, p in instances()), "NGINX_WORKERS": "2",
               "APP_UPSTREAM": "127.0.0.1:8081"}
        config = subprocess.run([os.path.join(ROOT, "nginx", "render")], env=env, capture_output=True, text=True, check=True).stdout
        self.nginx_conf = os.path.join(state, "nginx.conf")
        with open(self.nginx_conf, "w") as f:
            f.write(config)
        self.access_log = os.path.join(state, "nginx-access.log")
        self.error_log = os.path.join(state, "nginx-error.log")
        self.net.exec("nginx", "nginx", "-q", "-t", "-p", state, "-c", self.nginx_conf, "-e", self.error_log)
        self.net.start("nginx", "nginx", ["nginx", "-p", state, "-c", self.nginx_conf, "-e", self.error_log, "-g", "daemon off;"],
                       os.path.join(self.folder, "nginx.out"))

    def wait_until_serving(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if all(self.listening_livez(address, port) == 200 for address, port in instances()) \
                    and self.get("/healthz")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError("the stack did not come up: " + self.describe_logs())

    def listening_livez(self, address, port):
        """`livez`, or None while the instance does not accept yet: on a fresh machine the first
        start of the debug binary (cold page cache) can take longer than nginx's start."""
        try:
            return self.livez(address, port)
        except OSError:  # refused, reset, unreachable while the bridge learns, timed out
            return None

    def describe_logs(self):
        text = []
        for path in sorted(os.listdir(self.folder)):
            full = os.path.join(self.folder, path)
            if os.path.isfile(full) and (path.endswith(".log") or path.endswith(".out")) and "password" not in path:
                text.append(f"--- {path}\n" + open(full, errors="replace").read()[-2000:])
        return "\n".join(text)

    def close(self):
        self.net.close()

    # -- talking to the hosts

    def get(self, path, cookie=None, timeout=15):
        """A GET through nginx from the client host: (status, body, headers); status 0 when the
        connection itself failed."""
        return netns.call_inside(self.net.namespace("client"), http_get, path, cookie, timeout)

    def livez(self, address, port, from_role="nginx"):
        answer = netns.call_inside(self.net.namespace(from_role), fastcgi_probe.get, address, port, "/livez", 2.0)
        return answer[0] if answer else None

    def refused_peers(self, address, port):
        """The instance's count of connections refused by --allowed-peers (its metrics, asked
        from the nginx host the way nginx's internal metrics server asks)."""
        answer = netns.call_inside(self.net.namespace("nginx"), fastcgi_probe.get, address, port, "/metrics", 2.0,
                                   {"SESSION_FCGI_INTERNAL": "1"})
        assert answer and answer[0] == 200, answer
        return int(re.search(r'fastcgi_connections_total\{outcome="refused_peer"\} (\d+)', answer[1]).group(1))

    def redis(self, *command):
        env = {"PATH": SYSTEM_PATH, "REDISCLI_AUTH": self.password}
        try:
            result = subprocess.run([netns.IP, "netns", "exec", self.net.namespace("redis"), "redis-cli", "-h", ADDRESSES["redis"],
                                     "-p", str(REDIS_PORT), "--no-auth-warning", *command],
                                    env=env, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return ""  # callers that wait ask again; the others see no answer
        return result.stdout.strip()

    def stored_count(self, cookie):
        value = self.redis("HGET", "sid_" + cookie.split("=", 1)[1], "count")
        return int(value) if value else None

    def connections_to(self, role):
        """nginx's established TCP connections to the instances of one app host."""
        out = self.net.exec("nginx", "ss", "-Htn", "state", "established", "dst", ADDRESSES[role]).stdout
        return len([line for line in out.splitlines() if line.strip()])


def http_get(path, cookie=None, timeout=15):
    request = urllib.request.Request(f"http://{ADDRESSES['nginx']}:{NGINX_PORT}{path}", headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers
    except OSError as error:
        return 0, repr(error), {}


@pytest.fixture
def stack():
    folder = tempfile.mkdtemp(prefix="session-hosts-")
    os.chmod(folder, 0o755)  # nginx's www-data workers reach their temp folders inside
    try:
        built = Stack(folder)  # cleans up after itself if it cannot be built
        try:
            yield built
        finally:
            built.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Sample:
    __slots__ = ("client", "target", "began", "ended", "status", "count", "retry_after")

    def __init__(self, client, target, began, ended, status, count, retry_after):
        self.client, self.target, self.began, self.ended = client, target, began, ended
        self.status, self.count, self.retry_after = status, count, retry_after

    @property
    def seconds(self):
        return self.ended - self.began


class Load:
    """Clients on the client host counting visits on their own sessions through nginx, one
    request after another, until stopped; every answer recorded with when it began and ended
    (time.monotonic) and the target's unique query, which the access log repeats."""

    def __init__(self, stack, clients):
        self.stack = stack
        self.cookies = []
        for _ in range(clients):
            status, body, headers = stack.get("/count")
            assert status == 200 and json.loads(body)["count"] == 1, body
            self.cookies.append(headers["Set-Cookie"].split(";")[0])
        self.samples = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(clients)]

    def run(self, client):
        with netns.inside(self.stack.net.namespace("client")):
            n = 0
            while not self.stopping.is_set():
                n += 1
                target = f"/count?c={client}-{n}"
                began = time.monotonic()
                status, body, headers = http_get(target, self.cookies[client])
                ended = time.monotonic()
                count = json.loads(body)["count"] if status == 200 else None
                with self.lock:
                    self.samples.append(Sample(client, target, began, ended, status, count, headers.get("Retry-After")))
                time.sleep(0.005)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def of(self, client):
        return sorted((s for s in self.samples if s.client == client), key=lambda s: s.began)

    def check_every_session(self):
        """Each session's count in Redis is exactly its client's last acknowledged count, and
        every acknowledged count is explained: it is 1 (the session's creation) plus the
        client's earlier successes plus some of its earlier failures, a failed request being
        one whose answer was lost but which may still have counted, then or later (a request
        that nginx gave up on can still reach its instance when the network heals). So no
        acknowledged visit is lost and none counts twice. Returns how many failed requests
        counted anyway."""
        counted_anyway = 0
        for client, cookie in enumerate(self.cookies):
            samples = self.of(client)
            assert samples and samples[-1].status == 200, f"client {client} did not end on a success"
            successes = failures = 0
            last = 1
            for sample in samples:
                if sample.status != 200:
                    failures += 1
                    continue
                successes += 1
                extra = sample.count - 1 - successes
                assert sample.count > last and 0 <= extra <= failures, \
                    f"client {client}: count {sample.count} after {successes} successes and {failures} failures (before: {last})"
                last = sample.count
            stored = self.stack.stored_count(cookie)
            assert stored == last, f"client {client}: Redis has {stored}, the client last saw {last}"
            counted_anyway += last - 1 - successes
        return counted_anyway


ACCESS = re.compile(r'"GET (?P<target>\S+) HTTP/1\.1" (?P<status>\d+) .* rt=(?P<seconds>[\d.]+) upstream="(?P<upstreams>[^"]*)" '
                    r'upstream_status="(?P<statuses>[^"]*)" upstream_time="(?P<times>[^"]*)"')


def access_log(stack):
    """target -> (status, [instances tried], [what each answered], nginx's request time, [each try's time])"""
    entries = {}
    for line in open(stack.access_log, errors="replace"):
        match = ACCESS.search(line)
        if match:
            entries[match["target"]] = (int(match["status"]), [u.strip() for u in match["upstreams"].split(",")],
                                        [s.strip() for s in match["statuses"].split(",")], float(match["seconds"]),
                                        [t.strip() for t in match["times"].split(",")])
    return entries


def statuses(samples):
    counts = {}
    for sample in samples:
        counts[sample.status] = counts.get(sample.status, 0) + 1
    return " ".join(f"{status}×{n}" for status, n in sorted(counts.items()))


class LivezProbes:
    """From the nginx host, GET /livez straight to every instance over FastCGI, each instance on
    a thread of its own, every 50 ms until stopped: (instance, began, ended, status)."""

    def __init__(self, stack):
        self.stack = stack
        self.samples = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(instance,)) for instance in instances()]

    def run(self, instance):
        with netns.inside(self.stack.net.namespace("nginx")):
            while not self.stopping.is_set():
                began = time.monotonic()
                try:
                    answer = fastcgi_probe.get(*instance, "/livez", timeout=5.0)
                except OSError:
                    answer = None
                ended = time.monotonic()
                with self.lock:
                    self.samples.append((instance, began, ended, answer[0] if answer else None))
                time.sleep(0.05)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)


class SlowLink:
    """Every packet the host `role` sends leaves `delay_ms` late: `tc qdisc add dev eth0 root
    netem delay …` where the kernel has sch_netem, otherwise the same delay by delay_line.py
    behind an iptables NFQUEUE rule (this project's CI kernel has no netem). Removed on exit;
    `how` says which was used."""

    def __init__(self, stack, role, delay_ms):
        self.stack, self.role, self.delay_ms = stack, role, delay_ms
        self.how = None
        self.line = None
        self.rule = ["OUTPUT", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"]

    def __enter__(self):
        net = self.stack.net
        netem = net.exec(self.role, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", f"{self.delay_ms}ms", check=False)
        if netem.returncode == 0:
            self.how = f"tc netem delay {self.delay_ms}ms"
            return self
        if shutil.which("iptables-legacy", path=SYSTEM_PATH) is None:
            pytest.skip(f"no way to delay packets: tc netem failed ({netem.stderr.strip()}) and iptables-legacy is not installed")
        log = os.path.join(self.stack.folder, "delay-line.log")
        self.line = net.start("delay line", self.role, ["python3", os.path.join(HERE, "delay_line.py"), "0", str(self.delay_ms)], log)
        deadline = time.time() + 10
        while time.time() < deadline and "ready" not in open(log).read():
            assert self.line.poll() is None, open(log).read()
            time.sleep(0.02)
        assert "ready" in open(log).read(), "the delay line did not start"
        net.exec(self.role, "iptables-legacy", "-A", *self.rule)
        self.how = f"NFQUEUE delay line, {self.delay_ms} ms (tc netem: {netem.stderr.strip()})"
        return self

    def __exit__(self, *exc):
        net = self.stack.net
        if self.line is None:
            net.exec(self.role, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
        else:
            net.exec(self.role, "iptables-legacy", "-D", *self.rule, check=False)
            net.stop(self.line)  # lets every packet it still holds go at once


def connect_seconds(address, port):
    began = time.monotonic()
    with socket.create_connection((address, port), timeout=5):
        return time.monotonic() - began


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def test_instances_listen_on_tcp_and_refuse_every_peer_but_the_nginx_host(stack):
    for address, port in instances():
        assert stack.livez(address, port, from_role="nginx") == 200, f"nginx's host cannot reach {address}:{port}"
    # The Redis host and the client host reach every instance's port (same LAN), and each is
    # closed at once, before a byte of FastCGI is answered.
    for role in ("redis", "client"):
        for address, port in instances():
            assert stack.livez(address, port, from_role=role) is None, f"{role} host was answered by {address}:{port}"
    for address, port in instances():
        assert stack.refused_peers(address, port) == 2, f"{address}:{port}"
        # Refusals are logged at most once a second: the first one names the Redis host.
        log = open(stack.logs[(address, port)]).read()
        assert f"refused a FastCGI connection from {ADDRESSES['redis']}: not an allowed peer" in log, log
    # Through nginx everything works, and every instance takes its share.
    for n in range(8):
        assert stack.get(f"/healthz?n={n}")[0] == 200
    served = {upstreams[-1] for target, (status, upstreams, *_) in access_log(stack).items() if target.startswith("/healthz?") and status == 200}
    assert served >= {f"{a}:{p}" for a, p in instances()}, served


def test_cutting_an_app_host_off_mid_traffic_loses_no_session(stack):
    """Host B's cable is pulled out of the switch (its port goes down) under load, and plugged in
    again 8 s later.

    What can fail, and the bound asserted: after the cut no connection to B can open, and
    nginx retries a /count whose connect timed out (nothing was sent; see the template), so a
    request can fail only on a connection nginx already had open to B: the request in flight
    on it at the cut, or the next one nginx sends on it before noticing (kept-alive
    connections wait idle in nginx's cache). Each such request fails after the read timeout
    (504, not retried: B may have it), and nginx then closes that connection. So the failures
    are at most nginx's connections to B at the cut, one each."""
    load = Load(stack, clients=6)
    with load:
        time.sleep(2)
        before = stack.connections_to("b")
        cutting = time.monotonic()
        stack.net.set_port("b", up=False)
        cut = time.monotonic()
        at_cut = stack.connections_to("b")  # none can open from now on; none has closed yet
        time.sleep(8)
        stack.net.set_port("b", up=True)
        restored = time.monotonic()
        time.sleep(6)  # nginx probes a failed instance every 2-4 s (fail_timeout on a whole-second clock)

    log = access_log(stack)
    samples = sorted(load.samples, key=lambda s: s.began)
    failed = [s for s in samples if s.status != 200]
    in_flight = [s for s in failed if s.began < cutting]
    at_once = [s for s in failed if s.began < cut + 0.1]
    b_instances = {f"{a}:{p}" for a, p in instances("b")}
    retried = [s for s in samples if s.status == 200 and len(log.get(s.target, (0, []))[1]) > 1]
    back = [s for s in samples if s.began > restored and s.status == 200 and log.get(s.target, (0, [""]))[1][-1] in b_instances]
    print(f"\ncut of host B: {len(samples)} requests from {len(load.cookies)} clients [{statuses(samples)}]; "
          f"nginx had {at_cut} connections to B at the cut ({before} just before); failed: {len(failed)}, "
          f"{len(in_flight)} sent before the cut began, {len(at_once)} within 0.1 s of it, the rest later on kept connections to B, "
          f"each after {min((s.seconds for s in failed), default=0):.2f}-{max((s.seconds for s in failed), default=0):.2f} s "
          f"({sum(1 for s in failed if len(log.get(s.target, (0, []))[1]) > 1)} of them after a connect timeout at B's other instance first); "
          f"retried after a connect timeout and answered: {len(retried)} (slowest {max((s.seconds for s in retried), default=0):.2f} s); "
          f"B served again {min((s.began for s in back), default=float('nan')) - restored:.2f} s after the cable was back")

    assert all(s.status == 200 for s in samples if s.ended < cut), "failures before the cut"
    for sample in failed:
        status, upstreams, answers, *_ = log[sample.target]
        assert sample.status == 504 and status == 504, f"{sample.target}: {sample.status}"
        # Only host B was tried: a connect timeout or two, then a read timeout on a connection
        # that was open at the cut (the last try), after which nothing is retried.
        assert set(upstreams) <= b_instances and answers == ["504"] * len(answers), f"{sample.target} went to {upstreams} ({answers})"
        assert sample.seconds >= READ_TIMEOUT - 0.5, f"{sample.target} failed after {sample.seconds:.2f} s: not a read timeout"
    assert len(failed) <= at_cut, f"{len(failed)} failed requests, but nginx had only {at_cut} connections to B at the cut"
    # Connect timeouts at B were retried on host A, never answered 504.
    for sample in retried:
        assert log[sample.target][2][:-1] == ["504"] * (len(log[sample.target][2]) - 1)
        # nginx's own request time (the client's clock adds this test's scheduling on a busy machine).
        assert all(u in b_instances for u in log[sample.target][1][:-1]) and log[sample.target][3] < 2 * CONNECT_TIMEOUT + 0.5
    assert retried, "no request met host B after the cut: the cut proved nothing"
    assert back, "host B did not serve again after its cable was plugged back in"
    counted_anyway = load.check_every_session()
    print(f"  every session exact in Redis; failed requests that counted all the same (B got them when the link came back): {counted_anyway}")


def test_a_slowed_redis_host_gives_fast_503s_and_holds_no_worker(stack):
    """Every packet the Redis host sends leaves 800 ms late for 5 s, under load. With
    --redis-timeout-ms 300 each instance gives up on Redis within its timeouts: /count answers
    503 (with Retry-After) within about 1 s, never later; /livez, which does not touch Redis,
    keeps answering fast from every instance (no worker is held); once the delay is removed,
    every instance counts again within its reconnect back-off (at most 1 s); and no session
    loses a visit."""
    load = Load(stack, clients=4)
    with LivezProbes(stack) as probes, load:
        time.sleep(2)
        with SlowLink(stack, "redis", 800) as link:
            slowed = time.monotonic()
            time.sleep(1)
            redis_connect = netns.call_inside(stack.net.namespace("a"), connect_seconds, ADDRESSES["redis"], REDIS_PORT)
            time.sleep(4)
            healing = time.monotonic()
        healed = time.monotonic()
        time.sleep(3)

    log = access_log(stack)
    samples = sorted(load.samples, key=lambda s: s.began)
    during = [s for s in samples if slowed <= s.began and s.ended <= healing]
    after = [s for s in samples if s.began >= healed]
    # Began after the reconnect back-off (1 s), counted from a worker's last failure, which can
    # come one Redis timeout after the delay is removed; plus half a second for this machine.
    late = [s for s in after if s.began >= healed + 1.0 + REDIS_TIMEOUT_MS / 1000 + 0.5]
    livez_during = [p for p in probes.samples if slowed <= p[1] and p[2] <= healing]
    nginx_times = [log[s.target][3] for s in during]
    livez_times = [p[2] - p[1] for p in livez_during]
    first_ok = min((s.ended for s in after if s.status == 200), default=float("nan")) - healed
    last_503 = max((s.ended for s in after if s.status == 503), default=healed) - healed
    print(f"\nRedis host slowed ({link.how}) for {healing - slowed:.1f} s: a TCP connect from app host A to Redis took "
          f"{redis_connect:.2f} s; /count while slowed: {len(during)} answers [{statuses(during)}], "
          f"nginx's request time p50 {percentile(nginx_times, 0.5):.3f} s, p99 {percentile(nginx_times, 0.99):.3f} s, "
          f"max {max(nginx_times, default=0):.3f} s (at the client: max {max((s.seconds for s in during), default=0):.3f} s); "
          f"/livez from the nginx host to each instance meanwhile: "
          f"{len(livez_during)} answers, p50 {percentile(livez_times, 0.5):.3f} s, max {max(livez_times, default=0):.3f} s; after the delay was removed: "
          f"first 200 after {first_ok:.3f} s, last 503 after {last_503:.3f} s, [{statuses(after)}]")

    assert redis_connect >= 0.7, f"the delay was not in force: connecting to Redis took {redis_connect:.2f} s"
    assert all(s.status == 200 for s in samples if s.ended < slowed), "failures before the delay"
    assert len(during) > 20, "too few requests while Redis was slow"
    for sample in during:
        assert sample.status == 503, f"{sample.target}: {sample.status} while Redis was 800 ms away"
        assert sample.retry_after, f"{sample.target}: 503 without Retry-After"
    # Within about 1 s, by nginx's own clock (the client's clock adds this test's scheduling
    # on a busy machine; it is printed above).
    slow = [s for s in samples if log[s.target][3] > 1.0]
    assert not slow, "answers that took nginx longer than 1 s: " + ", ".join(
        f"{s.target} {s.status} (began {s.began - slowed:+.2f} s from the delay; nginx: {log[s.target]})" for s in slow)
    # nginx took the 503s as answers: no request was retried elsewhere or timed out.
    assert all(len(log[s.target][1]) == 1 for s in samples), "a request was retried on another instance"
    # No worker was held: every instance answered /livez at once all along.
    assert {p[0] for p in livez_during} == set(instances()), "an instance was not probed while Redis was slow"
    assert all(p[3] == 200 for p in probes.samples), [p for p in probes.samples if p[3] != 200][:5]
    # (The worst is on this test's clock, shared with the load, the probes and the delay line.)
    assert percentile(livez_times, 0.5) < 0.05 and max(livez_times) < 2.0, (percentile(livez_times, 0.5), max(livez_times))
    # Back to normal within the reconnect back-off, on every instance.
    assert late and all(s.status == 200 for s in late), f"still failing 1.8 s after the delay was removed: [{statuses(late)}]"
    assert {log[s.target][1][-1] for s in late} == {f"{a}:{p}" for a, p in instances()}, "not every instance counts again"
    counted_anyway = load.check_every_session()
    print(f"  every session exact in Redis; 503s whose visit counted all the same (Redis got the script, its answer came late): {counted_anyway}")
