"""Open a report in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
through Selenium): for the tests and the benchmark.

Selenium is a development dependency, imported only here. The driver is Debian's
chromedriver, named explicitly, so Selenium never tries to download one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)


def find(names: tuple[str, ...]) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


def missing() -> str | None:
    """Why no browser can be driven here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if find(CHROMIUM) is None:
        return "no chromium (make install installs Debian's chromium)"
    if find(DRIVER) is None:
        return "no chromedriver (make install installs Debian's chromium-driver)"
    return None


@dataclass
class Rendered:
    seconds: float  # from the driver's request until every chart was drawn
    page_ms: int | None  # the same, as the page measured it (performance.now())
    state: str  # body[data-rendered]: "true", "failed", or "" when it never finished
    console: list[dict[str, Any]]  # the browser's console messages


@contextmanager
def chromium(width: int = 1300, height: int = 1800) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find(CHROMIUM) or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(find(DRIVER) or "chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def open_report(driver: Any, path: Path, timeout: float = 60.0) -> Rendered:
    """Load a report from disk and wait (up to timeout) until its charts are drawn."""
    started = time.monotonic()
    driver.get(path.resolve().as_uri())
    deadline = started + timeout
    state = ""
    while time.monotonic() < deadline:
        state = driver.execute_script("return document.body && document.body.dataset.rendered")
        if state:
            break
        time.sleep(0.02)  # polling a condition, with a deadline
    seconds = time.monotonic() - started
    page_ms = driver.execute_script("return document.body.dataset.renderedMs || null")
    return Rendered(seconds, int(page_ms) if page_ms else None, state or "",
                    driver.get_log("browser"))
