"""From signal values to canonical rows: attributes, fills, row checks, then ``conform``.

Every reader ends here, so what makes a row loadable is decided once: an instance needs a role
and a GPU type (from labels, columns or the mapping file), every signal its source has must
have a value in the interval, values must be finite, non-negative and ratios within [0, 1].
A row that fails goes to quarantine with the first reason that applies, except an instance's
first or last interval lacking only counter rates, which is skipped (a rate needs two
samples); the rest are conformed to the canonical schema. When a load has instance telemetry
but no offered load, :func:`derived_load` estimates it from the work served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from telemetry.ingest import catalog as cat
from telemetry.ingest import quarantine, skipped
from telemetry.ingest.files import location
from telemetry.ingest.mapping import Mapping
from telemetry.ingest.semantics import Signals, sum_present
from telemetry.schema import (
    INSTANCE_METRIC_COLUMNS,
    INSTANCE_SAMPLES,
    INSTANCE_SAMPLES_SCHEMA,
    LATENCY_COLUMNS,
    RATIO_COLUMNS,
    SERVICE_LOAD,
    SERVICE_LOAD_SCHEMA,
    conform,
)

LOAD_METRICS = tuple(c for c in SERVICE_LOAD_SCHEMA if c not in ("ts", "interval_s", "service"))

#: Requests finished per (service, interval) on the instances that prefill them.
FINISHED_SCHEMA: dict[str, pl.DataType] = {
    "service": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "request_rate_rps": pl.Float64(),
}
#: Roles whose instances prefill every request once, and those that generate its tokens.
PREFILLING = ("prefill", "colocated")
DECODING = ("decode", "colocated")


@dataclass
class Canonical:
    """Canonical frames ready to write, with what was quarantined and how values were made.

    ``rows_loaded`` counts the input rows behind the canonical rows (not the canonical rows);
    ``skipped`` holds the input rows left aside on purpose (:mod:`skipped`);
    ``finished_requests`` the requests finished per service and interval
    (:data:`FINISHED_SCHEMA`), for an offered load derived from served work.
    """

    instance_samples: pl.DataFrame
    service_load: pl.DataFrame
    quarantine: pl.DataFrame
    rows_loaded: int
    notes: dict = field(default_factory=dict)
    skipped: pl.DataFrame = field(default_factory=skipped.empty)
    finished_requests: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=FINISHED_SCHEMA)
    )


def from_signals(
    signals: Signals, *, interval_s: float, mapping: Mapping, source: str
) -> Canonical:
    """Pivot signal values to rows per (service, instance, interval) and finish them."""
    values = signals.values
    load_long = values.filter(pl.col("column").is_in(LOAD_METRICS))
    inst_long = values.filter(~pl.col("column").is_in(LOAD_METRICS))
    load = _pivot(
        load_long.group_by("service", "ts", "column").agg(
            sum_present("value"), pl.col("rows").sum()
        ),
        ["service", "ts"],
    )
    instances = _pivot(inst_long, ["service", "instance_id", "ts"])
    if cat.PREFIX_HITS in instances.columns:
        instances = instances.with_columns(
            (pl.col("prefill_tps_total") - pl.col(cat.PREFIX_HITS))
            .clip(lower_bound=0.0)
            .alias("prefill_tps_cache_missed")
        ).drop(cat.PREFIX_HITS)
    finished = None
    if cat.FINISHED_REQUESTS in instances.columns:
        finished = instances.select("service", "instance_id", "ts", cat.FINISHED_REQUESTS)
        instances = instances.drop(cat.FINISHED_REQUESTS)
    notes = dict(signals.notes)
    if (
        "prefill_tps_total" in instances.columns
        and cat.PREFIX_HITS not in inst_long["column"].unique().to_list()
    ):
        instances = instances.with_columns(
            pl.col("prefill_tps_total").alias("prefill_tps_cache_missed")
        )
        notes["prefill_tps_cache_missed"] = "no prefix-cache hit counter: equals prefill_tps_total"
    # Several sources may describe one instance (a GPU exporter and an engine, two files).
    merged = signals.attributes.group_by("service", "instance_id").agg(
        pl.col("roles").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
        pl.col("gpu_type").drop_nulls().first(),
        pl.col("gpus_per_instance").max(),
    )
    attributes = merged.with_columns(
        pl.when(pl.col("roles").list.len() == 1).then(pl.col("roles").list.first()).alias("role"),
        (pl.col("roles").list.len() > 1).alias("conflicting_role"),
        pl.when(pl.col("gpus_per_instance") > 0).then(pl.col("gpus_per_instance")),
    ).drop("roles")
    instances = instances.join(attributes, on=["service", "instance_id"], how="left")
    samples, bad_instances, instance_notes, instance_edges = finish_instances(
        instances,
        interval_s=interval_s,
        mapping=mapping,
        source=source,
        null_reason="incomplete_interval",
        default_role="colocated",
    )
    loads, bad_loads, load_notes, load_edges = finish_load(
        load, interval_s=interval_s, mapping=mapping, source=source
    )
    set_aside = [instance_edges, load_edges]
    return Canonical(
        instance_samples=samples,
        service_load=loads,
        quarantine=pl.concat([signals.quarantine, bad_instances, bad_loads]),
        rows_loaded=int(instances["rows"].sum())
        + int(load["rows"].sum())
        - sum(int(frame["rows"].sum()) for frame in (bad_instances, bad_loads, *set_aside)),
        notes={**notes, **instance_notes, **load_notes},
        skipped=pl.concat([signals.skipped, *set_aside]),
        finished_requests=_finished(finished, samples),
    )


def _finished(finished: pl.DataFrame | None, samples: pl.DataFrame) -> pl.DataFrame:
    """Requests finished per service and interval on the loaded prefilling instances: in P/D
    every request finishes on its prefill instance too (vLLM's prefill leg stops after one
    token), so counting only those counts each request once."""
    if finished is None:
        return pl.DataFrame(schema=FINISHED_SCHEMA)
    loaded = samples.filter(pl.col("role").is_in(PREFILLING)).select("service", "instance_id", "ts")
    rate = pl.col(cat.FINISHED_REQUESTS)
    return (
        finished.join(loaded, on=["service", "instance_id", "ts"])
        .group_by("service", "ts")
        .agg(pl.when(rate.is_not_null().any()).then(rate.sum()).alias("request_rate_rps"))
        .select(list(FINISHED_SCHEMA))
        .cast(FINISHED_SCHEMA)
    )


def _pivot(long: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Wide rows with one column per signal and ``rows`` summed over the row's values."""
    if long.height == 0:
        return pl.DataFrame(schema={**{k: long.schema[k] for k in keys}, "rows": pl.Int64})
    rows = long.group_by(keys).agg(pl.col("rows").sum())
    wide = long.pivot(on="column", index=keys, values="value", aggregate_function="first")
    return rows.join(wide, on=keys, how="left")


