"""A real Prometheus on loopback for the tests that need one (Debian's ``prometheus`` package,
installed by .ci/run): started on a free port, ready before it is handed over, stopped after."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Skip marker for tests that need the binaries.
needs_prometheus = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="needs Debian's prometheus package (promtool + prometheus); .ci/run installs it",
)


@contextmanager
def running_prometheus(
    workdir: Path, config: str, *, tsdb: Path | None = None, retention: str = "15d"
) -> Iterator[str]:
    """Run ``prometheus`` with ``config`` (YAML text) on a free loopback port; yield its URL.

    ``tsdb`` is its data folder (a backfilled one, for instance; a fresh one under ``workdir``
    by default). Fails the test, with the log's tail, if it exits or is not ready in 60 s.
    """
    config_path = workdir / "prometheus.yml"
    config_path.write_text(config)
    log_path = workdir / "prometheus.log"
    port = _free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tsdb or workdir / 'tsdb'}",
                f"--storage.tsdb.retention.time={retention}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def query(url: str, promql: str) -> list[dict]:
    """The result vector of an instant query."""
    encoded = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{encoded}", timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"prometheus did not become ready: {log_path.read_text()[-2000:]}")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: ``promtool check metrics`` findings every real vLLM and DCGM scrape has: vLLM names its
#: metrics with a colon, and DCGM labels GPUs with a camelCase ``modelName``.
EXPORTER_LINTS = (
    "metric names should not contain ':'",
    "label names should be written in 'snake_case' not 'camelCase'",
)
#: And the naming findings of their other default series: DCGM's counters have no ``_total``
#: (``DCGM_FI_DEV_PCIE_REPLAY_COUNTER`` even says counter), vLLM's histogram
#: ``vllm:iteration_tokens_total`` has one.
DEFAULT_SERIES_LINTS = (
    *EXPORTER_LINTS,
    'counter metrics should have "_total" suffix',
    "metric name should not include type 'counter'",
    'non-counter metrics should not have "_total" suffix',
)


def promtool_check_metrics(text: str, allowed: tuple[str, ...] = EXPORTER_LINTS) -> list[str]:
    """Run ``promtool check metrics`` on ``text``. A parse error (exit 1) fails the test; the
    lint findings other than ``allowed`` are returned (exit 3 means findings)."""
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    if done.returncode not in (0, 3):
        pytest.fail(f"promtool refused the scrape ({done.returncode}): {done.stderr[-2000:]}")
    findings = (done.stdout + done.stderr).splitlines()
    return [line for line in findings if line and not line.endswith(allowed)]
