"""Trusted login end to end: an application with its own user store logs browsers in through
nginx's X-Accel-Redirect (README, "Logging in from an application").

Real redis-server, a real session-fcgi instance, nginx rendered from the template, and a small
application on its own port behind `location /shop/` that checks passwords itself and, on
success, answers with `X-Accel-Redirect: /_session_login?…`, the assertion made here exactly as
README says (HMAC-SHA-256 in Python, not the project's code). Then what an attacker would try:
the assertion replayed from another browser, forged, expired, sent straight to nginx's internal
location or to the route behind it.
"""
import contextlib
import hashlib
import hmac
import base64
import http.client
import http.server
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

from free_ports import free_port
from test_deploy_local import debug_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = "q7Vf2LxN9cR4tW8mZ1bK6hJ3yP0sD5gAeUoIi"
PASSWORDS = {"ada": "ada's own password"}


def assertion(user, next_path="/shop/welcome", key=KEY, expires_in=60, nonce=None, cross_site=""):
    """The X-Accel-Redirect value README's recipe gives."""
    expires = int(time.time()) + expires_in
    nonce = nonce or secrets.token_urlsafe(18)
    message = f"session-store trusted-login v1\n{user}\n{expires}\n{nonce}\n{next_path}\n{cross_site}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).rstrip(b"=").decode()
    fields = {"user": user, "expires": expires, "nonce": nonce, "next": next_path, "mac": mac}
    if cross_site:
        fields["cross_site"] = cross_site
    return "/_session_login?" + urllib.parse.urlencode(fields)


class ShopApp(http.server.BaseHTTPRequestHandler):
    """The application: POST /shop/login checks its own passwords; GET /shop/accel?to=… answers
    with any X-Accel-Redirect the test hands it (to try forged, expired and replayed ones)."""
    issued = []

    def log_message(self, *arguments):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        user, password = form.get("user", [""])[0], form.get("password", [""])[0]
        if self.path != "/shop/login" or PASSWORDS.get(user) != password:
            self.send_response(401)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"wrong\n")
            return
        target = assertion(user)
        ShopApp.issued.append(target)
        self.send_response(200)
        self.send_header("X-Accel-Redirect", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        parsed = urllib.parse.urlparse(self.path)
        if parsed.path == "/shop/accel":
            self.send_response(200)
            self.send_header("X-Accel-Redirect", urllib.parse.parse_qs(parsed.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"shop page {parsed.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def wait_for_port(port, process, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, f"{what} exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} does not listen on {port} after {timeout} s")


class Stack:
    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="trusted-login-")
        os.chmod(self.folder, 0o755)  # nginx's workers (www-data under root) read below it
        self.processes = []
        self.redis_port, self.fcgi_port, self.nginx_port = free_port(), free_port(), free_port()
        self.app = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), ShopApp)
        threading.Thread(target=self.app.serve_forever, daemon=True).start()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, what, command, port):
        out = open(os.path.join(self.folder, what + ".out"), "wb")
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.processes.append(process)
        wait_for_port(port, process, what)
        return process

    def _start(self):
        self._spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                              "--dir", self.folder], self.redis_port)
        keys = os.path.join(self.folder, "trusted-login-keys")
        with open(os.open(keys, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(f"# the application's key\n{KEY}\n")
        self.log = os.path.join(self.folder, "fcgi.log")
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}"
        self._spawn("session-fcgi", [debug_binary(), "--listen", f"127.0.0.1:{self.fcgi_port}", "--redis-url", self.redis_url,
                                     "--trusted-login-keys-file", keys, "--threads", "4", "--log-file", self.log], self.fcgi_port)
        state = os.path.join(self.folder, "nginx")
        os.makedirs(state)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "STATE_DIR": state,
               "LISTEN": f"127.0.0.1:{self.nginx_port}", "FCGI_ADDRESSES": f"127.0.0.1:{self.fcgi_port}", "NGINX_WORKERS": "1",
               "APP_UPSTREAM": f"127.0.0.1:{free_port()}",
               "EXTRA_LOCATIONS": f"        location /shop/ {{ proxy_pass http://127.0.0.1:{self.app.server_address[1]}; }}\n"}
        config = subprocess.run([os.path.join(ROOT, "nginx", "render")], env=env, capture_output=True, text=True, check=True).stdout
        path = os.path.join(state, "nginx.conf")
        with open(path, "w") as f:
            f.write(config)
        self.nginx_error_log = os.path.join(state, "nginx-error.log")
        self._spawn("nginx", ["nginx", "-p", state, "-c", path, "-e", self.nginx_error_log, "-g", "daemon off;"], self.nginx_port)

    def request(self, method, path, cookie=None, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.nginx_port, timeout=10)
        headers = dict(headers or {})
        if cookie:
            headers["Cookie"] = cookie
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
        connection.close()
        cookies = [value for name, value in response.getheaders() if name.lower() == "set-cookie"]
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), cookies, text

    def stop(self):
        self.app.shutdown()
        self.app.server_close()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT if process.args[0] == "nginx" else signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def stack():
    if not shutil.which("redis-server") or not shutil.which("nginx"):
        pytest.skip("needs redis-server and nginx")
    made = Stack()
    yield made
    made.stop()


def sid(cookies):
    for value in cookies:
        if value.startswith("sid=") and not value.startswith("sid=;"):
            return value.split(";", 1)[0]
    return None