def _attribute(frame: pl.DataFrame, name: str, mapping: Mapping) -> pl.Expr:
    """Mapping rules first (explicit wins), then the data's own value, then the defaults."""
    value = pl.col(name) if name in frame.columns else pl.lit(None)
    for rule in reversed(mapping.instances):
        if name in rule.attributes:
            matched = pl.col("instance_id").str.contains(f"^(?:{rule.match})$")
            value = pl.when(matched).then(pl.lit(rule.attributes[name])).otherwise(value)
    if name in mapping.defaults:
        value = pl.coalesce(value, pl.lit(mapping.defaults[name]))
    return value


def _location(frame: pl.DataFrame, keys: str) -> pl.Expr:
    if "_line" in frame.columns or "_row" in frame.columns:
        return location(frame)
    return pl.format(keys, *(["instance_id", "ts"] if "instance_id" in frame.columns else ["ts"]))


def _filled(
    frame: pl.DataFrame, columns, mapping: Mapping, notes: dict
) -> tuple[pl.DataFrame, list[str]]:
    """Add the columns no source provided: mapping constants, else null ("not measured").

    Returns the frame and the columns the source did provide, whose gaps are row problems.
    """
    additions, provided = [], []
    for c in columns:
        if c in frame.columns:
            provided.append(c)
        elif c in mapping.constants:
            additions.append(pl.lit(float(mapping.constants[c])).alias(c))
            notes.setdefault("constants", {})[c] = mapping.constants[c]
        else:
            additions.append(pl.lit(None, pl.Float64).alias(c))
            if c not in LATENCY_COLUMNS:
                notes.setdefault("not_measured", []).append(c)
    return (frame.with_columns(additions) if additions else frame), provided


