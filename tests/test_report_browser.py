"""report.html in a real headless Chromium (Debian's chromium and chromium-driver,
through Selenium): it renders without console errors or network, the verdict, the
timeline and the counterexample are visible, hostile values stay text. Screenshots go
under each test's temporary directory.

Without Chromium these skip, saying why, except under CI (CI=true), where they must run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.report.browser import chromium, missing, open_report
from harness.report.figures import WEBGL_ABOVE
from tests.report_support import HOSTILE, SEED, Runs, real_runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return real_runs(tmp_path_factory.mktemp("report-runs"))


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    why = missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is needed under CI: {why}")
        pytest.skip(why)
    with chromium() as d:
        yield d


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def errors(console: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in console if m.get("level") == "SEVERE"]


def visible(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, css)
    assert element.is_displayed(), f"{css} is not displayed"
    size = element.size
    assert size["width"] > 100 and size["height"] > 50, f"{css} is {size}"
    return element


def shoot(driver: Any, path: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1300, min(int(height) + 100, 12000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1300, 1800)
    assert path.stat().st_size > 10_000


def test_an_invalid_run_shows_its_verdict_timeline_and_counterexample(
    runs: Runs, driver: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    page = open_report(driver, runs.dirs["laggy"] / "report.html")
    shoot(driver, tmp_path / "laggy.png")
    assert page.state == "true", f"seed {SEED}: charts not drawn: {page}"
    assert errors(page.console) == [], page.console
    verdict = visible(driver, "#verdict")
    assert verdict.text.startswith("INVALID: the system broke its consistency claim")
    assert verdict.location["y"] < 200  # first on the page
    visible(driver, "#chart-overview .main-svg")
    titles = [t.text for t in driver.find_elements(
        By.CSS_SELECTOR, "#chart-overview .annotation-text")]
    for title in ("Operations by worker", "Latency of each operation", "Throughput"):
        assert any(t.startswith(title) for t in titles), titles
    visible(driver, "#chart-counterexample-0 .main-svg")
    chart = driver.find_element(By.CSS_SELECTOR, "#chart-counterexample-0")
    labels = [t.text for t in chart.find_elements(By.CSS_SELECTOR, ".annotation-text")]
    culprit = runs.results("laggy")["checkers"]["linearizable"]["keys"][0]["counterexample"]["op"]
    assert f"⚠ {culprit['description']}" in labels, labels
    explanation = driver.find_element(By.CSS_SELECTOR, ".counterexample .explanation")
    assert explanation.is_displayed() and "cannot take effect" in explanation.text
    fetched = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched == [], f"the report fetched {fetched}"
    # counterexamples past the first few are drawn when they are scrolled near
    charts = driver.find_elements(By.CSS_SELECTOR, "[id^=chart-counterexample-]")
    assert len(charts) == len(runs.results("laggy")["checkers"]["linearizable"]["keys"])
    last = charts[-1]
    driver.execute_script("arguments[0].scrollIntoView()", last)
    wait_for(lambda: bool(last.find_elements(By.CSS_SELECTOR, ".main-svg")), 30,
             "the last counterexample drawn after scrolling to it")
    assert errors(driver.get_log("browser")) == []


def test_a_valid_run_with_faults_renders_with_webgl(runs: Runs, driver: Any,
                                                    tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = open_report(driver, runs.dirs["kills"] / "report.html")
    shoot(driver, tmp_path / "kills.png")
    assert page.state == "true", f"seed {SEED}: charts not drawn: {page}"
    assert errors(page.console) == [], page.console
    assert visible(driver, "#verdict").text.startswith("Valid:")
    visible(driver, "#chart-overview .main-svg")
    ops = sum(sum(c.values()) for c in runs.results("kills")["stats"]["ops"].values())
    gl = driver.find_elements(By.CSS_SELECTOR, "#chart-overview canvas")
    assert bool(gl) == (ops > WEBGL_ABOVE), f"{ops} operations, {len(gl)} canvases"
    shaded = driver.find_elements(By.CSS_SELECTOR, "#chart-overview .shapelayer path")
    faults = runs.results("kills")["stats"]["faults"]
    assert faults and len(shaded) == 3 * len(faults)  # across the three charts


def test_a_stored_script_shows_as_text_and_never_runs(runs: Runs, driver: Any,
                                                      tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    page = open_report(driver, runs.dirs["hostile"] / "report.html")
    shoot(driver, tmp_path / "hostile.png")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 (raises when no alert is open)
    assert page.state == "true" and errors(page.console) == [], page
    assert driver.execute_script(
        "return [...document.scripts].filter(s => s.type !== 'application/json').length") == 2
    body = driver.find_element(By.TAG_NAME, "body").text
    assert f"Key {HOSTILE}" in body and f"version {HOSTILE}" in body
    title = driver.find_element(By.CSS_SELECTOR, "#chart-counterexample-0 .gtitle").text
    assert HOSTILE in title, title
    # hover over an operation on the hostile key in the timeline: its hover text shows
    # the key and value as typed, and adds no element
    hovered = driver.execute_script("""
        const gd = document.getElementById("chart-overview");
        for (let c = 0; c < gd.data.length; c++) {
          const text = gd.data[c].text || [];
          for (let p = 0; p < text.length; p++) {
            if (String(text[p]).includes("alert(1)")) {
              Plotly.Fx.hover(gd, [{curveNumber: c, pointNumber: p}], "xy");
              return text[p];
            }
          }
        }
        return null;""")
    assert hovered and "&lt;script&gt;" in hovered, hovered  # escaped before plotly
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#chart-overview .hovertext"),
             10, "the hover label")
    label = driver.find_element(By.CSS_SELECTOR, "#chart-overview .hovertext").text
    assert HOSTILE in label, label
    assert not driver.find_elements(By.CSS_SELECTOR, "#chart-overview script")
    assert driver.execute_script(
        "return [...document.scripts].filter(s => s.type !== 'application/json').length") == 2


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.report_shapes import SHAPES, make

    root = tmp_path_factory.mktemp("shapes")
    return {name: make(SHAPES[name], root)
            for name in ("zones-long-window", "zones-pending", "search-etcd", "kv", "set-full")}


@pytest.mark.parametrize("name", ["zones-long-window", "zones-pending", "search-etcd", "kv"])
def test_each_counterexample_shape_renders_with_no_console_error(
    shapes: dict[str, Any], driver: Any, tmp_path: Path, name: str
) -> None:
    """Shapes the checker made (tests/report_shapes.py), the zone procedure's long window
    among them (issue 19: its report was never built)."""
    from selenium.webdriver.common.by import By

    made = shapes[name]
    page = open_report(driver, made.run_dir / "report.html")
    shoot(driver, tmp_path / f"{name}.png")
    assert page.state == "true", f"{name} (seed {made.seed}): charts not drawn: {page}"
    assert errors(page.console) == [], page.console
    first = visible(driver, "#first-violation")
    bad = sorted(made.invalid(), key=lambda k: k.first_bad_index)
    ce = bad[0].counterexample
    assert f"process {ce.op.process}: {ce.op.description}" in first.text
    visible(driver, "#chart-counterexample-0 .main-svg")
    chart = driver.find_element(By.CSS_SELECTOR, "#chart-counterexample-0")
    labels = [t.text for t in chart.find_elements(By.CSS_SELECTOR, ".annotation-text")]
    assert f"⚠ {ce.op.description}" in labels, labels
    rows = driver.find_elements(By.CSS_SELECTOR, "table.invalid-keys tr")
    assert len(rows) == len(bad) + 1
    assert errors(driver.get_log("browser")) == []


def test_a_set_full_violation_renders_with_no_console_error(
    shapes: dict[str, Any], driver: Any, tmp_path: Path
) -> None:
    page = open_report(driver, shapes["set-full"].run_dir / "report.html")
    assert page.state == "true", f"charts not drawn: {page}"
    assert errors(page.console) == [], page.console
    from selenium.webdriver.common.by import By

    counts = driver.find_element(By.CSS_SELECTOR, "#set-full + p")
    assert counts.is_displayed() and "1 lost" in counts.text
