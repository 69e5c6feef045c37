"""`svcviz web` driven by a real headless browser (Debian's chromium + chromedriver).

The browser loads the page, the terminal draws (body.-first-byte), keys typed into the
page reach the tab's own dashboard, and the kernel (ss) shows their effect on the tab's
own lab server. Closing the tab ends every process of it. Skips, with the reason, when
chromium, chromedriver or selenium is missing (.ci/run installs them when it can).
"""

from __future__ import annotations

import signal
import subprocess

import psutil
import pytest

from browser import AVAILABLE, MISSING, open_dashboard, start_browser, start_web
from conftest import wait_until
from kernel import listen_queue

if AVAILABLE:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=MISSING)


@pytest.fixture
def web_server():
    """start(*options) -> (process, url): `svcviz web --port 0 ...`, stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(*options: str) -> tuple[subprocess.Popen, str]:
        proc, url = start_web(*options)
        started.append(proc)
        return proc, url

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture
def browser(tmp_path):
    driver = start_browser(str(tmp_path / "profile"))
    try:
        yield driver
    finally:
        driver.quit()


def tabs(web: subprocess.Popen) -> dict[int, list[psutil.Process]]:
    """Each tab's dashboard pid -> every process of that tab (its lab server included)."""
    return {child.pid: [child, *child.children(recursive=True)] for child in psutil.Process(web.pid).children()}


def lab_port(processes: list[psutil.Process]) -> int | None:
    """The port the tab's lab server listens on, from the kernel's socket table."""
    for process in processes:
        try:
            if "serve" not in process.cmdline():
                continue
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    return conn.laddr.port
        except psutil.Error:
            continue
    return None


def wait_for_tabs(web: subprocess.Popen, count: int) -> dict[int, int]:
    """Wait until count tabs each have a listening lab server: dashboard pid -> lab port."""

    def ports():
        found = {pid: lab_port(procs) for pid, procs in tabs(web).items()}
        return found if len(found) == count and all(found.values()) else None

    found = wait_until(ports, timeout=30)
    assert found, f"expected {count} tabs with a lab server, saw {tabs(web)}"
    return found


def test_a_tab_draws_offline_takes_keys_and_leaves_nothing_when_closed(web_server, browser, tmp_path):
    web, url = web_server("--model", "serial")
    open_dashboard(browser, url)
    ((dashboard, port),) = wait_for_tabs(web, 1).items()
    # Offline: every URL the page loaded is this server's own (xterm.js and the font are bundled).
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(name.startswith(url) for name in loaded), loaded
    assert "googleapis" not in browser.page_source
    shot = tmp_path / "web.png"  # kept in the test run folder, for a person to look at

    def drawn() -> bool:  # the lab's server listens before the tab's first frame reaches the page
        return browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    assert wait_until(drawn, timeout=15, interval=0.2), "the tab never drew the dashboard"
    browser.find_element(By.TAG_NAME, "body").click()
    for _ in range(3):
        ActionChains(browser).send_keys("c").perform()
    # serial: one client served, the other two wait in the kernel's accept queue.
    assert wait_until(lambda: (listen_queue(port) or (0,))[0] == 2, timeout=15)
    processes = tabs(web)[dashboard]
    browser.get("about:blank")  # the page goes: its websocket closes, as when the tab closes
    gone = wait_until(lambda: not any(alive(p) for p in processes), 5)
    assert gone, f"left running after the tab closed: {[p.pid for p in processes if p.is_running()]}"
    assert listen_queue(port) is None


def test_two_tabs_get_two_lab_servers_on_two_ports(web_server, browser):
    web, url = web_server()
    open_dashboard(browser, url)
    browser.switch_to.new_window("tab")
    open_dashboard(browser, url)
    ports = wait_for_tabs(web, 2)
    assert len(set(ports.values())) == 2


def test_the_tab_past_the_cap_gets_a_page_saying_so(web_server, browser):
    web, url = web_server("--max-tabs", "1")
    open_dashboard(browser, url)
    wait_for_tabs(web, 1)
    browser.switch_to.new_window("tab")
    browser.get(url)
    assert "too many tabs open: 1 of 1" in browser.find_element(By.TAG_NAME, "body").text
    assert len(tabs(web)) == 1


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie; a process that exits between the two looks is gone."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
