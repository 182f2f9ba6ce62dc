"""Write canonical telemetry as OpenMetrics text with the names real exporters use.

The writer is the inverse of the exposition reader, so a Prometheus can be backfilled with
``promtool tsdb create-blocks-from openmetrics`` from simulated telemetry and read back through
its HTTP API. Each canonical column becomes the series its real exporter would expose:

- throughputs become vLLM counters sampled at interval boundaries (their increase over an
  interval is ``rate * interval_s``);
- gauges are sampled once, at mid-interval, so any reader's interval-average returns them;
- GPU utilisation and SM activity become one DCGM series per GPU of the instance;
- latency quantiles become histograms: per interval, 50 observations at p50, 40 at p90 and 10
  at p99, so that ``histogram_quantile`` recovers each quantile within one bucket
  (:data:`HISTOGRAM_BUCKETS_S`: a 10 % geometric ladder from 0.1 ms).
"""

from __future__ import annotations

import polars as pl

#: Histogram bucket bounds in seconds: 0.1 ms to about 120 s, each 1.1 times the previous.
HISTOGRAM_BUCKETS_S = tuple(float(f"{1e-4 * 1.1**k:.6g}") for k in range(147))

#: Observations written per interval at each quantile (they sum to 100).
QUANTILE_OBSERVATIONS = {"p50": 50, "p90": 40, "p99": 10}

COUNTERS = {
    "vllm:prompt_tokens": "prefill_tps_total",
    "vllm:prefix_cache_hits": "prefix_hits_tps",
    "vllm:generation_tokens": "decode_tps",
}
GAUGES = {
    "vllm:num_requests_waiting": "queue_depth",
    "vllm:num_requests_running": "running_requests",
    "vllm:kv_cache_usage_perc": "kv_usage_ratio",
}
HISTOGRAMS = {"vllm:time_to_first_token_seconds": "ttft", "vllm:inter_token_latency_seconds": "tbt"}
GPU_GAUGES = {
    "DCGM_FI_DEV_GPU_UTIL": ("gpu_util_ratio", 100.0),
    "DCGM_FI_PROF_SM_ACTIVE": ("sm_active_ratio", 1.0),
}
LOAD_COUNTERS = {
    "dynamo_frontend_requests": "request_rate_rps",
    "dynamo_frontend_input_sequence_tokens": "input_tps",
    "dynamo_frontend_output_sequence_tokens": "output_tps",
}


def _seconds(column: str = "ts") -> pl.Expr:
    return pl.col(column).dt.epoch("us") / 1e6


def _label_text(*pairs: tuple[str, pl.Expr]) -> pl.Expr:
    """``k1="v1",k2="v2"`` from label expressions, values escaped as exposition requires."""
    parts = []
    for name, value in pairs:
        escaped = (
            value.cast(pl.String)
            .str.replace_all("\\", "\\\\", literal=True)
            .str.replace_all('"', '\\"', literal=True)
            .str.replace_all("\n", "\\n", literal=True)
        )
        parts.append(pl.format(f'{name}="{{}}"', escaped))
    return pl.concat_str(parts, separator=",")


def _points(
    frame: pl.DataFrame,
    family: str,
    kind: str,
    name: str,
    value: pl.Expr,
    labels: pl.Expr,
    at: pl.Expr,
    order: int = 0,
) -> pl.DataFrame:
    return frame.select(
        pl.lit(family).alias("family"),
        pl.lit(kind).alias("kind"),
        pl.lit(name).alias("name"),
        labels.alias("labels"),
        at.alias("at"),
        pl.lit(order).alias("order"),
        value.cast(pl.Float64).alias("value"),
    )


def _counter_points(samples: pl.DataFrame, by: list[str], rate: str) -> pl.DataFrame:
    """Cumulative counter values: 0 at the first interval start, then one at each interval end."""
    ordered = samples.sort(*by, "ts")
    ends = ordered.with_columns(
        (pl.col(rate) * pl.col("interval_s")).cum_sum().over(by).alias("value"),
        (_seconds() + pl.col("interval_s")).alias("at"),
    )
    starts = ordered.group_by(by).agg(
        pl.lit(0.0).alias("value"),
        _seconds().min().alias("at"),
        pl.first("ts"),
        pl.first("interval_s"),
        *[pl.first(c) for c in samples.columns if c not in (*by, "ts", "interval_s")],
    )
    return pl.concat([starts.select(ends.columns), ends])


