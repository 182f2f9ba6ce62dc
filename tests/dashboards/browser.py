"""Open an HTML page in a real headless Chromium and report what its scripts did.

Chromium's ``--dump-dom`` prints the page as its scripts left it, and its console log goes to
stderr. Console levels are not told apart there, so a small probe, injected at the top of a
copy of the page, records errors (``console.error``, uncaught exceptions, rejected promises) in
an attribute of ``<html>`` that the dumped DOM carries out.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

#: Set in CI (.ci/run installs Chromium): a missing browser fails instead of skipping.
REQUIRE_ENV = "HETEROSCALE_REQUIRE_BROWSER"
#: Set to 1 to have the end-to-end browser test rewrite the report's screenshots in docs/img/;
#: unset, no test touches a tracked file.
SCREENSHOTS_ENV = "HETEROSCALE_WRITE_SCREENSHOTS"
#: The screenshots' size: a laptop's first screen.
SCREEN = (1280, 900)
#: Let scripts, timers and Plotly's promises run before the page is dumped or shot.
SETTLE = "--virtual-time-budget=15000"

_PROBE = """<script>
(function () {
  var errors = [];
  function record(text) {
    errors.push(String(text));
    document.documentElement.setAttribute("data-js-errors", JSON.stringify(errors));
  }
  var consoleError = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };
  window.addEventListener("error", function (e) { record(e.message); });
  window.addEventListener("unhandledrejection", function (e) { record(e.reason); });
})();
</script>"""


@dataclass(frozen=True)
class PageRun:
    """The page after its scripts ran: its DOM, the errors the probe saw, the console lines."""

    dom: str
    errors: list[str]
    console: list[str]


#: A graph div Plotly has drawn: it marks each with ``js-plotly-plot`` once plotted.
_DRAWN = re.compile(r'<div[^>]*class="[^"]*\bjs-plotly-plot\b')


def drawn_figures(dom: str) -> int:
    """Graph divs Plotly has drawn."""
    return len(_DRAWN.findall(dom))


def drawn_pieces(dom: str) -> list[str]:
    """The DOM cut at each drawn graph div, in page order: piece ``i`` holds figure ``i``'s
    SVG (and the page up to the next figure)."""
    starts = [match.start() for match in _DRAWN.finditer(dom)]
    return [dom[start:end] for start, end in pairwise([*starts, len(dom)])]


def plotted_traces(piece: str) -> int:
    """Data layers Plotly drew in one figure: a group per scatter or bar trace, and per
    heatmap a group holding its image. Axes and a title alone count 0."""
    return len(re.findall(r'<g class="(?:trace |hm")', piece))


def chromium() -> str:
    """The Chromium binary; skips the test (fails under ``HETEROSCALE_REQUIRE_BROWSER``)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    message = "no Chromium on PATH (Debian: apt-get install chromium)"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message)
    pytest.skip(message)


def open_page(page: Path, workdir: Path) -> PageRun:
    """Load ``page`` (a copy with the probe) in headless Chromium; wait for its scripts."""
    text = page.read_text(encoding="utf-8")
    probed = workdir / f"probed-{page.name}"
    probed.write_text(text.replace("<head>", "<head>\n" + _PROBE, 1), encoding="utf-8")
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # CI containers run as root
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            SETTLE,
            "--dump-dom",
            probed.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<html[^>]*\bdata-js-errors="([^"]*)"', done.stdout)
    errors = [] if found is None else json.loads(html.unescape(found.group(1)))
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return PageRun(dom=done.stdout, errors=errors, console=console)


def screenshot(page: Path, png: Path) -> Path:
    """The first screen (:data:`SCREEN`) of ``page`` as drawn by headless Chromium, in ``png``."""
    width, height = SCREEN
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            SETTLE,
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return png
