"""A Prometheus ``/metrics`` endpoint for a simulated cluster that reads like the real exporters.

Tests and demos scrape it as they would scrape a vLLM P/D deployment on Kubernetes, so it
answers what those exporters answer: Prometheus text format 0.0.4 with ``# HELP`` and
``# TYPE`` lines and no timestamps; vLLM 0.11's series with its labels (``model_name``, the
service, as ``--served-model-name`` sets it; ``engine``) and its own histogram buckets;
DCGM's per-GPU series with the exporter's labels and value formats (integers for integer
fields such as ``DCGM_FI_DEV_GPU_UTIL``, six decimals for ratios); kube-state-metrics' pod
readiness with its three conditions and each role's Deployment replicas
(``<service>-<role>``: asked for, and ready); and the NVIDIA Dynamo frontend's request and
token counters (label ``model``). One target stands for every pod of the cluster, so each series
also carries the ``pod`` (and for vLLM the ``role``) label a Prometheus scrape configuration
would attach.

A scrape shows the state at the end of the latest completed interval: counters and
histograms summed over every interval so far, gauges at that interval's value, only the pods
that exist in it (a pod scaled away stops being exported, as a real one does). A finished
run's token and request counters also count the interval in progress up to the scrape, at that
interval's mean rate, as a real counter grows between scrapes: a counter that jumped once an
interval would alias in ``rate()``, a one-minute window over 5 s scrapes holding three or four
15 s jumps and reading 0.82 or 1.09 times the true rate. (A running simulation has not
computed the interval in progress, so its counters jump.) A Deployment
asks for its pods that are starting or ready: a pod that is not ready now but has served
before is draining or kept warm, which is what a scale-in leaves behind, so it is no longer
asked for. The
simulator's telemetry has latency quantiles, not every request's latency, so each interval
with first tokens (or generated tokens) adds 50 observations at p50, 40 at p90 and 10 at p99
of the interval: ``histogram_quantile`` over a window then lands in the vLLM bucket holding
each quantile, as it would on a real server.

Simulated time follows wall time at ``speed``: a scrape at ``t`` wall seconds after the server
started shows the intervals completed by ``t * speed`` simulated seconds, and at least the
first one (a real exporter's first scrape already has every series). Samples carry no
timestamp, as real exporters' do not: Prometheus stamps them at scrape time (simulated instants
may lie years back or, at a speed above 1, ahead, and Prometheus refuses samples outside its
head block). So ``rate()`` over a scrape reads ``speed`` times the simulated rate.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import numpy as np
import polars as pl

from simulator.closed_loop import IntervalFrames
from simulator.engine import SimulationResult

#: What real exporters answer with: Prometheus text format 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: vLLM 0.11's buckets (``vllm/v1/metrics/loggers.py``, ``PrometheusStatLogger``): time to
#: first token, and inter-token latency (the same as the deprecated time per output token).
TTFT_BUCKETS_S = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
)
ITL_BUCKETS_S = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
    *(0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0),
)
#: Observations added per interval at each quantile (they sum to 100).
QUANTILE_OBSERVATIONS = {"p50": 50, "p90": 40, "p99": 10}
#: Kubernetes namespace and container the simulated pods run in.
NAMESPACE, CONTAINER = "llm", "vllm"


def client_float(value: float) -> str:
    """A float as the Python Prometheus client (vLLM's) writes it: Python's shortest repr,
    except that from 1e6 up it switches to an exponent as Go's ``strconv`` does
    (``1.2e+06``), and infinities as ``+Inf``/``-Inf``."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if abs(value) < 1e6 or "e" in text:
        return text
    digits = text.replace("-", "").replace(".", "").lstrip("0").rstrip("0") or "0"
    return f"{value:.{len(digits) - 1}e}"


def dcgm_value(value: float, integer: bool) -> str:
    """A value as the DCGM exporter writes it: ``%d`` for integer fields, ``%f`` for
    doubles (dcgm-exporter ``internal/pkg/collector/gpu_collector.go``, ``toString``)."""
    return f"{round(value)}" if integer else f"{value:f}"


@dataclass
class Family:
    """One metric family of a scrape: its ``# HELP``/``# TYPE`` and sample lines."""

    name: str
    kind: str
    help: str
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"])


def label_text(**labels: str) -> str:
    """``{k="v",...}`` with values escaped as exposition text requires."""
    escaped = (
        (k, str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for k, v in labels.items()
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"


def histogram_lines(
    name: str, labels: dict[str, str], bounds: Iterable[float], cumulative, total: float
) -> list[str]:
    """Bucket lines in ascending ``le`` order, ``+Inf`` last, then ``_count`` and ``_sum``."""
    lines = [
        f"{name}_bucket{label_text(**labels, le=client_float(le))} {client_float(n)}"
        for le, n in zip((*bounds, math.inf), cumulative, strict=True)
    ]
    lines.append(f"{name}_count{label_text(**labels)} {client_float(cumulative[-1])}")
    lines.append(f"{name}_sum{label_text(**labels)} {client_float(total)}")
    return lines


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

    def ongoing(self, at_s: float) -> IntervalFrames:
        """The intervals in progress at ``at_s``, cut there: their ``interval_s`` is the part
        elapsed, their rates the whole interval's means."""
        at = self._start + timedelta(seconds=at_s)

        def cut(frame: pl.DataFrame) -> pl.DataFrame:
            end = pl.col("ts") + pl.duration(seconds=pl.col("interval_s"))
            return frame.filter((pl.col("ts") < at) & (end > at)).with_columns(
                interval_s=(pl.lit(at) - pl.col("ts")).dt.total_microseconds() / 1e6
            )

        return IntervalFrames(cut(self._samples), cut(self._load))


def _observed(
    samples: pl.DataFrame, prefix: str, bounds: tuple[float, ...]
) -> dict[str, tuple[np.ndarray, float]]:
    """Per pod, the cumulative bucket counts and the sum its intervals' quantiles add."""
    quantiles = [f"{prefix}_{q}_s" for q in QUANTILE_OBSERVATIONS]
    seen = samples.drop_nulls(quantiles)
    values = seen.select(quantiles).to_numpy()
    weights = np.array(list(QUANTILE_OBSERVATIONS.values()), dtype=float)
    edges = np.array([*bounds, math.inf])
    # counts[row, bucket]: observations of the row's interval at or below the bucket's bound.
    counts = ((values[:, :, None] <= edges[None, None, :]) * weights[None, :, None]).sum(axis=1)
    sums = values @ weights
    observed: dict[str, tuple[np.ndarray, float]] = {}
    for k, pod in enumerate(seen["instance_id"].to_list()):
        before, total = observed.get(pod, (np.zeros(len(edges)), 0.0))
        observed[pod] = (before + counts[k], total + sums[k])
    return observed


def _accumulate(into: dict, more: dict) -> None:
    """Add ``more``'s values to ``into``'s, key by key."""
    for key, value in more.items():
        into[key] = into.get(key, 0.0) + value


class ScrapeState:
    """Running totals of every counter and histogram, and the latest gauges and pods."""

    COUNTERS = {
        "vllm:prompt_tokens": "prefill_tps_total",
        "vllm:prefix_cache_queries": "prefill_tps_total",
        "vllm:prefix_cache_hits": "_prefix_hits_tps",
        "vllm:generation_tokens": "decode_tps",
    }
    HISTOGRAMS = {
        "vllm:time_to_first_token_seconds": ("ttft", TTFT_BUCKETS_S),
        "vllm:inter_token_latency_seconds": ("tbt", ITL_BUCKETS_S),
    }

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str], float] = {}
        self._histograms: dict[tuple[str, str], tuple[np.ndarray, float]] = {}
        self._load: dict[tuple[str, str], float] = {}
        self._latest = pl.DataFrame()
        #: Pods ready in an interval before the latest one: not ready again means withdrawn.
        self._served_before: set[str] = set()

    def add(self, frames: IntervalFrames) -> None:
        """Take in the next intervals (in time order, following those already added)."""
        totals, load_totals = self._counted(frames)
        _accumulate(self._totals, totals)
        _accumulate(self._load, load_totals)
        samples = frames.instance_samples
        if samples.height:
            for family, (prefix, bounds) in self.HISTOGRAMS.items():
                for pod, (counts, total) in _observed(samples, prefix, bounds).items():
                    before, before_total = self._histograms.get(
                        (family, pod), (np.zeros(len(bounds) + 1), 0.0)
                    )
                    self._histograms[family, pod] = (before + counts, before_total + total)
            latest = pl.col("ts") == pl.col("ts").max()
            earlier = pl.concat([self._latest, samples.filter(~latest)], how="diagonal")
            self._served_before |= set(earlier.filter(pl.col("ready"))["instance_id"])
            self._latest = samples.filter(latest).sort("instance_id")

    def _counted(self, frames: IntervalFrames) -> tuple[dict, dict]:
        """What ``frames`` add to the token counters (family, pod) and to the frontend's
        request and token counters (name, service)."""
        samples, load = frames.instance_samples, frames.service_load
        totals: dict[tuple[str, str], float] = {}
        if samples.height:
            samples = samples.with_columns(
                (pl.col("prefill_tps_total") - pl.col("prefill_tps_cache_missed")).alias(
                    "_prefix_hits_tps"
                )
            )
            for family, column in self.COUNTERS.items():
                served = samples.group_by("instance_id").agg(
                    (pl.col(column) * pl.col("interval_s")).sum()
                )
                _accumulate(totals, {(family, pod): tokens for pod, tokens in served.iter_rows()})
        load_totals: dict[tuple[str, str], float] = {}
        for row in load.iter_rows(named=True):
            for name, column in (
                ("requests", "request_rate_rps"),
                ("input", "input_tps"),
                ("output", "output_tps"),
            ):
                _accumulate(load_totals, {(name, row["service"]): row[column] * row["interval_s"]})
        return totals, load_totals

    def text(self, ongoing: IntervalFrames | None = None) -> str:
        """The exposition text of the latest state, families in a fixed order; the counters
        also count ``ongoing``, the intervals in progress cut at the scrape."""
        totals, load = dict(self._totals), dict(self._load)
        if ongoing is not None:
            more, more_load = self._counted(ongoing)
            _accumulate(totals, more)
            _accumulate(load, more_load)
        families = [
            *self._vllm(totals),
            *self._dcgm(),
            self._readiness(),
            *self._deployments(),
            *self._frontend(load),
        ]
        parts = [f"{f.text()}\n" + "".join(f"{line}\n" for line in f.lines) for f in families]
        return "".join(parts)

    def _pods(self):
        return self._latest.iter_rows(named=True)

    def _vllm(self, totals: dict[tuple[str, str], float]) -> list[Family]:
        def labels(row: dict) -> dict[str, str]:
            return {
                "model_name": row["service"],
                "engine": "0",
                "pod": row["instance_id"],
                "role": row["role"],
            }

        gauges = [
            ("vllm:num_requests_running", "running_requests", "Requests in the running batch."),
            ("vllm:num_requests_waiting", "queue_depth", "Requests waiting to be scheduled."),
            ("vllm:kv_cache_usage_perc", "kv_usage_ratio", "KV-cache usage; 1 is full."),
        ]
        families = []
        for name, column, text in gauges:
            family = Family(name, "gauge", text)
            family.lines = [
                f"{name}{label_text(**labels(row))} {client_float(row[column])}"
                for row in self._pods()
            ]
            families.append(family)
        for family_name in self.COUNTERS:
            name = f"{family_name}_total"
            family = Family(name, "counter", f"Tokens counted by {family_name}.")
            family.lines = [
                f"{name}{label_text(**labels(row))} "
                f"{client_float(round(totals.get((family_name, row['instance_id']), 0.0)))}"
                for row in self._pods()
            ]
            families.append(family)
        for name, (_, bounds) in self.HISTOGRAMS.items():
            family = Family(name, "histogram", f"Histogram of {name.split(':')[1]}.")
            for row in self._pods():
                counts, total = self._histograms.get(
                    (name, row["instance_id"]), (np.zeros(len(bounds) + 1), 0.0)
                )
                family.lines += histogram_lines(name, labels(row), bounds, counts, total)
            families.append(family)
        return families

    def _dcgm(self) -> list[Family]:
        fields = [
            ("DCGM_FI_DEV_GPU_UTIL", "gpu_util_ratio", 100.0, True, "GPU utilization (in %)."),
            ("DCGM_FI_PROF_SM_ACTIVE", "sm_active_ratio", 1.0, False, "Ratio of SM cycles active."),
        ]
        families = []
        for name, column, scale, integer, text in fields:
            family = Family(name, "gauge", text)
            for node, row in enumerate(self._pods()):
                pod = row["instance_id"]
                for gpu in range(row["gpus_per_instance"]):
                    labels = label_text(
                        gpu=str(gpu),
                        UUID=f"GPU-{uuid.uuid5(uuid.NAMESPACE_URL, f'{pod}/{gpu}')}",
                        pci_bus_id=f"00000000:{0x18 + gpu:02X}:00.0",
                        device=f"nvidia{gpu}",
                        modelName=f"NVIDIA {row['gpu_type']}",
                        Hostname=f"gpu-node-{node}",
                        container=CONTAINER,
                        namespace=NAMESPACE,
                        pod=pod,
                    )
                    family.lines.append(
                        f"{name}{labels} {dcgm_value(row[column] * scale, integer)}"
                    )
            families.append(family)
        return families

    def _readiness(self) -> Family:
        family = Family("kube_pod_status_ready", "gauge", "Describes whether the pod is ready.")
        for row in self._pods():
            uid = str(uuid.uuid5(uuid.NAMESPACE_URL, row["instance_id"]))
            for condition in ("true", "false", "unknown"):
                state = {"true": row["ready"], "false": not row["ready"], "unknown": False}
                labels = label_text(
                    namespace=NAMESPACE, pod=row["instance_id"], uid=uid, condition=condition
                )
                family.lines.append(f"kube_pod_status_ready{labels} {int(state[condition])}")
        return family

    def _deployments(self) -> list[Family]:
        """kube-state-metrics' replicas of each role's Deployment: asked for, and ready."""
        if self._latest.is_empty():
            return []
        withdrawn = ~pl.col("ready") & pl.col("instance_id").is_in(list(self._served_before))
        counts = (
            self._latest.group_by("service", "role")
            .agg((~withdrawn).sum().alias("spec"), pl.col("ready").sum().alias("ready"))
            .sort("service", "role")
        )
        families = []
        for name, column, text in (
            ("kube_deployment_spec_replicas", "spec", "Pods the Deployment asks for."),
            ("kube_deployment_status_replicas_ready", "ready", "Pods of the Deployment ready."),
        ):
            family = Family(name, "gauge", text)
            family.lines = [
                f"{name}{label_text(namespace=NAMESPACE, deployment=f'{service}-{role}')} {n}"
                for service, role, n in counts.select("service", "role", column).iter_rows()
            ]
            families.append(family)
        return families

    def _frontend(self, load: dict[tuple[str, str], float]) -> list[Family]:
        services = sorted({service for _, service in load})
        requests = Family("dynamo_frontend_requests_total", "counter", "LLM requests.")
        families = [requests]
        for service in services:
            count = round(load["requests", service])
            requests.lines.append(
                f"dynamo_frontend_requests_total{label_text(model=service)} {count}"
            )
        for side in ("input", "output"):
            name = f"dynamo_frontend_{side}_sequence_tokens"
            family = Family(name, "histogram", f"{side.capitalize()} sequence length in tokens.")
            for service in services:
                count = round(load["requests", service])
                family.lines += histogram_lines(
                    name, {"model": service}, (), [count], round(load[side, service])
                )
            families.append(family)
        return families


class MetricsServer:
    """Serves ``GET /metrics`` of ``source`` on ``host:port`` (port 0: any free one).

    Each scrape first advances ``source`` to ``speed`` times the wall seconds since the
    server was made (``clock``, monotonic seconds, can be replaced in tests), and at least to
    the end of the first ``interval_s``, then answers the state at the end of the latest
    completed interval, a finished run's counters up to the scrape. Scrapes are served one at
    a time.
    """

    def __init__(
        self,
        source: IntervalSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        interval_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0 or interval_s <= 0:
            raise ValueError(f"speed and interval_s must be > 0, got {speed}, {interval_s}")
        self._source, self._speed, self._clock = source, speed, clock
        self._interval_s = interval_s
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
            until_s = max((self._clock() - self._started) * self._speed, self._interval_s)
            self._state.add(self._source.advance(until_s))
            # Only a finished run knows the interval in progress (a running one computes an
            # interval when it completes).
            ongoing = (
                self._source.ongoing(until_s) if isinstance(self._source, FinishedRun) else None
            )
            return self._state.text(ongoing)

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
