"""README's "Deploying to production", followed as far as a machine without systemd as PID 1
allows: the secrets made as step 3 makes them, the instance's configuration (the defaults
file plus the credentials drop-in, credentials folder emulated) checked by `session-fcgi
check-config` against a real, password-protected Redis, the nginx site of step 5 under
Debian's own nginx.conf, and the logrotate file of step 6. The units themselves are checked by
test_systemd_unit.py (systemd-analyze verify and security).
"""
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from test_deploy_local import free_port, debug_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def unit_environment(path, credentials):
    """The environment a unit file or drop-in sets, with %d (the credentials folder) filled in."""
    env = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("Environment="):
            key, _, value = line[len("Environment="):].partition("=")
            env[key] = value.replace("%d", credentials)
    return env


def defaults_environment(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value
    return env


@pytest.fixture
def etc():
    folder = tempfile.mkdtemp(prefix="session-prod-")
    os.chmod(folder, 0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def make_secrets(etc, binary):
    """Step 3, word for word but for the folder."""
    for name in ["admin-token", "cookie-signing-keys", "log-key", "redis-password"]:
        with open(os.path.join(etc, name), "w") as f:
            f.write(subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True, text=True, check=True).stdout)
    users = os.path.join(etc, "users")
    subprocess.run(["sh", "-c", f"""hash=$("{binary}" hash-password) && printf 'ada:%s\\n' "$hash" >> {users}"""],
                   input=b"a strong password here\n", check=True)
    for name in os.listdir(etc):
        os.chmod(os.path.join(etc, name), 0o600)


def hash_password_on_a_terminal(binary, typed):
    """`session-fcgi hash-password` on a pseudo-terminal, as step 3 is run by hand: `typed` is
    written one line at a time once the prompt for it shows. Returns (what the terminal showed
    on both streams, standard output alone, exit status)."""
    import pty
    import select
    out_read, out_write = os.pipe()
    pid, terminal = pty.fork()
    if pid == 0:
        os.dup2(out_write, 1)
        os.execv(binary, [binary, "hash-password", "--iterations", "10000"])
    os.close(out_write)
    screen, stdout = b"", b""
    pending = list(typed)
    deadline = time.time() + 10
    while time.time() < deadline:
        ready, _, _ = select.select([terminal, out_read], [], [], 0.2)
        if terminal in ready:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:
                chunk = b""
            screen += chunk
            if pending and screen.endswith(b": "):  # a prompt, not a line after it
                os.write(terminal, pending.pop(0))
        if out_read in ready:
            chunk = os.read(out_read, 4096)
            stdout += chunk
            if not chunk:
                break
    finished, status = os.waitpid(pid, os.WNOHANG)
    if finished == 0:  # still waiting for input that was never asked for
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    os.close(out_read)
    os.close(terminal)
    return screen, stdout.decode(), os.waitstatus_to_exitcode(status)


def test_hash_password_on_a_terminal_prompts_hides_the_password_and_asks_twice():
    binary = debug_binary()
    screen, stdout, status = hash_password_on_a_terminal(binary, [b"a strong password here\n", b"a strong password here\n"])
    assert status == 0, screen
    assert b"Password:" in screen and b"Again:" in screen, screen
    assert b"strong password" not in screen, f"the password was echoed: {screen!r}"
    hashed = stdout.strip()
    assert re.fullmatch(r"pbkdf2-sha256\$10000\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+", hashed), stdout
    # Ctrl-C at the prompt puts echo back (review s19: the terminal was left silent).
    import pty
    import select
    import termios
    pid, terminal = pty.fork()
    if pid == 0:
        os.execv(binary, [binary, "hash-password"])
    shown = b""
    deadline = time.time() + 10
    while time.time() < deadline and not shown.endswith(b": "):
        if select.select([terminal], [], [], 0.2)[0]:
            shown += os.read(terminal, 100)
    assert not termios.tcgetattr(terminal)[3] & termios.ECHO, "echo is off at the prompt"
    os.write(terminal, b"\x03")
    os.waitpid(pid, 0)
    assert termios.tcgetattr(terminal)[3] & termios.ECHO, "echo is back after Ctrl-C"
    os.close(terminal)
    # A typo in the second entry prints no hash.
    screen, stdout, status = hash_password_on_a_terminal(binary, [b"a strong password here\n", b"a strong passwrod here\n"])
    assert status == 65 and stdout == "" and b"differ" in screen, (status, stdout, screen)


def test_a_tls_redis_that_closes_the_connection_is_an_outage_not_a_refusal():
    """Review s19: an end of file during the TLS handshake (a Redis restarting, a TLS proxy whose
    backend is down) was classed as a refused TLS set-up, so check-config exited 1 and the
    systemd unit would not start; and a reset could kill check-config with SIGPIPE. Only an
    alert or a certificate that does not verify is a refusal."""
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def close_after_hello(read_first):
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            if read_first:
                connection.settimeout(2)
                try:
                    connection.recv(4096)
                except OSError:
                    pass
            connection.close()

    binary = debug_binary()
    try:
        for read_first in (True, False):
            stop.clear()
            thread = threading.Thread(target=close_after_hello, args=(read_first,), daemon=True)
            thread.start()
            for _ in range(3):
                result = subprocess.run([binary, "check-config"], env={"PATH": SYSTEM_PATH, "REDIS_URL": f"rediss://127.0.0.1:{port}"},
                                        capture_output=True, text=True, timeout=30)
                assert result.returncode == 2, (read_first, result.returncode, result.stdout, result.stderr)
                assert "cannot be reached now" in result.stdout, result.stdout
            stop.set()
            socket.create_connection(("127.0.0.1", port)).close()  # wakes the accept
            thread.join(timeout=5)
    finally:
        stop.set()
        listener.close()


def test_check_config_passes_for_the_documented_setup_and_fails_for_a_broken_one(etc):
    binary = debug_binary()
    make_secrets(etc, binary)
    port = free_port()
    redis_conf = os.path.join(etc, "redis.conf")
    with open(redis_conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {etc}\n"
                f"requirepass \"{open(os.path.join(etc, 'redis-password')).read().strip()}\"\n")
    redis = subprocess.Popen(["redis-server", redis_conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() not in ("PONG", "NOAUTH Authentication required."):
            time.sleep(0.05)
        env = {"PATH": SYSTEM_PATH}
        env.update(defaults_environment(os.path.join(ROOT, "deploy", "systemd", "session-fcgi.default")))
        env.update(unit_environment(os.path.join(ROOT, "deploy", "systemd", "session-fcgi-credentials.conf"), etc))
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        result = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, result.stdout + result.stderr
        for expected in ["users file", "1 users", "cookies signed with 1 key(s)", "admin token set", "answers PING"]:
            assert expected in result.stdout, result.stdout
        for secret in ["admin-token", "redis-password", "cookie-signing-keys"]:
            assert open(os.path.join(etc, secret)).read().strip() not in result.stdout
        assert "evicts keys" not in result.stdout, result.stdout
        # A Redis that evicts keys would drop users' indexes (revoke-all then misses sessions):
        # check-config warns (the configuration still works; exit 0).
        password = open(os.path.join(etc, "redis-password")).read().strip()
        redis_env = dict(env, REDISCLI_AUTH=password)
        subprocess.run(["redis-cli", "-p", str(port), "config", "set", "maxmemory-policy", "allkeys-lru"], env=redis_env, check=True,
                       capture_output=True)
        unbounded = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True, timeout=20)
        assert "evicts keys" not in unbounded.stdout, "no memory limit: nothing is evicted"
        # ... but nothing bounds Redis's memory either (operator review s22): a warning.
        assert unbounded.returncode == 0 and "no memory limit (maxmemory 0)" in unbounded.stdout, unbounded.stdout
        subprocess.run(["redis-cli", "-p", str(port), "config", "set", "maxmemory", "100mb"], env=redis_env, check=True, capture_output=True)
        evicting = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True, timeout=20)
        assert evicting.returncode == 0 and "warning" in evicting.stdout and "maxmemory-policy allkeys-lru" in evicting.stdout, evicting.stdout
        assert "no memory limit" not in evicting.stdout
        # Timeouts that outlast the template's nginx (operator review s22): warnings, exit 0.
        timing = subprocess.run([binary, "check-config", "--redis-timeout-ms", "8000", "--idle-connection-timeout", "60"], env=env,
                                capture_output=True, text=True, timeout=20)
        assert timing.returncode == 0, timing.stdout + timing.stderr
        assert "fastcgi_read_timeout" in timing.stdout and "keepalive_timeout (60s)" in timing.stdout, timing.stdout
        assert "fastcgi_read_timeout" not in evicting.stdout and "keepalive_timeout" not in evicting.stdout, evicting.stdout
        subprocess.run(["redis-cli", "-p", str(port), "config", "set", "maxmemory-policy", "noeviction"], env=redis_env, check=True,
                       capture_output=True)
        # A database Redis does not have (it has 16) cannot work either: exit 1, named (it was
        # "cannot be reached now", exit 2, and every request then got a 500).
        no_such_database = subprocess.run([binary, "check-config"], env=dict(env, REDIS_URL=f"redis://127.0.0.1:{port}/16"),
                                          capture_output=True, text=True, timeout=20)
        assert no_such_database.returncode == 1 and "database" in no_such_database.stdout, no_such_database.stdout
        # A wrong Redis password is a configuration that cannot work (exit 1, so that the unit's
        # start check stops there), named as such; Redis merely away is exit 2.
        with open(os.path.join(etc, "redis-password"), "w") as f:
            f.write("not-the-password\n")
        refused = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True, timeout=20)
        assert refused.returncode == 1 and "refuses these credentials" in refused.stdout, refused.stdout + refused.stderr
        away = subprocess.run([binary, "check-config"], env=dict(env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"),
                              capture_output=True, text=True, timeout=20)
        assert away.returncode == 2 and "cannot be reached now" in away.stdout, away.stdout + away.stderr
        # A users file with a broken line is a problem (exit 1), named with its line.
        with open(os.path.join(etc, "users"), "a") as f:
            f.write("bob:not-a-hash\n")
        broken = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True, timeout=20)
        assert broken.returncode == 1 and "line 2" in broken.stdout, broken.stdout + broken.stderr
    finally:
        redis.terminate()
        redis.wait(timeout=10)


