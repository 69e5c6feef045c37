"""A real headless browser on `svcviz web`: Debian's chromium + chromedriver via selenium.

Shared by tests/test_web.py and screenshots/make_screenshots.py (the README's browser
picture is made the way the test sees the page)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the [test] extra brings it
    webdriver = None

MISSING = "needs chromium, chromedriver (apt-get install chromium chromium-driver) and selenium"
AVAILABLE = bool(CHROMIUM and CHROMEDRIVER and webdriver)
SERVING = re.compile(r"serving the dashboard on (http://\S+)")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def start_web(*options: str) -> tuple[subprocess.Popen, str]:
    """`svcviz web --port 0 ...` started: the process and the URL it serves on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "svcviz", "web", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    match = SERVING.search(proc.stdout.readline())
    if not match:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise AssertionError("svcviz web did not say where it serves")
    return proc, match.group(1)


def start_browser(profile: str):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def open_dashboard(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: "-first-byte" in (d.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
    )