def write_openmetrics(
    instance_samples: pl.DataFrame, service_load: pl.DataFrame | None = None
) -> str:
    """OpenMetrics text (timestamps in seconds, ending in ``# EOF``) for canonical frames.

    Parameters
    ----------
    instance_samples : pl.DataFrame
        Canonical ``instance_samples``; every instance becomes a pod with labels ``pod``,
        ``service`` and ``role`` on vLLM series and ``modelName`` (``NVIDIA <gpu_type>``) and
        ``gpu`` on DCGM series.
    service_load : pl.DataFrame, optional
        Canonical ``service_load``, written as the Dynamo frontend's counters.

    Returns
    -------
    str
        The document; families are contiguous and each series is in time order, as
        ``promtool tsdb create-blocks-from openmetrics`` requires.
    """
    pod = [("pod", pl.col("instance_id")), ("service", pl.col("service"))]
    engine = _label_text(*pod, ("role", pl.col("role")))
    samples = instance_samples.with_columns(
        (pl.col("prefill_tps_total") - pl.col("prefill_tps_cache_missed"))
        .clip(lower_bound=0.0)
        .alias("prefix_hits_tps")
    )
    by = ["service", "instance_id"]
    mid = _seconds() + pl.col("interval_s") / 2
    points = []
    for family, column in COUNTERS.items():
        counter = _counter_points(
            samples.select(*by, "role", "ts", "interval_s", column), by, column
        )
        points.append(
            _points(
                counter, family, "counter", f"{family}_total", pl.col("value"), engine, pl.col("at")
            )
        )
    for family, column in GAUGES.items():
        points.append(_points(samples, family, "gauge", family, pl.col(column), engine, mid))
    ready = _label_text(*pod, ("condition", pl.lit("true")))
    points.append(
        _points(
            samples,
            "kube_pod_status_ready",
            "gauge",
            "kube_pod_status_ready",
            pl.col("ready").cast(pl.Float64),
            ready,
            mid,
        )
    )
    gpus = samples.with_columns(pl.int_ranges(0, pl.col("gpus_per_instance")).alias("gpu")).explode(
        "gpu"
    )
    dcgm = _label_text(
        *pod, ("gpu", pl.col("gpu")), ("modelName", pl.format("NVIDIA {}", pl.col("gpu_type")))
    )
    for family, (column, scale) in GPU_GAUGES.items():
        points.append(_points(gpus, family, "gauge", family, pl.col(column) * scale, dcgm, mid))
    for family, prefix in HISTOGRAMS.items():
        points.append(_histogram_points(samples, family, prefix, engine))
    if service_load is not None and service_load.height:
        points.extend(_load_points(service_load))
    return _render(pl.concat(points))


