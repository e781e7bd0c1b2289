"""The systemd unit (deploy/systemd/session-fcgi@.service): valid for systemd, and its socket
setup does what it says. systemd itself does not run here (no systemd as PID 1 in CI), so the
socket test plays its part: the runtime folder as RuntimeDirectory=/RuntimeDirectoryMode= make
it, the privileged ExecStartPre, then the ExecStart command line run as an unprivileged user
under the unit's UMask, all taken from the unit file itself.
"""
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEMD = os.path.join(ROOT, "deploy", "systemd")
UNIT = os.path.join(SYSTEMD, "session-fcgi@.service")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
RUNUSER = shutil.which("runuser", path=SYSTEM_PATH) or "runuser"


def unit_settings(path=UNIT):
    """Key → list of values of the unit file (comments skipped)."""
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")):
                continue
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_systemd_analyze_verify_finds_nothing():
    analyze = shutil.which("systemd-analyze", path=SYSTEM_PATH)
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    folder = tempfile.mkdtemp(prefix="session-unit-")
    try:
        shutil.copy(UNIT, folder)
        os.makedirs(os.path.join(folder, "session-fcgi@.service.d"))
        checks = [("session-fcgi@a.service", None)]
        # The TCP drop-in on top of the unit.
        shutil.copy(os.path.join(SYSTEMD, "session-fcgi-tcp.conf"), os.path.join(folder, "session-fcgi@.service.d", "tcp.conf"))
        checks.append(("session-fcgi@9001.service", None))
        # The credentials drop-in on top of the unit (secrets as systemd credentials).
        shutil.copy(UNIT, os.path.join(folder, "credentials@.service"))
        os.makedirs(os.path.join(folder, "credentials@.service.d"))
        shutil.copy(os.path.join(SYSTEMD, "session-fcgi-credentials.conf"), os.path.join(folder, "credentials@.service.d", "credentials.conf"))
        checks.append(("credentials@a.service", None))
        # The log-file drop-in.
        shutil.copy(UNIT, os.path.join(folder, "logfile@.service"))
        os.makedirs(os.path.join(folder, "logfile@.service.d"))
        shutil.copy(os.path.join(SYSTEMD, "session-fcgi-logfile.conf"), os.path.join(folder, "logfile@.service.d", "logfile.conf"))
        checks.append(("logfile@a.service", None))
        for name, _ in checks:
            result = subprocess.run([analyze, "verify", name], env={"PATH": SYSTEM_PATH, "SYSTEMD_UNIT_PATH": folder + ":"},
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr.strip() == "", \
                f"{name}:\n{result.stdout}{result.stderr}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_unit_is_sandboxed_as_tightly_as_the_service_allows():
    analyze = shutil.which("systemd-analyze", path=SYSTEM_PATH)
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run([analyze, "security", "--offline=yes", UNIT], env={"PATH": SYSTEM_PATH},
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    # 0 is "no exposure"; the unit keeps the network (Redis) and its host root, nothing else.
    assert float(match.group(1)) <= 1.5, result.stdout


def test_unit_listens_on_a_socket_in_its_runtime_folder_and_keeps_its_sandbox():
    settings = unit_settings()
    assert settings["RuntimeDirectory"] == ["session-fcgi/%i"]
    assert settings["RuntimeDirectoryMode"] == ["2750"]
    start = shlex.split(settings["ExecStart"][0])
    assert start[start.index("-s") + 1] == "%t/session-fcgi/%i/fcgi.sock"
    assert start[start.index("-M") + 1] == "0660"
    assert "-a" not in start and "-p" not in start, "TCP only through the drop-in"
    for key, value in [("DynamicUser", "yes"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("PrivateDevices", "yes"),
                       ("CapabilityBoundingSet", ""), ("RestrictSUIDSGID", "yes")]:
        assert settings.get(key) == [value], key
    assert "AF_UNIX" in settings["RestrictAddressFamilies"][0]


def test_only_nginxs_group_can_use_the_units_socket():
    if os.geteuid() != 0:
        pytest.skip("needs root to act as the service's user and as nginx's")
    binary = os.path.join(ROOT, ".build", "debug", "session-fcgi")
    if not os.access(binary, os.X_OK):
        pytest.skip("swift build first")
    settings = unit_settings()
    group = dict(v.split("=", 1) for v in settings["Environment"])["NGINX_GROUP"]
    runtime = tempfile.mkdtemp(prefix="session-unit-run-")  # stands for %t (/run)
    os.chmod(runtime, 0o755)
    instance = "a"

    def expand(word):
        return (word.replace("%t", runtime).replace("%i", instance).replace("${NGINX_GROUP}", group)
                .replace("/usr/local/bin/session-fcgi", binary))

    process = None
    try:
        # What systemd does for RuntimeDirectory= and RuntimeDirectoryMode= (the service's
        # user: nobody stands for the dynamic one).
        folder = os.path.join(runtime, expand(settings["RuntimeDirectory"][0]))
        os.makedirs(folder)
        os.chown(folder, pwd_uid("nobody"), pwd_gid("nobody"))
        os.chmod(folder, int(settings["RuntimeDirectoryMode"][0], 8))
        # ExecStartPre=+… runs as root.
        for line in settings["ExecStartPre"]:
            subprocess.run([expand(w) for w in shlex.split(line.lstrip("+"))], check=True)
        # ExecStart as the service's user, with the unit's umask.
        start = [expand(w) for w in shlex.split(settings["ExecStart"][0])]
        umask = settings["UMask"][0]
        process = subprocess.Popen([RUNUSER, "-u", "nobody", "--", "sh", "-c", f'umask {umask}; exec "$@"', "sh"] + start,
                                   env={"PATH": SYSTEM_PATH, "REDIS_URL": "redis://127.0.0.1:1"},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        path = os.path.join(folder, "fcgi.sock")
        for _ in range(100):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        info = os.stat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == pwd_gid_of_group(group), "the socket must belong to nginx's group"
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o2750

        def ask(user):
            return subprocess.run([RUNUSER, "-u", user, "--", "cgi-fcgi", "-bind", "-connect", path],
                                  env={"PATH": SYSTEM_PATH, "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/livez",
                                       "REQUEST_URI": "/livez"}, capture_output=True, text=True, timeout=10)

        nginx = ask(group)
        assert nginx.returncode == 0 and '{"status":"alive"}' in nginx.stdout, nginx
        stranger = ask("daemon")
        assert stranger.returncode != 0 and "alive" not in stranger.stdout
    finally:
        if process is not None:
            stop_under_runuser(process)
        shutil.rmtree(runtime, ignore_errors=True)


def stop_under_runuser(process):
    """runuser forks: stops the instance by its own pid, then runuser."""
    for pid in child_pids(process.pid):
        os.kill(pid, signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


def child_pids(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def pwd_uid(name):
    import pwd
    return pwd.getpwnam(name).pw_uid


def pwd_gid(name):
    import pwd
    return pwd.getpwnam(name).pw_gid


def pwd_gid_of_group(name):
    import grp
    return grp.getgrnam(name).gr_gid


def test_the_start_check_stops_a_configuration_that_cannot_work_and_says_why_in_the_journal():
    """New-user review s19: the unit's check threw check-config's report away (>/dev/null), and
    a value that is not valid (exit 64) passed it. Its command line, taken from the unit, run
    as systemd would (standard output is the journal)."""
    binary = os.path.join(ROOT, ".build", "debug", "session-fcgi")
    if not os.access(binary, os.X_OK):
        pytest.skip("swift build first")
    settings = unit_settings()
    check = [line for line in settings["ExecStartPre"] if "check-config" in line]
    assert len(check) == 1, settings["ExecStartPre"]
    command = [w.replace("/usr/local/bin/session-fcgi", binary) for w in shlex.split(check[0])]

    def run(**environment):
        return subprocess.run(command, env={"PATH": SYSTEM_PATH, **environment}, capture_output=True, text=True, timeout=30)

    refused = run(REDIS_URL="redis://127.0.0.1:1", SESSION_FCGI_USERS_FILE="/nonexistent/users")
    assert refused.returncode != 0, refused
    assert "/nonexistent/users" in refused.stdout + refused.stderr, refused
    invalid = run(REDIS_URL="redis://127.0.0.1:1", SESSION_FCGI_IDLE_TIMEOUT="30m")
    assert invalid.returncode != 0, "a value that is not valid must stop the start too"
    assert "SESSION_FCGI_IDLE_TIMEOUT" in invalid.stdout + invalid.stderr, invalid
    redis_down = run(REDIS_URL="redis://127.0.0.1:1")
    assert redis_down.returncode == 0, f"a Redis that is down now is no reason to stay stopped: {redis_down}"
    assert "unreachable" in redis_down.stdout.lower() or "redis" in redis_down.stdout.lower(), redis_down
    tcp = unit_settings(os.path.join(SYSTEMD, "session-fcgi-tcp.conf"))
    assert [line for line in tcp["ExecStartPre"] if line] == check, "the TCP drop-in runs the same check"


def test_rotated_logs_are_reopened_by_the_instance_as_its_own_user():
    """New-user review s19: logrotate created the new file as root:adm 0640, the instance (an
    unprivileged user) could not open it on SIGHUP and went on writing to the moved file,
    forever. The repository's logrotate file, paths and signal pointed at a temporary folder,
    against an instance running as nobody."""
    logrotate = shutil.which("logrotate", path=SYSTEM_PATH)
    if logrotate is None or os.geteuid() != 0:
        pytest.skip("needs logrotate and root (to run the instance as nobody)")
    source = os.path.join(ROOT, ".build", "debug", "session-fcgi")
    if not os.access(source, os.X_OK):
        pytest.skip("swift build first")
    folder = tempfile.mkdtemp(prefix="session-logrotate-")
    process = None
    try:
        os.chmod(folder, 0o755)
        binary = os.path.join(folder, "session-fcgi")
        shutil.copy(source, binary)
        logs = os.path.join(folder, "log")
        instance_logs = os.path.join(logs, "a")  # LogsDirectory=session-fcgi/%i for instance a
        os.makedirs(instance_logs)
        os.chown(instance_logs, pwd_uid("nobody"), pwd_gid("nobody"))  # what LogsDirectory= makes
        port = free_port()
        process = subprocess.Popen([RUNUSER, "-u", "nobody", "--", binary, "--listen", f"127.0.0.1:{port}",
                                    "--redis-url", "redis://127.0.0.1:1", "--log-file", os.path.join(instance_logs, "session-fcgi.log")],
                                   env={"PATH": SYSTEM_PATH}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = os.path.join(instance_logs, "session-fcgi.log")
        dropin = unit_settings(os.path.join(SYSTEMD, "session-fcgi-logfile.conf"))["Environment"][0]
        assert dropin == "SESSION_FCGI_LOG_FILE=/var/log/session-fcgi/%i/session-fcgi.log", dropin
        assert unit_settings()["LogsDirectory"] == ["session-fcgi/%i"], "one folder per instance (and per dynamic user)"
        for _ in range(100):
            if os.path.exists(log) and os.path.getsize(log) > 0:
                break
            time.sleep(0.05)
        instance = child_pids(process.pid) or [process.pid]
        config = open(os.path.join(ROOT, "deploy", "logrotate", "session-fcgi")).read()
        config = config.replace("/var/log/session-fcgi", logs)
        config = re.sub(r"systemctl kill .*", f"kill -HUP {instance[0]}", config)
        with open(os.path.join(folder, "logrotate.conf"), "w") as f:
            f.write(config)
        result = subprocess.run([logrotate, "-f", "-s", os.path.join(folder, "state"), os.path.join(folder, "logrotate.conf")],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        for _ in range(100):
            if os.path.exists(log):
                break
            time.sleep(0.05)
        assert os.path.exists(log), "the instance made its new log file"
        assert os.stat(log).st_uid == pwd_uid("nobody"), "made by the instance, as its user"
        moved = open(log + ".1").read()
        assert "cannot open log file" not in moved, moved
        # A line written after the rotation lands in the new file: stop the instance, which
        # logs its summary ("served N requests ...") as it ends.
        stop_under_runuser(process)
        process = None
        assert "served " in open(log).read(), open(log).read()
        assert open(log + ".1").read() == moved, "nothing more went to the moved file"
    finally:
        if process is not None:
            stop_under_runuser(process)
        shutil.rmtree(folder, ignore_errors=True)


from free_ports import free_port  # noqa: E402
