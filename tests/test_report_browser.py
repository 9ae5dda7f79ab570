"""The HTML report as a person sees it: headless Chromium opens the file ``machinable report`` wrote.

Debian's ``chromium`` and ``chromium-driver`` (``bash scripts/install-system-deps.sh`` installs them) are driven
through selenium with both paths given, so nothing is downloaded; the network is off (every request goes to a
closed local proxy port), so the page has to be self-contained. The tests wait until the page says its plots are
rendered, then look for console errors, a Plotly graph with data in every plot, a table that sorts on a click
and a screenshot that is not blank. Without the browser they skip, naming the packages; with CI=true they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_subprocess, write_project

pytestmark = pytest.mark.slow

IN_CI = os.environ.get("CI", "").lower() == "true"
PACKAGES = "Debian's chromium and chromium-driver packages (bash scripts/install-system-deps.sh)"
WINDOW = (1280, 1000)
READY_TIMEOUT = 30.0  # seconds until window.machinableReady; the report renders in well under one

YAML = """\
components:
  - fit:
      lr: 0.1
"""

# loss and acc over 20 steps, set by the learning rate and moved by the seed: the loss of lr=0.1 stays within
# 6..10, of lr=0.2 within 12..19 and of lr=0.5 within 30..46, so the loss column sorted as text ("12", "30", "6")
# is in neither numeric order and only a numeric-aware sort passes.
FIT = """\
import random

import machinable as ml


class Fit(ml.Component):
    def on_execute(self):
        rng = random.Random(self.seed)
        for step in range(20):
            loss = 90 * self.config.lr / (1 + 0.025 * step) + rng.uniform(0, 0.5)
            self.record["loss"] = loss
            self.record["acc"] = 1 - loss / 100 + rng.uniform(0, 0.01)
            self.record.save()
"""

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def unavailable(reason: str) -> None:
    """Skip, or fail with CI=true: CI has to run these tests."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests may not skip)", pytrace=False)
    pytest.skip(reason)


def find(name: str, default: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return default if os.access(default, os.X_OK) else None


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    """(browser, driver): Debian's /usr/bin/chromium and /usr/bin/chromedriver, or the ones on PATH."""
    binary = find("chromium", "/usr/bin/chromium")
    driver = find("chromedriver", "/usr/bin/chromedriver")
    missing = [name for name, path in (("chromium", binary), ("chromedriver", driver)) if path is None]
    if missing:
        unavailable(f"no {' or '.join(missing)}: the browser tests need {PACKAGES}")
    assert binary is not None and driver is not None
    return binary, driver


@pytest.fixture(scope="module")
def browser(chromium_paths: tuple[str, str]) -> Iterator[Any]:
    """One headless Chromium for the module, offline, with the console log kept."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable('no selenium: pip install -e ".[test]"')
    binary, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        # No network: every request goes to a closed port on this machine (file:// pages are not proxied).
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium-manager (which would download a browser) is never run.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(READY_TIMEOUT)
        yield driver
    finally:
        driver.quit()


# -- helpers --------------------------------------------------------------------------------------------------
def open_page(driver: Any, path: Path) -> None:
    """Load ``path`` with an empty console log (get_log drains what earlier pages left)."""
    driver.get_log("browser")
    driver.get(path.resolve().as_uri())


def wait_until(driver: Any, script: str, timeout: float = READY_TIMEOUT) -> Any:
    """Poll ``return <script>`` until it is truthy; fail with the console log at the deadline."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
            lambda d: d.execute_script(f"return {script};")
        )
    except TimeoutException:
        log = "\n".join(entry["message"] for entry in driver.get_log("browser"))
        pytest.fail(f"not true after {timeout:.0f} s: {script}\nbrowser console:\n{log or '(empty)'}")