def test_the_nginx_site_file_loads_under_debians_nginx_conf(etc):
    env = {"PATH": SYSTEM_PATH, "LISTEN": f"127.0.0.1:{free_port()}", "METRICS_LISTEN": f"127.0.0.1:{free_port()}",
           "FCGI_ADDRESSES": "unix:/run/session-fcgi/a/fcgi.sock unix:/run/session-fcgi/b/fcgi.sock",
           "ACCESS_LOG": os.path.join(etc, "access.log")}
    site = subprocess.run([os.path.join(ROOT, "nginx", "render"), "--site"], env=env, capture_output=True, text=True, check=True).stdout
    assert "location = /metrics/a" in site and "location = /metrics/b" in site, "instances named by their folders"
    assert "worker_processes" not in site and "nginx-tmp" not in site and "demo_app_user" not in site
    # New-user review s19: the site kept the demo's /app/ (to 127.0.0.1:8081, whatever runs
    # there on a real host) and /private/ (the build checkout); only those named are kept.
    assert "location /app/" not in site and "location /private/" not in site and "8081" not in site, site
    named = subprocess.run([os.path.join(ROOT, "nginx", "render"), "--site"], env={**env, "APP_UPSTREAM": "10.0.0.9:8000"},
                           capture_output=True, text=True, check=True).stdout
    assert "location /app/" in named and "proxy_pass http://10.0.0.9:8000;" in named and "location /private/" not in named
    # New-user review s20: the limits, timeouts and access log were http-wide, so the other
    # sites of a shared nginx got 413 for uploads over 64 KiB; they belong to the server now.
    depth, http_level = 0, ""
    for line in re.sub(r"#.*", "", site).splitlines():  # what is outside every block
        if depth == 0 and "{" not in line:
            http_level += line + "\n"
        depth += line.count("{") - line.count("}")
    for directive in ["client_max_body_size", "client_header_timeout", "send_timeout", "keepalive_timeout", "access_log",
                      "server_tokens", "large_client_header_buffers"]:
        assert directive not in http_level, (directive, http_level)
        assert directive in site, directive
    site_path = os.path.join(etc, "session-store.conf")
    with open(site_path, "w") as f:
        f.write(site)
    debian = open("/etc/nginx/nginx.conf").read()
    debian = debian.replace("include /etc/nginx/conf.d/*.conf;", f"include {site_path};")
    debian = re.sub(r"include /etc/nginx/sites-enabled/\*;", "", debian)
    debian = debian.replace("pid /run/nginx.pid;", f"pid {etc}/nginx.pid;")
    config = os.path.join(etc, "nginx.conf")
    with open(config, "w") as f:
        f.write(debian)
    result = subprocess.run(["nginx", "-t", "-c", config, "-e", os.path.join(etc, "error.log")], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr


def test_the_logrotate_file_is_valid(etc):
    logrotate = shutil.which("logrotate", path=SYSTEM_PATH)
    if logrotate is None:
        pytest.skip("logrotate is not installed")
    result = subprocess.run([logrotate, "-d", "-s", os.path.join(etc, "state"), os.path.join(ROOT, "deploy", "logrotate", "session-fcgi")],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
