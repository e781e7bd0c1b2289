"""Real-browser tests: Debian's chromium, headless, driven by Selenium through chromium-driver,
against the whole stack (deploy/local on private ports: Redis, two session-fcgi instances,
nginx). Screenshots of every step go to artifacts/browser/.

Run by deploy/test; alone: python3 -m pytest Tests/browser -q
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "artifacts", "browser")


sys.path.insert(0, os.path.join(ROOT, "Tests", "deploy"))
from free_ports import free_port  # noqa: E402


class Stack:
    """deploy/local on free ports with a private state folder; `down` stops exactly it."""

    def __init__(self, https=False, extra_args=""):
        self.state = tempfile.mkdtemp(prefix="session-browser-")
        self.port = free_port()
        self.scheme = "https" if https else "http"
        self.env = dict(os.environ, STATE_DIR=self.state, PORT=str(self.port), REDIS_PORT=str(free_port()),
                        FCGI_PORTS=f"{free_port()} {free_port()}", APP_PORT=str(free_port()), METRICS_PORT=str(free_port()), FCGI_THREADS="16",
                        HTTPS="1" if https else "0", FCGI_EXTRA_ARGS=extra_args)
        self.env.pop("REDIS_URL", None)
        up = subprocess.run([os.path.join(ROOT, "deploy", "local"), "up"], env=self.env, capture_output=True, text=True)
        if up.returncode != 0:
            self.down()
            raise RuntimeError(f"deploy/local up failed ({up.returncode}):\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
        with open(os.path.join(self.state, "demo-credentials")) as f:
            self.password = f.read().strip().split(" / ")[1]

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def down(self):
        subprocess.run([os.path.join(ROOT, "deploy", "local"), "down"], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.state, ignore_errors=True)


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("chromium is not installed")


@pytest.fixture
def browser():
    options = Options()
    options.binary_location = chromium_binary()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--ignore-certificate-errors", "--window-size=1100,900", "--no-first-run"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def wait_for(driver, element_id):
    """Waits (up to 10 s) until the page that a click or redirect leads to shows `element_id`."""
    return WebDriverWait(driver, 10).until(until.presence_of_element_located((By.ID, element_id)))


def shot(driver, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))


def log_in(driver, stack, next_path=None):
    driver.get(stack.url("/" if next_path is None else f"/?next={next_path}"))
    driver.find_element(By.ID, "user").send_keys("demo")
    driver.find_element(By.ID, "password").send_keys(stack.password)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def session_cookie(driver, name):
    cookie = driver.get_cookie(name)
    assert cookie is not None, f"no {name} cookie in the browser: {driver.get_cookies()}"
    return cookie


def run_journey(driver, stack, cookie_name, secure, prefix):
    # 1. The page counts visits in this session.
    driver.get(stack.url("/"))
    assert driver.find_element(By.ID, "count").text == "1"
    shot(driver, f"{prefix}-1-first-visit")
    driver.refresh()
    assert driver.find_element(By.ID, "count").text == "2"
    shot(driver, f"{prefix}-2-second-visit")

    # 2. The cookie in the browser's own store has the configured flags.
    cookie = session_cookie(driver, cookie_name)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["secure"] is secure
    before = cookie["value"]

    # 3. A protected page sends a browser without a login to the login form, then back.
    driver.get(stack.url("/private/"))
    assert wait_for(driver, "login")
    assert "next=/private/" in driver.current_url
    shot(driver, f"{prefix}-3-private-needs-login")
    driver.find_element(By.ID, "user").send_keys("demo")
    driver.find_element(By.ID, "password").send_keys(stack.password)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    assert wait_for(driver, "private").text == "Private area"
    assert driver.current_url.endswith("/private/")
    shot(driver, f"{prefix}-4-private-page")
    assert session_cookie(driver, cookie_name)["value"] != before, "login must rotate the session id"

    # 4. The second upstream behind the gateway is told who the user is.
    driver.get(stack.url("/app/"))
    assert "private app: hello demo" in driver.find_element(By.TAG_NAME, "body").text
    shot(driver, f"{prefix}-5-private-app")

    # 5. The page shows the user, the visit count goes on, and the session list.
    driver.get(stack.url("/"))
    assert "Logged in as demo" in driver.find_element(By.ID, "user").text
    # Visits: two reloads, the login page the gateway sent us to, and this one.
    assert driver.find_element(By.ID, "count").text == "4"
    assert "(this browser)" in driver.find_element(By.ID, "sessions").text
    shot(driver, f"{prefix}-6-logged-in")

    # 6. Logout returns to the login form, and the protected page is closed again.
    driver.find_element(By.ID, "logout").click()
    assert wait_for(driver, "login")
    shot(driver, f"{prefix}-7-logged-out")
    driver.get(stack.url("/private/"))
    assert wait_for(driver, "login")
    assert "next=/private/" in driver.current_url
    shot(driver, f"{prefix}-8-private-after-logout")


def test_browser_journey_over_http(browser):
    stack = Stack()
    try:
        run_journey(browser, stack, "sid", secure=False, prefix="http")
    finally:
        stack.down()


def test_browser_journey_over_https_with_host_prefixed_cookie(browser):
    stack = Stack(https=True, extra_args="--cookie-name __Host-sid --cookie-secure always")
    try:
        run_journey(browser, stack, "__Host-sid", secure=True, prefix="https")
    finally:
        stack.down()


def test_page_headers_are_strict():
    stack = Stack()
    try:
        import urllib.request
        with urllib.request.urlopen(stack.url("/"), timeout=5) as response:
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert response.headers["Cache-Control"] == "no-store"
            policy = response.headers["Content-Security-Policy"]
            assert "default-src 'none'" in policy and "style-src 'sha256-" in policy and "form-action 'self'" in policy
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        stack.down()