def severe_messages(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, pixels) of an 8-bit RGB/RGBA/grey PNG, non-interlaced, with the standard library."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, header, data = 8, b"", []
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        body = png[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    assert depth == 8 and channels and not interlace, f"unsupported PNG: depth {depth}, colour type {colour}"
    raw = zlib.decompress(b"".join(data))
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[bytes] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 0xFF
        elif kind == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        pixels.extend(bytes(row[i : i + channels]) for i in range(0, stride, channels))
        previous = row
    return width, height, pixels


def colour_counts(png: bytes) -> Counter[bytes]:
    return Counter(png_pixels(png)[2])


HEADERS = """
    const table = document.getElementById('results');
    const head = table.tHead ? table.tHead.rows[0] : table.rows[0];
"""


def headers(driver: Any) -> list[Any]:
    """The header cells of ``#results`` (its thead's first row, or its first row)."""
    return driver.execute_script(HEADERS + "return [...head.cells];")


def numeric_column(driver: Any) -> tuple[int, str]:
    """(index, header) of a ``#results`` column whose every cell is a number, not all equal; loss first."""
    names = [cell.text.strip() for cell in headers(driver)]
    candidates = []
    for index, header in enumerate(names):
        cells = column(driver, index)
        if cells and all(value is not None for value in cells) and len(set(cells)) > 1:
            candidates.append((index, header))
    assert candidates, f"no numeric column with different values among {names}"
    return next(((i, h) for i, h in candidates if "loss" in h.lower()), candidates[0])


def rows(driver: Any) -> list[tuple[str, ...]]:
    """The body rows of ``#results`` as the texts of their cells, in the order shown."""
    return [
        tuple(cell.strip() for cell in row)
        for row in driver.execute_script(
            HEADERS + "return [...table.tBodies].flatMap(body => [...body.rows])"
            ".filter(tr => tr !== head).map(tr => [...tr.cells].map(cell => cell.textContent));"
        )
    ]


def column(driver: Any, index: int) -> list[float | None]:
    """The first number in each cell of column ``index`` (``0.52 ± 0.03`` -> 0.52), None for a cell without."""
    values: list[float | None] = []
    for row in rows(driver):
        match = NUMBER.search(row[index]) if index < len(row) else None
        values.append(float(match.group()) if match else None)
    return values


def click_header(driver: Any, index: int) -> None:
    headers(driver)[index].click()


def order(values: list[float | None]) -> str | None:
    """ "ascending" or "descending" (numerically, ties allowed), or None for neither."""
    if values == sorted(values):
        return "ascending"
    if values == sorted(values, reverse=True):
        return "descending"
    return None


# -- the helpers, on pages made here --------------------------------------------------------------------------
def test_a_blank_screenshot_has_one_colour_and_a_drawn_one_many(browser, tmp_path: Path) -> None:
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><title>blank</title><body style='margin:0;background:#fff'></body>")
    open_page(browser, blank)
    assert len(colour_counts(browser.get_screenshot_as_png())) == 1

    drawn = tmp_path / "drawn.html"
    drawn.write_text(
        "<!doctype html><title>drawn</title><body>"
        "<h1>machinable</h1><div style='width:300px;height:200px;"
        "background:linear-gradient(90deg, #1f77b4, #ff7f0e)'></div></body>"
    )
    open_page(browser, drawn)
    counts = colour_counts(browser.get_screenshot_as_png())
    assert len(counts) > 16


def test_console_errors_and_blocked_requests_are_seen(browser, tmp_path: Path) -> None:
    page = tmp_path / "errors.html"
    page.write_text(
        "<!doctype html><title>errors</title><body>"
        "<script>console.error('boom'); window.done = true;</script>"
        "<script src='https://cdn.example.invalid/plotly.js'></script></body>"
    )
    open_page(browser, page)
    wait_until(browser, "window.done === true")
    messages = severe_messages(browser)
    assert any("boom" in message for message in messages), messages
    assert any("cdn.example.invalid" in message for message in messages), messages  # the network is off


# A table whose headers sort its rows by their text, as a careless page would: "12" < "30" < "6".
TEXT_SORTED_TABLE = """<!doctype html><title>table</title><table id='results'>
<thead><tr><th>lr</th><th>N</th><th>loss</th><th>note</th></tr></thead><tbody>
<tr><td>0.1</td><td>3</td><td>6.1 ± 0.2</td><td>a</td></tr>
<tr><td>0.5</td><td>3</td><td>30.5 ± 0.1</td><td>c</td></tr>
<tr><td>0.2</td><td>3</td><td>12.2 ± 0.3</td><td>b</td></tr>
</tbody></table>
<script>
document.querySelectorAll('#results th').forEach((th, i) => th.addEventListener('click', () => {
    const body = document.querySelector('#results tbody');
    const sorted = [...body.rows].sort((a, b) => a.cells[i].textContent.localeCompare(b.cells[i].textContent));
    sorted.forEach(row => body.appendChild(row));
}));
</script>"""


def test_the_table_helpers_read_rows_and_numbers_and_catch_a_text_sort(browser, tmp_path: Path) -> None:
    page = tmp_path / "table.html"
    page.write_text(TEXT_SORTED_TABLE)
    open_page(browser, page)
    assert rows(browser)[0] == ("0.1", "3", "6.1 ± 0.2", "a")
    assert numeric_column(browser) == (2, "loss")
    assert column(browser, 2) == [6.1, 30.5, 12.2]
    assert column(browser, 3) == [None, None, None]
    click_header(browser, 2)
    assert column(browser, 2) == [12.2, 30.5, 6.1]
    assert order(column(browser, 2)) is None  # the report's test fails on such a page
    assert order([1.0, 2.0, 10.0]) == "ascending" and order([10.0, 2.0, 1.0]) == "descending"


# -- the report ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of ``machinable --repeat 3 lr=0.1,0.2,0.5``: 3 configurations x 3 seeds, 20 steps each."""
    root = write_project(tmp_path_factory.mktemp("report") / "project", YAML, {"fit.py": FIT})
    ran = run_subprocess(root, "--repeat", "3", "lr=0.1,0.2,0.5", "--storage", "./results", "--seed", "42")
    assert ran.ret == 0, ran.out + ran.err
    made = run_subprocess(root, "report", "last", "-o", "report.html", "--storage", "./results")
    assert made.ret == 0, made.out + made.err
    path = root / "report.html"
    assert path.is_file(), made.out + made.err
    return path


@pytest.fixture
def page(browser, report: Path) -> Any:
    """The report, loaded and rendered (window.machinableReady), with the console log of this load."""
    open_page(browser, report)
    wait_until(browser, "window.machinableReady === true")
    return browser


def test_the_report_renders_every_plot_without_console_errors(page) -> None:
    assert "machinable report" in page.title
    assert severe_messages(page) == []
    plots = page.execute_script("return document.querySelectorAll('div.plot').length;")
    assert plots > 0
    assert page.execute_script("return document.body.dataset.plots;") == str(plots)


def test_every_plot_holds_a_plotly_graph_with_data(page) -> None:
    graphs = page.execute_script(
        """
        return [...document.querySelectorAll('div.plot')].map(div => {
            const gd = div.classList.contains('js-plotly-plot') ? div : div.querySelector('.js-plotly-plot');
            if (!gd) return {graph: false};
            const drawn = [...gd.querySelectorAll('.trace path, .trace .point')].filter(p => {
                const d = p.getAttribute('d') || '';
                return d.length > 2 && d !== 'M0,0Z';
            });
            return {
                graph: true,
                svg: gd.querySelector('svg.main-svg') !== null,
                traces: (gd.data || []).filter(t => (t.x || t.y || []).length > 0).length,
                drawn: drawn.length,
            };
        });
        """
    )
    assert graphs
    for number, graph in enumerate(graphs):
        assert graph["graph"], f"plot {number}: no .js-plotly-plot"
        assert graph["svg"], f"plot {number}: no svg.main-svg"
        assert graph["traces"] > 0, f"plot {number}: no trace with data"
        assert graph["drawn"] > 0, f"plot {number}: no trace path or point drawn"


def test_a_click_on_a_numeric_header_sorts_the_rows_and_a_second_reverses(page) -> None:
    index, header = numeric_column(page)
    before = rows(page)
    assert len(before) >= 2

    click_header(page, index)
    first = column(page, index)
    assert order(first), f"{header!r} after one click: {first}"
    assert sorted(rows(page)) == sorted(before), "the rows changed, not only their order"

    click_header(page, index)
    second = column(page, index)
    assert {order(first), order(second)} == {"ascending", "descending"}, f"{header!r}: {first}, then {second}"
    assert sorted(rows(page)) == sorted(before)


def test_the_screenshot_is_not_blank(page) -> None:
    counts = colour_counts(page.get_screenshot_as_png())
    total = sum(counts.values())
    assert len(counts) > 16, f"{len(counts)} colours"
    assert counts.most_common(1)[0][1] < 0.99 * total, "almost every pixel one colour"
