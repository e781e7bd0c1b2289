"""deploy/local itself: private state, secrets off command lines, the password-protected and
durable Redis, Unix-socket instances, running as root and as an ordinary user, and the
systemd unit. Each test runs deploy/local on free ports with a state folder of its own and
stops exactly what it started (`deploy/local down`, by pid files).

Run by deploy/test after `swift build`; alone: python3 -m pytest Tests/deploy -q
"""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL = os.path.join(ROOT, "deploy", "local")
IS_ROOT = os.geteuid() == 0
NGINX_GROUP = "www-data"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
RUNUSER = shutil.which("runuser", path=SYSTEM_PATH) or "runuser"


from free_ports import free_port  # noqa: E402  (re-exported to the other suites)


def debug_binary():
    path = os.environ.get("SESSION_FCGI_BIN") or os.path.join(ROOT, ".build", "debug", "session-fcgi")
    if not os.access(path, os.X_OK):
        pytest.skip(f"no session-fcgi binary at {path} (swift build first)")
    return path


class Local:
    """deploy/local on free ports with a private state folder, run as `user` (None: as we are)."""

    def __init__(self, base, user=None, **settings):
        self.base = base
        self.user = user
        self.state = os.path.join(base, "state")
        self.port = free_port()
        self.redis_port = free_port()
        self.env = {"PATH": SYSTEM_PATH, "HOME": base, "STATE_DIR": self.state,
                    "PORT": str(self.port), "REDIS_PORT": str(self.redis_port), "APP_PORT": str(free_port()), "METRICS_PORT": str(free_port()),
                    "FCGI_THREADS": "8", "SESSION_FCGI_BIN": debug_binary()}
        if "FCGI_SOCKETS" not in settings:
            self.env["FCGI_PORTS"] = f"{free_port()} {free_port()}"
        self.env.update(settings)

    def run(self, command, check=True):
        prefix = [RUNUSER, "-u", self.user, "--"] if self.user else []
        # env -i: deploy/local sees only these settings (and the secrets in them stay in the
        # environment, where the tests put them, not on a command line).
        result = subprocess.run(prefix + ["env", "-i"] + [f"{k}={v}" for k, v in self.env.items()] + [LOCAL, command],
                                capture_output=True, text=True, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"deploy/local {command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def up(self):
        return self.run("up")

    def down(self):
        return self.run("down", check=False)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def secret(self, name):
        with open(os.path.join(self.state, name)) as f:
            return f.read().strip()


@pytest.fixture
def base():
    folder = tempfile.mkdtemp(prefix="session-deploy-")
    os.chmod(folder, 0o755)  # the tests' folder; deploy/local makes STATE_DIR 0700 inside it
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def get(url, cookie=None):
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def count_with(local, cookie=None):
    """Counts a visit; returns the count and the session cookie (a new session's comes in
    Set-Cookie; a known one is not re-sent)."""
    status, body, headers = get(local.url("/count"), cookie)
    assert status == 200, body
    if headers["Set-Cookie"]:
        cookie = "sid=" + re.match(r"sid=([^;]+)", headers["Set-Cookie"]).group(1)
    return json.loads(body)["count"], cookie


def command_lines():
    """Every process's command line, as any local user can read it."""
    lines = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    lines.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return lines


def redis_cli(local, *arguments, password=None):
    env = {"PATH": "/usr/bin:/bin"}
    if password is not None:
        env["REDISCLI_AUTH"] = password
    return subprocess.run(["redis-cli", "-p", str(local.redis_port)] + list(arguments), env=env,
                          capture_output=True, text=True, timeout=10).stdout.strip()


def eventually(check, timeout=15, what="the condition"):
    """Polls `check` until it holds (a fixed sleep is either too short on a loaded machine or
    wastes time on a quiet one); asserts it at the deadline."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.05)
    assert check(), f"{what} did not hold within {timeout} s"


def wait_until_aof_written(local, password, timeout=10):
    """Waits until Redis has written its AOF (with `appendfsync everysec` it may hold writes
    back for up to 2 s while the disk is slow, answering clients all the same): a test that
    kills Redis then checks what a crash keeps, not how busy the disk was."""
    def written():
        info = redis_cli(local, "INFO", "persistence", password=password)
        return "aof_buffer_length:0" in info and "aof_pending_bio_fsync:0" in info
    eventually(written, timeout, "Redis writing its append-only file")


def test_state_is_private_and_no_secret_is_on_a_command_line(base):
    local = Local(base)
    try:
        output = local.up().stderr
        assert stat.S_IMODE(os.stat(local.state).st_mode) == 0o700
        for folder, directories, files in os.walk(local.state):
            for name in directories + files:
                path = os.path.join(folder, name)
                mode = stat.S_IMODE(os.lstat(path).st_mode)
                assert mode & 0o077 == 0, f"{path} is open to others: {oct(mode)}"
        password = local.secret("redis-password")
        assert len(password) >= 32
        with open(os.path.join(local.state, "redis.conf")) as f:
            assert f"requirepass {password}" in f.read()
        secrets = [password, local.secret("admin-token"), local.secret("demo-credentials").split(" / ")[1]]
        assert count_with(local)[0] == 1, "the instances must reach the password-protected Redis"
        for line in command_lines():
            for secret in secrets:
                assert secret not in line, f"a secret is on a command line: {line}"
        # Operators: the hint printed by `up` works as printed.
        hint = f"REDISCLI_AUTH=$(cat {local.state}/redis-password) redis-cli -p {local.redis_port}"
        assert hint in output, output
        assert subprocess.run(["bash", "-c", hint + " ping"], capture_output=True, text=True).stdout.strip() == "PONG"
        assert redis_cli(local, "ping").startswith("NOAUTH")
        assert redis_cli(local, "config", "get", "appendonly", password=password).split() == ["appendonly", "yes"]
        assert redis_cli(local, "config", "get", "appendfsync", password=password).split() == ["appendfsync", "everysec"]
        assert redis_cli(local, "config", "get", "bind", password=password).split()[1:] == ["127.0.0.1"]
        assert "redis" in local.run("status").stdout and "PONG" in local.run("status").stdout
    finally:
        local.down()


def test_sessions_survive_a_killed_redis(base):
    local = Local(base)
    try:
        local.up()
        count, cookie = count_with(local)
        for expected in range(2, 6):
            count, cookie = count_with(local, cookie)
            assert count == expected
        wait_until_aof_written(local, local.secret("redis-password"))
        with open(os.path.join(local.state, "redis.pid")) as f:
            redis_pid = int(f.read())
        os.kill(redis_pid, signal.SIGKILL)
        eventually(lambda: not os.path.exists(f"/proc/{redis_pid}"), what="Redis exiting")
        local.up()  # starts Redis again (only what is not running)
        assert count_with(local, cookie)[0] == 6, "the session must survive the crash"

        # A frozen Redis (SIGSTOP, a paused VM) accepts connections and never answers: status
        # says so within seconds and exits 3 (it used to hang with no output).
        with open(os.path.join(local.state, "redis.pid")) as f:
            redis_pid = int(f.read())
        os.kill(redis_pid, signal.SIGSTOP)
        try:
            started = time.time()
            frozen = local.run("status", check=False)
            assert frozen.returncode == 3 and "no answer within 2 s" in frozen.stdout, (frozen.returncode, frozen.stdout)
            assert time.time() - started < 30
        finally:
            os.kill(redis_pid, signal.SIGCONT)
        # So is a frozen instance, by name (nginx notices it only one timeout per request later).
        instance = local.env["FCGI_PORTS"].split()[0]
        instance_pid = int(open(os.path.join(local.state, f"fcgi-{instance}.pid")).read())
        assert "(livez 200)" in local.run("status").stdout
        os.kill(instance_pid, signal.SIGSTOP)
        try:
            frozen = local.run("status", check=False)
            line = next(l for l in frozen.stdout.splitlines() if f"session-fcgi :{instance}" in l)
            assert frozen.returncode == 3 and "livez: no answer" in line, frozen.stdout
        finally:
            os.kill(instance_pid, signal.SIGCONT)

        # Every instance gone: nginx's own 502, in the API's JSON with Retry-After (it was
        # nginx's HTML page); `up` brings them back.
        for port in local.env["FCGI_PORTS"].split():
            with open(os.path.join(local.state, f"fcgi-{port}.pid")) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        time.sleep(0.3)
        status, body, headers = get(local.url("/count"), cookie)
        assert status == 502 and json.loads(body)["error"], (status, body)
        assert headers.get("Retry-After") == "1" and headers.get("Content-Type", "").startswith("application/json"), headers
        local.up()
        assert count_with(local, cookie)[0] == 7
    finally:
        local.down()


def test_sessions_of_a_state_folder_from_before_the_append_only_file_are_kept(base):
    local = Local(base)
    try:
        local.up()
        count, cookie = count_with(local)
        count, cookie = count_with(local, cookie)
        password = local.secret("redis-password")
        assert redis_cli(local, "save", password=password) == "OK"
        local.down()
        # What an older deploy/local left: the data in dump.rdb (0644), no append-only file.
        shutil.rmtree(os.path.join(local.state, "appendonlydir"))
        os.chmod(os.path.join(local.state, "dump.rdb"), 0o644)
        local.up()
        assert count_with(local, cookie)[0] == 3, "the session in dump.rdb must survive the upgrade"
        assert os.path.isdir(os.path.join(local.state, "appendonlydir"))
        assert stat.S_IMODE(os.stat(os.path.join(local.state, "dump.rdb")).st_mode) == 0o600
        assert redis_cli(local, "config", "get", "appendonly", password=password).split() == ["appendonly", "yes"]
        # And from now on a crash keeps it.
        with open(os.path.join(local.state, "redis.pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        time.sleep(0.3)
        local.up()
        assert count_with(local, cookie)[0] == 4
    finally:
        local.down()


def test_external_redis_password_stays_off_command_lines(base):
    password = "external-" + os.urandom(12).hex()
    port = free_port()
    config = os.path.join(base, "external-redis.conf")
    with open(config, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\nrequirepass {password}\n")
    os.chmod(config, 0o600)
    redis = subprocess.Popen(["redis-server", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip():
                break
            time.sleep(0.05)
        password_file = os.path.join(base, "external-password")
        with open(password_file, "w") as f:
            f.write(password + "\n")
        os.chmod(password_file, 0o600)
        for settings in ({"REDIS_URL": f"redis://:{password}@127.0.0.1:{port}"},
                         {"REDIS_URL": f"redis://127.0.0.1:{port}", "REDIS_PASSWORD_FILE": password_file}):
            local = Local(base, **settings)
            try:
                local.up()
                assert count_with(local)[0] == 1, settings
                assert "external (REDIS_URL)" in local.run("status").stdout
                # status without REDIS_URL still describes this stack (review s19: it called it
                # down), and up without it is refused, not half-applied with a Redis of its own.
                external = local.env.pop("REDIS_URL")
                try:
                    status = local.run("status", check=False)
                    assert status.returncode == 0 and "external (REDIS_URL)" in status.stdout, status.stdout
                    refused = local.run("up", check=False)
                    assert refused.returncode == 1 and "REDIS_EXTERNAL" in refused.stderr, refused.stderr
                finally:
                    local.env["REDIS_URL"] = external
                for line in command_lines():
                    assert password not in line, f"the Redis password is on a command line: {line}"
            finally:
                local.down()
                shutil.rmtree(local.state, ignore_errors=True)
    finally:
        redis.send_signal(signal.SIGTERM)
        redis.wait(timeout=10)


def test_secret_flags_in_extra_args_are_refused(base):
    for extra in ("--admin-token abcdefghijklmnopqrstuvwxyz0123456789",
                  "--cookie-signing-keys=abcdefghijklmnopqrstuvwxyz0123456789",
                  "--redis-url redis://:pw@127.0.0.1:1"):
        local = Local(base, FCGI_EXTRA_ARGS=extra)
        try:
            result = local.run("up", check=False)
            assert result.returncode != 0, extra
            assert "FCGI_EXTRA_ARGS" in result.stderr, result.stderr
            assert not os.path.exists(os.path.join(local.state, "redis.pid")), "nothing should have started"
        finally:
            local.down()


def test_a_mistyped_option_is_named_and_a_failed_up_leaves_nothing_running(base):
    local = Local(base, FCGI_EXTRA_ARGS="--cookie-samesite Foo")
    try:
        result = local.run("up", check=False)
        assert result.returncode != 0
        assert "--cookie-samesite: Strict, Lax or None" in result.stderr, result.stderr
        assert "stopping what it started" in result.stderr, result.stderr
        assert not os.path.exists(os.path.join(local.state, "redis.pid")), "the Redis this up started was left running"
    finally:
        local.down()


def test_ports_held_by_another_process_are_named_before_anything_starts_on_them(base):
    for setting in ("REDIS_PORT", "PORT", "FCGI_PORTS"):
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(8)
        local = Local(base, **{setting: str(squatter.getsockname()[1])})
        try:
            result = local.run("up", check=False)
            assert result.returncode != 0, setting
            assert f"{setting}: 127.0.0.1:{squatter.getsockname()[1]} is already in use" in result.stderr, result.stderr
            status = local.run("status", check=False).stdout
            assert "running" not in status, f"a failed up left processes running:\n{status}"
            assert "redis :" in status, status
        finally:
            local.down()
            squatter.close()


def test_status_says_what_runs_with_its_exit_status_and_up_refuses_other_settings(base):
    """New-user review s19: `status` exited 0 with Redis or an instance down, probed plain HTTP
    on an HTTPS stack unless HTTPS=1 was repeated, and `up` with another PORT, HTTPS or
    FCGI_EXTRA_ARGS on a running stack claimed things were running, then failed or silently
    kept the old settings."""
    local = Local(base, HTTPS="1")
    try:
        local.up()
        plain = {k: v for k, v in local.env.items() if k != "HTTPS"}
        status = subprocess.run(["env", "-i"] + [f"{k}={v}" for k, v in plain.items()] + [LOCAL, "status"],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"GET https://127.0.0.1:{local.port}/healthz" in status.stdout and "(200)" in status.stdout, status.stdout
        # Over HTTPS the cookie is __Host-sid, Secure (attack review s21: it was a plain `sid`).
        headers = subprocess.run(["curl", "-sk", "-D", "-", "-o", "/dev/null", f"https://127.0.0.1:{local.port}/count"],
                                 capture_output=True, text=True, timeout=10).stdout
        cookie = next((line for line in headers.splitlines() if line.lower().startswith("set-cookie:")), "")
        assert "__Host-sid=" in cookie and "Secure" in cookie and "Path=/" in cookie, headers
        # Plain HTTP to the HTTPS port: a JSON 400 like every other refusal (new-user review s21).
        with socket.create_connection(("127.0.0.1", local.port), timeout=5) as plain_http:
            plain_http.sendall(b"GET /count HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := plain_http.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400") and b"application/json" in answer and b"use https://" in answer, answer
        for setting, value in [("PORT", str(free_port())), ("HTTPS", "0"), ("FCGI_EXTRA_ARGS", "--idle-timeout 60")]:
            saved = local.env.get(setting)
            local.env[setting] = value
            refused = local.run("up", check=False)
            local.env[setting] = saved
            assert refused.returncode == 1, (setting, refused.stdout, refused.stderr)
            assert f"{setting}=" in refused.stderr and "deploy/local down" in refused.stderr, refused.stderr
        assert local.run("status").returncode == 0, "a refused up leaves the stack as it was"
        reloaded = local.run("reload")
        assert reloaded.stderr.count(": reloaded (users file") == 2 and "nginx: reloading" in reloaded.stderr, reloaded.stderr
        for port in local.env["FCGI_PORTS"].split():
            log = os.path.join(local.state, f"fcgi-{port}.log")
            eventually(lambda: "SIGHUP: users, signing keys, trusted-login keys and admin token reloaded" in open(log).read(),
                       what=f"the SIGHUP line in {log}")
        assert local.run("status").returncode == 0, "everything still serves after a reload"
        instance = local.env["FCGI_PORTS"].split()[0]
        os.kill(int(open(os.path.join(local.state, f"fcgi-{instance}.pid")).read()), signal.SIGTERM)
        eventually(lambda: local.run("status", check=False).returncode == 3, what="status seeing the instance gone")
        down_one = local.run("status", check=False)
        assert down_one.returncode == 3 and f"session-fcgi :{instance}" in down_one.stdout, down_one.stdout
        local.env["PORT"] = "abc"
        assert "PORT must be a port number" in local.run("up", check=False).stderr
    finally:
        local.env["PORT"] = str(local.port)
        local.down()
    assert local.run("status", check=False).returncode == 3


def socket_instances(local, paths):
    """Checks a deploy/local stack whose instances listen on `paths`."""
    statuses = local.run("status").stdout
    for path in paths:
        assert re.search(rf"session-fcgi unix:{re.escape(path)}\s+running", statuses), statuses
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    for _ in range(4):
        count_with(local)
    time.sleep(0.2)
    with open(os.path.join(local.state, "nginx-access.log")) as f:
        used = set(re.findall(r'upstream="(unix:[^"]+)"', f.read()))
    assert used == {"unix:" + p for p in paths}, used


def test_unix_socket_instances_only_nginx_can_use(base):
    if not IS_ROOT:
        pytest.skip("as root: sockets for nginx's www-data workers")
    # Two folders deep: deploy/local makes both, the way through open, the last one closed.
    sockets = [os.path.join(base, "run", "session-store", "a.sock"), os.path.join(base, "run", "session-store", "b.sock")]
    local = Local(base, FCGI_SOCKETS=" ".join(sockets))
    try:
        local.up()
        socket_instances(local, sockets)
        for path in sockets:
            info = os.stat(path)
            assert stat.S_IMODE(info.st_mode) == 0o660
            assert info.st_gid == shutil._get_gid(NGINX_GROUP)
        folder = os.stat(os.path.dirname(sockets[0]))
        assert stat.S_IMODE(folder.st_mode) == 0o750 and folder.st_gid == shutil._get_gid(NGINX_GROUP)
        # Another local user cannot even reach the sockets.
        probe = subprocess.run([RUNUSER, "-u", "nobody", "--", "cgi-fcgi", "-bind", "-connect", sockets[0]],
                               env={"PATH": "/usr/bin:/bin", "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/livez"},
                               capture_output=True, text=True, timeout=10)
        assert probe.returncode != 0 and "alive" not in probe.stdout
    finally:
        local.down()
    assert not any(os.path.exists(p) for p in sockets), "down must remove the sockets"
    assert not os.path.exists(os.path.join(base, "run")), "down must remove the (empty) folders up made"
    assert "stopped" in local.run("status", check=False).stdout


def test_sockets_that_nginx_cannot_reach_are_refused(base):
    if not IS_ROOT:
        pytest.skip("as root only (nginx's workers are then another user)")
    local = Local(base)
    local.env["FCGI_SOCKETS"] = os.path.join(local.state, "a.sock")  # inside the private STATE_DIR
    del local.env["FCGI_PORTS"]
    try:
        result = local.run("up", check=False)
        assert result.returncode != 0
        assert "cannot reach" in result.stderr, result.stderr
    finally:
        local.down()


def test_runs_as_an_ordinary_user(base):
    if not IS_ROOT:
        pytest.skip("needs root to act as another user")
    os.chown(base, pwd_uid("nobody"), -1)
    sockets = [os.path.join(base, "run", "a.sock"), os.path.join(base, "run", "b.sock")]
    local = Local(base, user="nobody", FCGI_SOCKETS=" ".join(sockets))
    try:
        local.up()
        socket_instances(local, sockets)
        for path in sockets:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert os.stat(path).st_uid == pwd_uid("nobody")
        assert stat.S_IMODE(os.stat(local.state).st_mode) == 0o700
        password = local.secret("redis-password")
        assert redis_cli(local, "ping", password=password) == "PONG"
    finally:
        local.down()
    assert "stopped" in local.run("status", check=False).stdout


def pwd_uid(name):
    import pwd
    return pwd.getpwnam(name).pw_uid
