"""A Prometheus ``/metrics`` endpoint for a simulated cluster, with real exporter metric names.

A real Prometheus (or anything that scrapes) can watch a simulation as it would watch a vLLM
P/D deployment: vLLM's ``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
``vllm:kv_cache_usage_perc``, ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``,
the ``vllm:time_to_first_token_seconds`` and ``vllm:inter_token_latency_seconds`` histograms,
DCGM's ``DCGM_FI_DEV_GPU_UTIL`` and ``DCGM_FI_PROF_SM_ACTIVE`` per GPU, kube-state-metrics'
readiness and the Dynamo frontend's request and token counters, labelled by ``pod``,
``service``, ``role``, ``gpu`` and ``modelName`` (``NVIDIA <gpu type>``).

Names, labels, units and the histogram encoding are the ingestion writer's
(:func:`telemetry.ingest.exposition.write_openmetrics`), read back with its parser: what the
endpoint serves is what ``heteroscale ingest`` reads. A scrape shows the state at the end of
the latest completed interval: counters and histograms summed over every interval so far,
gauges at that interval's value, only instances that exist in it.

Simulated time follows wall time at ``speed``: a scrape at ``t`` wall seconds after the server
started shows the intervals completed by ``t * speed`` simulated seconds. Samples carry no
timestamp, as real exporters' do not: Prometheus stamps them at scrape time (simulated instants
may lie years back or, at a speed above 1, ahead, and Prometheus refuses samples outside its
head block). So ``rate()`` over a scrape reads ``speed`` times the simulated rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import polars as pl

from simulator.closed_loop import IntervalFrames
from simulator.engine import SimulationResult
from telemetry.ingest.exposition import parse, write_openmetrics

#: What the endpoint answers with: the writer's OpenMetrics text (``# EOF``, ``_total``).
CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


class IntervalSource(Protocol):
    """Hands out the telemetry of the intervals completed by ``until_s`` and not yet handed
    out: :meth:`simulator.closed_loop.ClosedLoopSimulation.advance` (a running simulation) or
    :class:`FinishedRun` (a finished one, replayed)."""

    def advance(self, until_s: float) -> IntervalFrames: ...


class FinishedRun:
    """A finished run's telemetry handed out interval by interval, as if it were running.

    Past its last interval nothing new comes: a scrape keeps showing the final state.
    """

    def __init__(self, result: SimulationResult, start: datetime) -> None:
        self._samples = result.instance_samples
        self._load = result.service_load
        self._start = start
        self._handed_out_s = 0.0

    def advance(self, until_s: float) -> IntervalFrames:
        """Intervals that end after the previous call's ``until_s`` and by this one's."""
        lo = self._start + timedelta(seconds=self._handed_out_s)
        hi = self._start + timedelta(seconds=until_s)
        self._handed_out_s = max(self._handed_out_s, until_s)

        def ending_between(frame: pl.DataFrame) -> pl.DataFrame:
            end = pl.col("ts") + pl.duration(seconds=pl.col("interval_s"))
            return frame.filter((end > lo) & (end <= hi))

        return IntervalFrames(ending_between(self._samples), ending_between(self._load))


class ScrapeState:
    """The latest value of every series, as a scrape of the cluster's exporters reads it."""

    def __init__(self) -> None:
        self._totals = pl.DataFrame(
            schema={"metric": pl.String, "labels": pl.String, "total": pl.Float64}
        )
        self._text = "# EOF\n"

    def add(self, frames: IntervalFrames) -> None:
        """Take in the next intervals (in time order, following those already added).

        The writer renders them with counters starting from 0; each counter's (and histogram
        series') last value is added to its running total, gauges keep their last value.
        """
        samples, load = frames.instance_samples, frames.service_load
        if samples.height == 0 and load.height == 0:
            return
        raw = parse(write_openmetrics(samples, load), "simulation", now=_beyond(samples, load))
        latest = (
            raw.named()
            .sort("ts", "line")
            .group_by("metric", "labels", maintain_order=True)
            .agg(pl.col("value").last(), pl.col("line").last())
            .with_columns(_family(list(raw.types)).alias("family"))
            .with_columns(kind=pl.col("family").replace_strict(raw.types, default="unknown"))
        )
        cumulative = pl.col("kind").is_in(["counter", "histogram"])
        latest = latest.join(self._totals, on=["metric", "labels"], how="left").with_columns(
            pl.when(cumulative)
            .then(pl.col("value") + pl.col("total").fill_null(0.0))
            .otherwise(pl.col("value"))
            .alias("value")
        )
        self._totals = pl.concat(
            [
                self._totals.join(latest, on=["metric", "labels"], how="anti"),
                latest.filter(cumulative).select("metric", "labels", total="value"),
            ]
        )
        current = latest.filter(_of_current_pods(raw.labels, samples)).sort("line")
        self._text = _scrape_text(current)

    def text(self) -> str:
        """The exposition text of the latest state (no timestamps)."""
        return self._text