def _histogram_points(
    samples: pl.DataFrame, family: str, prefix: str, labels: pl.Expr
) -> pl.DataFrame:
    """Cumulative buckets, count and sum of a latency histogram (see the module notes)."""
    by = ["service", "instance_id"]
    observed = samples.select(
        *by,
        "role",
        "ts",
        "interval_s",
        *[pl.col(f"{prefix}_{q}_s").alias(q) for q in QUANTILE_OBSERVATIONS],
    ).with_columns(
        pl.all_horizontal(pl.col(q).is_not_null() for q in QUANTILE_OBSERVATIONS).alias("seen")
    )
    weights = {
        q: pl.when(pl.col("seen")).then(n).otherwise(0) for q, n in QUANTILE_OBSERVATIONS.items()
    }
    # Per second, like the throughputs: _counter_points multiplies by interval_s again.
    per_s = pl.col("interval_s")
    observed = observed.with_columns(
        (sum(weights.values()) / per_s).alias("count"),
        (sum(w * pl.col(q).fill_null(0.0) for q, w in weights.items()) / per_s).alias("sum"),
    )
    bounds = pl.DataFrame({"le": [*HISTOGRAM_BUCKETS_S, float("inf")]})
    buckets = observed.join(bounds, how="cross").with_columns(
        (
            sum(pl.when(pl.col(q) <= pl.col("le")).then(w).otherwise(0) for q, w in weights.items())
            / per_s
        ).alias("in_bucket")
    )
    le_text = (
        pl.when(pl.col("le").is_infinite())
        .then(pl.lit("+Inf"))
        .otherwise(pl.col("le").cast(pl.String))
    )
    bucket_labels = pl.concat_str([labels, _label_text(("le", le_text))], separator=",")
    parts = [
        _counter_points(
            buckets.select(*by, "role", "ts", "interval_s", "le", "in_bucket"),
            [*by, "le"],
            "in_bucket",
        ).with_columns(pl.col("le")),
        _counter_points(observed.select(*by, "role", "ts", "interval_s", "count"), by, "count"),
        _counter_points(observed.select(*by, "role", "ts", "interval_s", "sum"), by, "sum"),
    ]
    return pl.concat(
        [
            _points(
                parts[0].sort("le"),
                family,
                "histogram",
                f"{family}_bucket",
                pl.col("value"),
                bucket_labels,
                pl.col("at"),
                order=0,
            ),
            _points(
                parts[1],
                family,
                "histogram",
                f"{family}_count",
                pl.col("value"),
                labels,
                pl.col("at"),
                order=1,
            ),
            _points(
                parts[2],
                family,
                "histogram",
                f"{family}_sum",
                pl.col("value"),
                labels,
                pl.col("at"),
                order=2,
            ),
        ]
    )


def _load_points(service_load: pl.DataFrame) -> list[pl.DataFrame]:
    """The Dynamo frontend's request counter and token histograms (one +Inf bucket each)."""
    labels = _label_text(("service", pl.col("service")))
    points = []
    requests = _counter_points(
        service_load.select("service", "ts", "interval_s", "request_rate_rps"),
        ["service"],
        "request_rate_rps",
    )
    points.append(
        _points(
            requests,
            "dynamo_frontend_requests",
            "counter",
            "dynamo_frontend_requests_total",
            pl.col("value"),
            labels,
            pl.col("at"),
        )
    )
    for family in (
        "dynamo_frontend_input_sequence_tokens",
        "dynamo_frontend_output_sequence_tokens",
    ):
        tokens = _counter_points(
            service_load.select("service", "ts", "interval_s", LOAD_COUNTERS[family]),
            ["service"],
            LOAD_COUNTERS[family],
        )
        inf = pl.concat_str([labels, pl.lit('le="+Inf"')], separator=",")
        points += [
            _points(
                requests,
                family,
                "histogram",
                f"{family}_bucket",
                pl.col("value"),
                inf,
                pl.col("at"),
                order=0,
            ),
            _points(
                requests,
                family,
                "histogram",
                f"{family}_count",
                pl.col("value"),
                labels,
                pl.col("at"),
                order=1,
            ),
            _points(
                tokens,
                family,
                "histogram",
                f"{family}_sum",
                pl.col("value"),
                labels,
                pl.col("at"),
                order=2,
            ),
        ]
    return points


def _render(points: pl.DataFrame) -> str:
    """Exposition lines: families contiguous, each series in time order, then ``# EOF``."""
    series = pl.col("labels").str.replace(r',?le="[^"]*"', "")
    lines = (
        points.with_columns(series.alias("series"))
        .sort("family", "series", "at", "order", maintain_order=True)
        .with_columns(
            pl.format(
                "{}{{{}}} {} {}",
                "name",
                "labels",
                pl.col("value").cast(pl.String),
                pl.col("at").round(6).cast(pl.String),
            ).alias("line")
        )
    )
    out = []
    for (family, kind), group in lines.group_by("family", "kind", maintain_order=True):
        out.append(f"# TYPE {family} {kind}")
        out.extend(group["line"].to_list())
    out.append("# EOF")
    return "\n".join(out) + "\n"