def test_an_application_logs_a_browser_in_and_strangers_gain_nothing(stack):
    status, _, cookies, _ = stack.request("GET", "/count")
    anonymous = sid(cookies)
    assert status == 200 and anonymous

    # The application checks its own password, and nginx turns its X-Accel-Redirect into the
    # login: a 303 to `next` with a new session cookie, the old id rotated away.
    status, _, cookies, _ = stack.request("POST", "/shop/login", cookie=anonymous, body="user=ada&password=nope")
    assert status == 401 and sid(cookies) is None
    status, headers, cookies, body = stack.request("POST", "/shop/login", cookie=anonymous,
                                                   body=urllib.parse.urlencode({"user": "ada", "password": PASSWORDS["ada"]}))
    assert status == 303, (status, body)
    assert headers["location"] == "/shop/welcome"
    assert "x-accel-redirect" not in headers
    logged_in = sid(cookies)
    assert logged_in and logged_in != anonymous
    assert "HttpOnly" in cookies[0] and "SameSite=Lax" in cookies[0]
    status, _, _, body = stack.request("GET", "/me", cookie=logged_in)
    assert status == 200 and '"user":"ada"' in body and '"count":1' in body, body
    assert stack.request("GET", "/me", cookie=anonymous)[0] == 401
    # The gateway lets the session through to the protected upstream, naming the user.
    status, _, _, body = stack.request("GET", "/app/", cookie=logged_in)
    assert status == 200 and "hello ada" in body, body

    # A stranger who got hold of the assertion (the application logged it, say) replays it
    # from a browser of their own: refused, and no cookie.
    stranger = sid(stack.request("GET", "/count")[2])
    replayed = ShopApp.issued[-1]
    status, _, cookies, body = stack.request("GET", "/shop/accel?to=" + urllib.parse.quote(replayed, safe=""), cookie=stranger)
    assert status == 403 and sid(cookies) is None, (status, body)
    assert '"user"' not in stack.request("GET", "/me", cookie=stranger)[3]

    # Forged (another key, or a field changed), expired, or too far ahead: refused.
    changed = assertion("ada").replace("user=ada", "user=bob")
    for target in (assertion("ada", key="another key of 32 characters or more!"), changed, assertion("ada", expires_in=-5),
                   assertion("ada", expires_in=3600)):
        status, _, cookies, body = stack.request("GET", "/shop/accel?to=" + urllib.parse.quote(target, safe=""), cookie=stranger)
        assert status == 403 and sid(cookies) is None, (target, status, body)

    # Clients cannot reach nginx's internal location or the route behind it, even with a good
    # assertion, which still works afterwards through the application.
    good = assertion("ada", next_path="/shop/again")
    for path in (good, good.replace("/_session_login", "/trusted-login"), good.replace("/_session_login", "/%5Fsession_login")):
        status, _, cookies, _ = stack.request("GET", path, cookie=stranger)
        assert status == 404 and sid(cookies) is None, (path, status)
    status, headers, cookies, _ = stack.request("GET", "/shop/accel?to=" + urllib.parse.quote(good, safe=""), cookie=stranger)
    assert status == 303 and headers["location"] == "/shop/again" and sid(cookies)

    # Login CSRF (attack review s22): a page on another site posts the attacker's own user
    # and password to the application from the victim's browser. The browser says where the
    # request came from, nginx passes that on, and the login is refused: the victim's browser
    # stays out of the attacker's account. An OAuth-style callback, which the application
    # allows cross-site in its assertion, still logs in.
    victim = sid(stack.request("GET", "/count")[2])
    status, _, cookies, body = stack.request("POST", "/shop/login", cookie=victim,
                                             body=urllib.parse.urlencode({"user": "ada", "password": PASSWORDS["ada"]}),
                                             headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and sid(cookies) is None, (status, body)
    assert '"user"' not in stack.request("GET", "/me", cookie=victim)[3]
    callback = assertion("ada", next_path="/shop/after-callback", cross_site="allow")
    status, headers, cookies, _ = stack.request("GET", "/shop/accel?to=" + urllib.parse.quote(callback, safe=""), cookie=victim,
                                                headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 303 and headers["location"] == "/shop/after-callback" and sid(cookies)
    callback_session = sid(cookies)

    # Every session an application logged in is indexed: revoke-user ends them all.
    result = subprocess.run([debug_binary(), "revoke-user", "ada", "--redis-url", stack.redis_url], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert stack.request("GET", "/me", cookie=logged_in)[0] == 401
    assert stack.request("GET", "/me", cookie=callback_session)[0] == 401

    # The log says why each was refused, and never holds an assertion, nonce or session id.
    log = open(stack.log).read()
    for reason in ("replayed", "forged", "expired", "too_far_ahead", "cross_site"):
        assert f"reason={reason}" in log, reason
    assert log.count("via=trusted") == 3
    for secret in [urllib.parse.parse_qs(urllib.parse.urlparse(target).query)["mac"][0] for target in ShopApp.issued + [good]] + \
                  [urllib.parse.parse_qs(urllib.parse.urlparse(target).query)["nonce"][0] for target in ShopApp.issued + [good]] + \
                  [value.split("=", 1)[1] for value in (anonymous, logged_in, stranger)]:
        assert secret not in log
