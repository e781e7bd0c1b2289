"""Hosts made of Linux network namespaces for the operations tests: each host is a namespace
with one interface `eth0` plugged into a bridge that lives in a namespace of its own (the
"switch"), so nothing is added to the machine's own namespace, and deleting the namespaces
deletes every veth with them. Names carry the creating process's pid, so namespaces left by a
run that was killed outright are recognised and removed by the next run.

Threads reach a host with `inside(host)` (setns on the calling thread only); commands run
there with `ip netns exec`.
"""
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
import time

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
PREFIX = "shosts"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def run(*arguments, check=True, timeout=20):
    result = subprocess.run(list(arguments), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def unavailable_reason():
    """Why namespaces with veths and a bridge cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth, bridge)"
    if not os.access(IP, os.X_OK):
        return "iproute2's ip is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        made = run(IP, "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"ip netns is not available: {made.stderr.strip()}"
        bridge = run(IP, "-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"no bridge support: {bridge.stderr.strip()}"
        veth = run(IP, "-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1", check=False)
        if veth.returncode != 0:
            return f"no veth support: {veth.stderr.strip()}"
        return None
    finally:
        run(IP, "netns", "del", probe, check=False)


def remove_stale():
    """Removes the namespaces (and the processes in them) of earlier runs whose process is gone."""
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        match = re.fullmatch(PREFIX + r"(\d+)-[a-z0-9]+", name)
        if not match or os.path.exists(f"/proc/{match.group(1)}"):
            continue
        for pid in run(IP, "netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        run(IP, "netns", "del", name, check=False)


@contextlib.contextmanager
def inside(namespace):
    """Moves the calling thread into `namespace` (sockets it makes then live there); back after."""
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")
        yield
    finally:
        _libc.setns(home, CLONE_NEWNET)
        os.close(target)
        os.close(home)


def call_inside(namespace, function, *arguments):
    """Runs `function(*arguments)` on a thread of its own inside `namespace`; returns its result."""
    outcome = {}

    def body():
        try:
            with inside(namespace):
                outcome["value"] = function(*arguments)
        except BaseException as error:  # handed to the caller
            outcome["error"] = error
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class Network:
    """One LAN: a bridge in the namespace `<prefix>-sw`, and a host namespace per `add_host`."""

    def __init__(self, subnet_prefix_length=24):
        remove_stale()
        self.tag = f"{PREFIX}{os.getpid()}"
        self.length = subnet_prefix_length
        self.hosts = {}  # role -> (namespace, address)
        self.processes = []  # (name, Popen)
        self.switch = self.namespace("sw")
        self._made = []
        try:
            self._add_namespace(self.switch)
            run(IP, "-n", self.switch, "link", "add", "br0", "type", "bridge")
            run(IP, "-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def namespace(self, role):
        return f"{self.tag}-{role}"

    def _add_namespace(self, name):
        run(IP, "netns", "add", name)
        self._made.append(name)
        run(IP, "-n", name, "link", "set", "lo", "up")

    def add_host(self, role, address):
        """A host namespace with `eth0` at `address`, plugged into the switch as port `p-<role>`."""
        name = self.namespace(role)
        self._add_namespace(name)
        port = self.port(role)
        run(IP, "link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", port, "netns", self.switch)
        run(IP, "-n", self.switch, "link", "set", port, "master", "br0")
        run(IP, "-n", self.switch, "link", "set", port, "up")
        run(IP, "-n", name, "addr", "add", f"{address}/{self.length}", "dev", "eth0")
        run(IP, "-n", name, "link", "set", "eth0", "up")
        self.hosts[role] = (name, address)
        return name

    def port(self, role):
        return f"p-{role}"

    def set_port(self, role, up):
        """Plugs a host's cable into the switch, or pulls it out (the port goes down)."""
        run(IP, "-n", self.switch, "link", "set", self.port(role), "up" if up else "down")

    def exec(self, role, *command, **kwargs):
        return run(IP, "netns", "exec", self.hosts[role][0], *command, **kwargs)

    def start(self, name, role, command, log_path, env=None):
        """Starts `command` inside the host `role` (ip netns exec execs it: the pid is the
        command's own); stopped by `stop_all`, by pid."""
        log = open(log_path, "ab")
        process = subprocess.Popen([IP, "netns", "exec", self.hosts[role][0]] + command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env)
        log.close()
        self.processes.append((name, process))
        return process

    def stop(self, process, sig=signal.SIGTERM, wait=10):
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def close(self):
        """Stops every process started here (by pid), then deletes every namespace (and so every
        veth and the bridge). Safe to call twice and after a partial setup."""
        for _, process in reversed(self.processes):
            with contextlib.suppress(Exception):
                self.stop(process)
        for name in reversed(self._made):
            # Anything still inside (a helper the test did not track) would keep the namespace
            # alive after its name is gone: end it too.
            for pid in run(IP, "netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            run(IP, "netns", "del", name, check=False)
        self._made = []
        deadline = time.time() + 5
        while time.time() < deadline and any(os.path.exists(f"/run/netns/{self.namespace(role)}") for role in self.hosts):
            time.sleep(0.05)