def _row_problems(
    frame: pl.DataFrame,
    metrics,
    provided: list[str],
    null_reason: str,
    checks: list[tuple[pl.Expr, str, pl.Expr]],
) -> tuple[pl.Expr, pl.Expr]:
    """The first reason each row fails (null when it passes) and its detail.

    A row lacking a value its source provides elsewhere (a gap) is a problem; latency
    quantiles are legitimately null in intervals without samples.
    """
    required = [c for c in provided if c not in LATENCY_COLUMNS]
    rules = list(checks)
    missing = pl.concat_str(
        [pl.when(pl.col(c).is_null()).then(pl.lit(c)) for c in required],
        separator=", ",
        ignore_nulls=True,
    )
    rules.append(
        (
            pl.any_horizontal(pl.col(c).is_null() for c in required),
            null_reason,
            pl.format("no value for {}", missing),
        )
    )
    for c in metrics:
        rules.append((~pl.col(c).is_finite(), "non_finite_value", pl.format(f"{c} = {{}}", c)))
        rules.append((pl.col(c) < 0, "negative_value", pl.format(f"{c} = {{}}", c)))
        if c in RATIO_COLUMNS:
            rules.append(
                (
                    pl.col(c) > 1,
                    "ratio_above_one",
                    pl.format(f"{c} = {{}}; a percent? declare unit: percent", c),
                )
            )
    reason = pl.lit(None, pl.String)
    detail = pl.lit(None, pl.String)
    for mask, why, what in reversed(rules):
        hit = mask.fill_null(False)
        reason = pl.when(hit).then(pl.lit(why)).otherwise(reason)
        detail = pl.when(hit).then(what).otherwise(detail)
    return reason, detail


def _with_problems(frame: pl.DataFrame, reason: pl.Expr, detail: pl.Expr) -> pl.DataFrame:
    """``_reason`` on every row, ``_detail`` (text, costly) computed for failing rows only."""
    frame = frame.with_columns(reason.alias("_reason"))
    failing = pl.col("_reason").is_not_null()
    bad = frame.filter(failing).with_columns(detail.alias("_detail"))
    good = frame.filter(~failing).with_columns(pl.lit(None, pl.String).alias("_detail"))
    return pl.concat([good, bad]) if bad.height else good


def _edges(
    frame: pl.DataFrame, keys: list[str], required: list[str], null_reason: str
) -> pl.DataFrame:
    """``frame`` with ``_reason`` set to ``edge_interval`` on the rows that only lack counter
    rates their instance (or service) has in other intervals, at its first or last interval:
    the first scrape of a counter sets its baseline, and a last scrape at an interval's start
    leaves that interval without a second sample. Anywhere else a missing rate is a gap, and a
    counter an instance never has is missing: both stay quarantined."""
    if null_reason != "incomplete_interval":
        return frame
    rates = [c for c in required if c in cat.RATE_COLUMNS]
    others = [c for c in required if c not in cat.RATE_COLUMNS]
    ts = pl.col("ts")
    edge = (ts == ts.min().over(keys)) | (ts == ts.max().over(keys))
    lacking = [pl.col(c).is_null() for c in others] + [
        pl.col(c).is_null() & ~pl.col(c).is_not_null().any().over(keys) for c in rates
    ]
    only_baseline = ~pl.any_horizontal(lacking) if lacking else pl.lit(True)
    return frame.with_columns(
        pl.when((pl.col("_reason") == null_reason) & edge & only_baseline)
        .then(pl.lit("edge_interval"))
        .otherwise(pl.col("_reason"))
        .alias("_reason")
    )