class MetricsServer:
    """Serves ``GET /metrics`` of ``source`` on ``host:port`` (port 0: any free one).

    Each scrape first advances ``source`` to ``speed`` times the wall seconds since the
    server was made (``clock``, monotonic seconds, can be replaced in tests), then answers
    the state at the end of the latest completed interval. Scrapes are served one at a time.
    """

    def __init__(
        self,
        source: IntervalSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._source, self._speed, self._clock = source, speed, clock
        self._state = ScrapeState()
        self._lock = threading.Lock()
        self._started = clock()
        self._thread: threading.Thread | None = None
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))

    @property
    def url(self) -> str:
        """``http://host:port/metrics`` as bound (the real port when 0 was asked for)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/metrics"

    def scrape(self) -> str:
        """Advance the source to the current simulated instant; the exposition text."""
        with self._lock:
            until_s = (self._clock() - self._started) * self._speed
            self._state.add(self._source.advance(until_s))
            return self._state.text()

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`close` (from another) or an interrupt."""
        self._httpd.serve_forever()

    def start(self) -> MetricsServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()


def _handler(server: MetricsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            body = server.scrape().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
            pass  # a scrape every few seconds is not news

    return Handler


def _family(known: list[str]) -> pl.Expr:
    """The metric family a sample name belongs to: itself if declared, else less a suffix."""
    family = pl.col("metric")
    for suffix in _SUFFIXES:
        stripped = pl.col("metric").str.strip_suffix(suffix)
        family = pl.when(family.is_in(known)).then(family).otherwise(stripped)
    return family


def _of_current_pods(labels: pl.DataFrame, samples: pl.DataFrame) -> pl.Expr:
    """Series of pods that exist in the latest interval, and series of no pod (the frontend):
    a pod scaled away stops being exported, as a real one does."""
    if "pod" not in labels.columns or samples.height == 0:
        return pl.lit(True)
    current = samples.filter(pl.col("ts") == pl.col("ts").max())["instance_id"].unique()
    pod_of = dict(zip(labels["labels"], labels["pod"], strict=True))
    pod = pl.col("labels").replace_strict(pod_of, default=None, return_dtype=pl.String)
    return pod.is_null() | pod.is_in(current.to_list())


def _beyond(samples: pl.DataFrame, load: pl.DataFrame) -> datetime:
    """A clock past every interval, for the reader's future-timestamp check."""
    return max(f["ts"].max() for f in (samples, load) if f.height) + timedelta(days=1)


def _scrape_text(latest: pl.DataFrame) -> str:
    """``# TYPE`` lines and ``name{labels} value`` lines, in the writer's order, then EOF."""
    out = []
    for (family, kind), group in latest.group_by("family", "kind", maintain_order=True):
        out.append(f"# TYPE {family} {kind}")
        out.extend(
            f"{metric}{{{labels}}} {value!r}"
            for metric, labels, value in group.select("metric", "labels", "value").iter_rows()
        )
    out.append("# EOF")
    return "\n".join(out) + "\n"