def _split(
    frame: pl.DataFrame, source: str, location: pl.Expr
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Rows without a problem, quarantine rows (one per reason) for the others, and skipped
    rows for the edge intervals."""
    edges = frame.filter(pl.col("_reason") == "edge_interval")
    frame = frame.filter((pl.col("_reason") != "edge_interval").fill_null(True))
    bad = frame.filter(pl.col("_reason").is_not_null())
    parts = [
        quarantine.rows(
            group,
            source=pl.col("source") if "source" in group.columns else source,
            location=location,
            reason=reason,
            detail=pl.col("_detail"),
            count=pl.col("rows"),
        )
        for (reason,), group in bad.group_by("_reason")
    ]
    good = frame.filter(pl.col("_reason").is_null()).drop("_reason", "_detail")
    aside = skipped.rows(edges, source=source, reason="edge_interval", metric=None)
    return good, pl.concat([quarantine.empty(), *parts]), aside


def finish_instances(
    frame: pl.DataFrame,
    *,
    interval_s: float,
    mapping: Mapping,
    source: str,
    null_reason: str = "missing_value",
    default_role: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict, pl.DataFrame]:
    """Conformed ``instance_samples`` rows, quarantine rows, notes and skipped rows (edge
    intervals) from wide rows.

    Parameters
    ----------
    frame : pl.DataFrame
        ``service``, ``instance_id``, ``ts``, ``rows`` (input rows behind each row) and any
        canonical columns; optional ``source`` and ``location`` for quarantine rows.
    interval_s : float
        Used where ``interval_s`` is not a column.
    mapping : Mapping
        Attributes by instance, defaults and constants.
    source : str
        Quarantine source when ``frame`` has no ``source`` column.
    null_reason : str
        Reason for a row missing a required value: ``incomplete_interval`` for series data
        (a gap), ``missing_value`` for tables (an empty cell).
    default_role : str, optional
        Role of the instances nothing names one for (noted); without it they are quarantined.
        Engines' own series carry no role: a plain vLLM or SGLang server is ``colocated``.
    """
    notes: dict = {}
    if frame.height == 0:
        empty = conform(_empty_instances(), INSTANCE_SAMPLES)
        return empty, quarantine.empty(), notes, skipped.empty()
    frame = frame.with_columns(
        _attribute(frame, name, mapping).alias(name)
        for name in ("role", "gpu_type", "gpus_per_instance")
    ).with_columns(pl.col("role").replace(cat.ROLE_ALIASES))
    conflict = pl.col("conflicting_role") if "conflicting_role" in frame.columns else pl.lit(False)
    unnamed = pl.col("role").is_null() & ~conflict.fill_null(False)
    if default_role is not None and frame.select(unnamed.any()).item():
        count = frame.filter(unnamed)["instance_id"].n_unique()
        notes["role"] = (
            f"{count} instances with no role label or mapping rule taken as {default_role} (one "
            "engine doing prefill and decode, as a plain vLLM or SGLang server); label role= "
            "or map them for P/D"
        )
        frame = frame.with_columns(
            pl.when(unnamed).then(pl.lit(default_role)).otherwise(pl.col("role")).alias("role")
        )
    if "interval_s" not in frame.columns:
        frame = frame.with_columns(pl.lit(float(interval_s)).alias("interval_s"))
    if frame["gpus_per_instance"].null_count():
        notes["gpus_per_instance"] = "no GPU labels or mapping for some instances: assumed 1"
        frame = frame.with_columns(pl.col("gpus_per_instance").fill_null(1))
    # A source with readiness must have it in every interval, like any signal it provides: an
    # interval whose readiness samples were all quarantined is a gap, not a null to load.
    ready_provided = ["ready"] if "ready" in frame.columns else []
    if not ready_provided:
        notes["ready"] = "no readiness series: every reporting instance counted as ready"
        frame = frame.with_columns(pl.lit(True).alias("ready"))
    elif frame.schema["ready"] != pl.Boolean:
        # The fraction of the interval ready; a NaN (a PromQL average of NaNs) is no value,
        # not "ready" (polars orders NaN above every number).
        fraction = pl.col("ready").cast(pl.Float64)
        frame = frame.with_columns(
            pl.when(fraction.is_finite()).then(fraction >= 0.5).alias("ready")
        )
    frame, provided = _filled(frame, INSTANCE_METRIC_COLUMNS, mapping, notes)
    checks = [
        (
            conflict,
            "conflicting_role",
            pl.format("instance {} has several role labels", "instance_id"),
        ),
        (
            pl.col("role").is_null(),
            "missing_role",
            pl.format("instance {} has no role", "instance_id"),
        ),
        (
            ~pl.col("role").is_in(cat.ROLE_ALIASES.values()),
            "unknown_role",
            pl.format("role {}", "role"),
        ),
        (
            pl.col("gpu_type").is_null(),
            "missing_gpu_type",
            pl.format("instance {} has no GPU type", "instance_id"),
        ),
    ]
    provided = [*provided, *ready_provided]
    reason, detail = _row_problems(frame, INSTANCE_METRIC_COLUMNS, provided, null_reason, checks)
    frame = _edges(
        _with_problems(frame, reason, detail),
        ["service", "instance_id"],
        [c for c in provided if c not in LATENCY_COLUMNS],
        null_reason,
    )
    good, bad, edges = _split(frame, source, _location(frame, "instance {} at {}"))
    return conform(good, INSTANCE_SAMPLES), bad, notes, edges


def finish_load(
    frame: pl.DataFrame,
    *,
    interval_s: float,
    mapping: Mapping,
    source: str,
    null_reason: str = "incomplete_interval",
) -> tuple[pl.DataFrame, pl.DataFrame, dict, pl.DataFrame]:
    """Conformed ``service_load`` rows, quarantine rows, notes and skipped rows (edge
    intervals) from wide rows."""
    notes: dict = {}
    if frame.height == 0:
        empty = pl.DataFrame(schema=SERVICE_LOAD_SCHEMA)
        return empty, quarantine.empty(), notes, skipped.empty()
    if "interval_s" not in frame.columns:
        frame = frame.with_columns(pl.lit(float(interval_s)).alias("interval_s"))
    frame, provided = _filled(frame, LOAD_METRICS, mapping, notes)
    if "not_measured" in notes:
        notes["service_load_not_measured"] = notes.pop("not_measured")
    reason, detail = _row_problems(frame, LOAD_METRICS, provided, null_reason, [])
    frame = _edges(_with_problems(frame, reason, detail), ["service"], provided, null_reason)
    good, bad, edges = _split(frame, source, _location(frame, "service load at {}"))
    return conform(good, SERVICE_LOAD), bad, notes, edges


def _empty_instances() -> pl.DataFrame:
    return pl.DataFrame(schema=INSTANCE_SAMPLES_SCHEMA)


#: What a derived offered load is, for the load report and the store's origin table.
DERIVED_LOAD_NOTE = (
    "no offered-load series: derived from served work (input_tps: prompt tokens of prefill "
    "and colocated instances; output_tps: tokens generated by decode and colocated instances; "
    "request_rate_rps: requests they finished, when exported). A lower bound of the offered "
    "load whenever requests queue or are dropped, and throughput signals scored against it "
    "are scored against themselves; export the router's or frontend's request and token "
    "counters (e.g. Dynamo's dynamo_frontend_requests_total) for the real offered load"
)
NO_LOAD_NOTE = (
    "no offered-load series and no served-token counters: the signal study has nothing to "
    "score signals against; load the frontend's counters (e.g. Dynamo's) or a service_load "
    "table (docs/ingest.md)"
)


def derived_load(
    samples: pl.DataFrame, loads: pl.DataFrame, finished: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, str]]:
    """An offered load estimated from served work, for each service with instance samples and
    no ``service_load`` in the same load; and a note per such service.

    Parameters
    ----------
    samples : pl.DataFrame
        Conformed ``instance_samples``.
    loads : pl.DataFrame
        Conformed ``service_load`` of the same load.
    finished : pl.DataFrame
        Requests finished per service and interval (:data:`FINISHED_SCHEMA`).

    Returns
    -------
    (pl.DataFrame, dict)
        Conformed ``service_load`` rows and, per service, :data:`DERIVED_LOAD_NOTE` or
        :data:`NO_LOAD_NOTE`.

    Notes
    -----
    Served work equals offered work only while the cluster keeps up: queued, preempted and
    dropped requests are missing from it, so the estimate is a lower bound under saturation.
    Prompt tokens are counted where they are prefilled and output tokens where they are
    generated, so P/D deployments count each token once (a vLLM prefill leg generates one
    token of its own, not counted).
    """
    missing = sorted(set(samples["service"].unique()) - set(loads["service"].unique()))
    empty = pl.DataFrame(schema=SERVICE_LOAD_SCHEMA)
    if not missing:
        return empty, {}
    role = pl.col("role")

    def served(column: str, roles: tuple[str, ...]) -> pl.Expr:
        values = pl.col(column).filter(role.is_in(roles))
        return pl.when(values.is_not_null().any()).then(values.sum())

    served_work = (
        samples.filter(pl.col("service").is_in(missing))
        .group_by("service", "ts", "interval_s")
        .agg(
            served("prefill_tps_total", PREFILLING).alias("input_tps"),
            served("decode_tps", DECODING).alias("output_tps"),
        )
        .filter(pl.col("input_tps").is_not_null() | pl.col("output_tps").is_not_null())
        .join(finished, on=["service", "ts"], how="left")
    )
    notes = {
        service: DERIVED_LOAD_NOTE
        if service in set(served_work["service"].unique())
        else NO_LOAD_NOTE
        for service in missing
    }
    if served_work.height == 0:
        return empty, notes
    return conform(served_work, SERVICE_LOAD), notes
