"""The multi-day closed-loop fleet backtest: curate on some days, evaluate every policy on others.

The default workload is the 14 real days of ServeGen's m-large service shipped in data/
(diurnal and weekly shape, 10-minute rate windows), scaled to a fleet of tens to hundreds of
instances, with request lengths from the Azure 2023 conversation trace, on the embedded
L20 prefill / H20 decode cluster. Days 1-7 are curation days (Algorithm 1 sees only them), days
8-14 evaluation days. Every policy runs closed loop in fast mode from the same starting
cluster, with its GPU types' startup delays, and is scored over the evaluation days as a whole
and day by day; the confidence intervals resample days (a day is the unit that repeats).
A user's own trace becomes a scenario too (:func:`trace_scenario`): curated on its first part,
evaluated on the rest; so does the offered load a store recorded (:func:`store_scenario`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial

import numpy as np
import polars as pl

from policies.controller import Controller
from policies.curation import (
    DEFAULT_GRID,
    Curation,
    CurationPlan,
    initial_cluster,
    plan_curation,
)
from policies.loop import ControlRun, run_controller
from policies.oracle import INSTANT, Oracle
from policies.parallel import Progress, spread
from policies.scoring import DAY_S, daily_scores, interval_outcome, score
from policies.slo import ServiceSLO
from simulator.cluster import ClusterSpec, LifecycleSpec, default_cluster
from simulator.fluid_load import (
    FluidLoad,
    load_from_requests,
    load_from_service_load,
    load_from_windows,
    scaled_lengths,
)
from simulator.fluid_loop import FluidLoop
from simulator.paths import SERVEGEN_RATES_CSV_GZ
from simulator.persist import REQUEST_OUTCOMES
from simulator.servegen import fill_collection_gaps, load_servegen_rates, rate_requests
from simulator.traces import Trace, default_trace
from telemetry.schema import SERVICE_LOAD
from telemetry.store import TelemetryStore, one_service

#: ServeGen m-large averages 196 requests/s (48-583 per 10-minute window); on a fifth of it
#: HeteroScale runs 24 to 295 instances of the embedded cluster over the evaluation week.
DEFAULT_RATE_SCALE = 0.2
DEFAULT_DAYS = 14
DEFAULT_CURATION_DAYS = 7
#: Bootstrap resamples of the evaluation days.
BOOTSTRAP = 2000
#: The least span of a recorded load's curation and evaluation parts: the curation grid's
#: longest scale-in cool-down, or no candidate could show its slowest scale-in.
MIN_PART_S = max(DEFAULT_GRID["scale_in_cooldown_s"])

#: Builds a policy's controller from the curation and the load it will run on.
Builder = Callable[[Curation, FluidLoad], Controller]


@dataclass(frozen=True)
class FleetScenario:
    """A service's load over a span, where curation ends, and what it runs on.

    Attributes
    ----------
    service : str
    load : FluidLoad
        The whole span.
    curation_intervals : int
        Intervals ``[0, curation_intervals)`` are curation, the rest evaluation.
    cluster : ClusterSpec
        The service's pools; their counts are the pressure tests' instance counts.
    source : str
        Where the load came from, for the report.
    requests : callable
        ``requests(first_s, span_s)``: the load's requests over a span (seconds from the load's
        start), for a request-level run of part of it (:mod:`policies.modes`).
    slo : ServiceSLO
    lifecycle : LifecycleSpec
        Startup delays of new instances.
    control_interval_s : float
    """

    service: str
    load: FluidLoad
    curation_intervals: int
    cluster: ClusterSpec
    source: str
    requests: Callable[[float, float], Trace]
    slo: ServiceSLO = field(default_factory=ServiceSLO)
    lifecycle: LifecycleSpec = field(default_factory=LifecycleSpec)
    control_interval_s: float = 15.0

    def __post_init__(self) -> None:
        if not 0 < self.curation_intervals < self.load.count:
            raise ValueError("the scenario needs curation and evaluation intervals")

    @property
    def curation(self) -> FluidLoad:
        return self.load.part(0, self.curation_intervals)

    @property
    def evaluation(self) -> FluidLoad:
        return self.load.part(self.curation_intervals, self.load.count)

    def plan_curation(self, grid: dict[str, tuple] | None = None) -> CurationPlan:
        """Algorithm 1's pressure tests on the curation part, on the scenario's cluster, SLO,
        startup delays and control interval, and the sweep of ``grid`` to run."""
        return plan_curation(
            self.curation,
            self.cluster,
            self.slo,
            lifecycle=self.lifecycle,
            control_interval_s=self.control_interval_s,
            grid=grid,
        )


def fleet_cluster() -> ClusterSpec:
    """The embedded cluster's pools at the counts the pressure tests use: 10 L20 prefill (a
    prefill pool's TTFT tail shrinks as more instances share its queue, Erlang C, so the
    capacity is read at about the smallest pool the default workload's night trough runs,
    and holds at every larger size) and 2 H20 decode (decode does not depend on the count)."""
    base = default_cluster()
    return replace(
        base,
        prefill_pools=(replace(base.prefill_pools[0], count=10),),
        decode_pools=(replace(base.decode_pools[0], count=2),),
    )


def servegen_scenario(
    *,
    days: int = DEFAULT_DAYS,
    curation_days: int = DEFAULT_CURATION_DAYS,
    rate_scale: float | None = None,
    interval_s: float = 15.0,
    servegen_service: str = "m-large",
) -> FleetScenario:
    """The default workload: ServeGen m-large's real days, scaled to a fleet.

    ``servegen_service`` picks another of ServeGen's language services (m-mid, m-small), whose
    collection gaps carry the previous window's rate (:func:`fill_collection_gaps`). Without a
    ``rate_scale`` every service is scaled to the default fleet's mean rate over its 14 days
    (m-large x :data:`DEFAULT_RATE_SCALE`), so that all run on fleets of the same size.
    """
    if not 0 < curation_days < days:
        raise ValueError(f"need 0 < curation_days < days, got {curation_days} of {days}")
    if servegen_service not in SERVEGEN_RATES_CSV_GZ:
        raise ValueError(
            f"no ServeGen service {servegen_service!r}: one of {', '.join(SERVEGEN_RATES_CSV_GZ)}"
        )
    rates, gaps = fill_collection_gaps(load_servegen_rates(SERVEGEN_RATES_CSV_GZ[servegen_service]))
    if rate_scale is None:
        default_mean = load_servegen_rates()["rate_rps"].mean()
        rate_scale = DEFAULT_RATE_SCALE * (default_mean / rates["rate_rps"].mean())
    lengths = default_trace().requests
    load = load_from_windows(rates, lengths, interval_s, days=days, rate_scale=rate_scale)
    filled = f", {gaps} collection-gap windows carrying the previous one's rate" if gaps else ""
    return FleetScenario(
        service="chat",
        load=load,
        curation_intervals=round(curation_days * DAY_S / interval_s),
        cluster=fleet_cluster(),
        source=(
            f"ServeGen {servegen_service}, {days} real days x {rate_scale:.3g} (days "
            f"1-{curation_days} curation, {curation_days + 1}-{days} evaluation){filled}, "
            "Azure 2023 conversation lengths"
        ),
        requests=partial(_poisson_requests, rates, lengths, rate_scale),
    )


def _poisson_requests(rates, lengths, rate_scale, first_s, span_s) -> Trace:
    return rate_requests(rates, lengths, first_s=first_s, span_s=span_s, rate_scale=rate_scale)


def trace_scenario(
    trace: Trace,
    *,
    service: str = "chat",
    curation_share: float = 0.5,
    interval_s: float = 15.0,
    cluster: ClusterSpec | None = None,
) -> FleetScenario:
    """A user's request trace: curated on its first ``curation_share``, evaluated on the rest."""
    if not 0 < curation_share < 1:
        raise ValueError(f"curation_share must be in (0, 1), got {curation_share}")
    load = load_from_requests(trace.requests, trace.start, interval_s)
    cut = round(load.count * curation_share)
    if not 0 < cut < load.count:
        raise ValueError(f"the trace spans {load.count} intervals: too short to split")
    return FleetScenario(
        service=service,
        load=load,
        curation_intervals=cut,
        cluster=cluster or default_cluster(),
        source=f"trace of {trace.requests.height:,} requests",
        requests=partial(_trace_part, trace),
    )


def _trace_part(trace: Trace, first_s: float, span_s: float) -> Trace:
    arrival = pl.col("arrival_s")
    part = trace.requests.filter((arrival >= first_s) & (arrival < first_s + span_s))
    return Trace(
        requests=part.with_columns(arrival - first_s),
        start=trace.start + timedelta(seconds=first_s),
    )


def store_scenario(
    store: TelemetryStore, *, service: str | None = None, cluster: ClusterSpec | None = None
) -> FleetScenario:
    """The offered load a store recorded (``service_load``) as the fleet workload.

    Curated on the first half of the recorded span (of its whole days when it holds two or
    more), evaluated on the rest, on ``cluster`` (default: the embedded one). The length mix is
    the service's recorded requests' (``request_outcomes``) where the store has them, else the
    Azure 2023 conversation lengths scaled to the recorded mean prompt and output lengths
    (docs/policy.md, "Your own telemetry"). Request-level runs draw Poisson arrivals at each
    interval's recorded rate.

    Raises
    ------
    ValueError
        When the store records no offered load, the service is unknown or not named among
        several, or the span is too short to split.
    """
    services = store.distinct(SERVICE_LOAD, ["service"])
    if services is None or services.is_empty():
        raise ValueError(
            f"{store.path} holds no offered load (service_load) to backtest on: ingest the "
            "router's or frontend's request counters too (docs/ingest.md)"
        )
    service = one_service(services["service"].to_list(), service, held="service_load holds")
    recorded = store.read(SERVICE_LOAD, {"service": service})
    lengths, lengths_source = _recorded_lengths(store, service, recorded)
    load = load_from_service_load(recorded, lengths)
    cut, split = _halves(load, service)
    measured = recorded.drop_nulls(["request_rate_rps", "input_tps", "output_tps"]).height
    filled = (
        f"{load.count - measured:,} of {load.count:,} intervals unrecorded, carrying the "
        "previous one's load; "
        if measured < load.count
        else ""
    )
    cluster = cluster or default_cluster()
    return FleetScenario(
        service=service,
        load=load,
        curation_intervals=cut,
        cluster=cluster,
        source=(
            f"{service}'s recorded offered load in {store.path}, {load.start:%Y-%m-%d %H:%M} .. "
            f"{load.end:%Y-%m-%d %H:%M} UTC ({split}); {lengths_source}; {filled}"
            f"on {cluster.describe()}"
        ),
        requests=partial(_recorded_requests, load, lengths),
        # A control interval is a whole number of telemetry intervals, 15 s where it can be.
        control_interval_s=load.interval_s * math.ceil(15.0 / load.interval_s),
    )


def _recorded_lengths(
    store: TelemetryStore, service: str, recorded: pl.DataFrame
) -> tuple[pl.DataFrame, str]:
    """The requests whose lengths the service's mix follows, and where they came from."""
    outcomes = store.distinct(REQUEST_OUTCOMES, ["service"])
    if outcomes is not None and service in outcomes["service"].to_list():
        requests = store.read(REQUEST_OUTCOMES, {"service": service})
        return requests, f"lengths of its {requests.height:,} recorded requests"
    rate, prompt, output = recorded.select(
        pl.col("request_rate_rps", "input_tps", "output_tps").sum()
    ).row(0)
    if not rate:
        raise ValueError(f"{service}'s service_load records no requests")
    prompt_mean, output_mean = prompt / rate, output / rate
    return scaled_lengths(default_trace().requests, prompt_mean, output_mean), (
        f"Azure 2023 conversation lengths scaled to its mean prompt of {prompt_mean:,.0f} and "
        f"output of {output_mean:,.0f} tokens (only means recorded)"
    )


def _halves(load: FluidLoad, service: str) -> tuple[int, str]:
    """Where curation ends: half the whole days when there are two or more, else half the
    intervals; refused when either part is shorter than :data:`MIN_PART_S`."""
    per_day = DAY_S / load.interval_s
    days = int(load.count // per_day) if per_day.is_integer() else 0
    if days >= 2:
        cut = int(days // 2 * per_day)
        split = f"days 1-{days // 2} curation, the rest evaluation"
    else:
        cut = load.count // 2
        split = "first half curation, second half evaluation"
    if min(cut, load.count - cut) * load.interval_s < MIN_PART_S:
        span_min = load.count * load.interval_s / 60
        raise ValueError(
            f"{service}'s offered load spans {span_min:,.0f} min: too short to split into "
            f"curation and evaluation halves of {MIN_PART_S / 60:g} min or more (the curation "
            "grid's longest scale-in cool-down)"
        )
    return cut, split


def _recorded_requests(
    load: FluidLoad, lengths: pl.DataFrame, first_s: float, span_s: float
) -> Trace:
    windows = pl.DataFrame(
        {
            "window_start_s": np.arange(load.count) * load.interval_s,
            "rate_rps": load.requests / load.interval_s,
        }
    )
    trace = rate_requests(
        windows, lengths, first_s=first_s, span_s=span_s, window_s=load.interval_s
    )
    return replace(trace, start=load.start + timedelta(seconds=first_s))


@dataclass(frozen=True)
class FleetBacktest:
    """Every policy's run on the evaluation part, and the curation behind them.

    Attributes
    ----------
    scenario : FleetScenario
    curation : Curation
    runs : dict of str to ControlRun
    summary : pl.DataFrame
        One row per policy: :func:`policies.scoring.score` over the evaluation part, plus
        ``*_ci_low`` / ``*_ci_high`` (95% bootstrap over days) for GPU-hours, utilisation and
        SLO attainment, and ``gpu_hours_vs_oracle``.
    per_day : pl.DataFrame
        The same scores per evaluation day (``day`` from 1).
    decisions : pl.DataFrame
        Every policy's decision log (``policy`` column first), times from the evaluation start.
    skipped : dict of str to str
        Policies that cannot run on this scenario, with the reason (e.g. a periodic schedule
        needs a whole day of history).
    """

    scenario: FleetScenario
    curation: Curation
    runs: dict[str, ControlRun]
    summary: pl.DataFrame
    per_day: pl.DataFrame
    decisions: pl.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)


#: Columns of :meth:`FleetBacktest.timeline`.
TIMELINE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "policy": pl.String(),
    "offered_rps": pl.Float64(),
    "prefill_instances": pl.Float64(),
    "decode_instances": pl.Float64(),
    "gpu_util": pl.Float64(),
    "ttft_p99_s": pl.Float64(),
    "tbt_p99_s": pl.Float64(),
}


def timeline(backtest: FleetBacktest, *, bin_s: float = 600.0) -> pl.DataFrame:
    """Every policy's run in bins of ``bin_s`` (:data:`TIMELINE_SCHEMA`): offered requests/s,
    mean instances paid per role, GPU utilisation over the paid GPU time, and the worst
    interval's TTFT p99 and TBT p99 (the slowest pool's): what the report plots."""
    frames = []
    for name, run in backtest.runs.items():
        telemetry = run.telemetry
        out = interval_outcome(telemetry, backtest.scenario.slo)
        roles = np.array([p.role for p in telemetry.pools])
        n = telemetry.intervals
        frames.append(
            pl.DataFrame(
                {
                    "interval": np.arange(n),
                    "requests": telemetry.load.requests[:n],
                    "prefill": telemetry.provisioned[roles == "prefill", :n].sum(axis=0),
                    "decode": telemetry.provisioned[roles == "decode", :n].sum(axis=0),
                    "gpu_s": out.gpu_s,
                    "busy_gpu_s": out.busy_gpu_s,
                    # fmax skips NaN; an interval no pool measured (idle) stays NaN, silently.
                    "ttft": np.fmax.reduce(telemetry.metric("ttft_p99_s")[roles == "prefill"]),
                    "tbt": np.fmax.reduce(telemetry.metric("tbt_p99_s")[roles == "decode"]),
                }
            ).with_columns(policy=pl.lit(name))
        )
    dt = backtest.scenario.load.interval_s
    per_bin = max(1, round(bin_s / dt))
    start = backtest.scenario.evaluation.start
    return (
        pl.concat(frames)
        .group_by("policy", (pl.col("interval") // per_bin).alias("bin"))
        .agg(
            offered_rps=pl.col("requests").sum() / (pl.len() * dt),
            prefill_instances=pl.col("prefill").mean(),
            decode_instances=pl.col("decode").mean(),
            gpu_util=pl.col("busy_gpu_s").sum() / pl.col("gpu_s").sum(),
            ttft_p99_s=pl.col("ttft").max(),
            tbt_p99_s=pl.col("tbt").max(),
        )
        .with_columns(ts=pl.lit(start) + pl.duration(seconds=pl.col("bin") * per_bin * dt))
        .select(pl.col(name).cast(dtype) for name, dtype in TIMELINE_SCHEMA.items())
        .sort("policy", "ts")
    )


@dataclass(frozen=True)
class PolicyLoop:
    """One policy's closed loop on the evaluation days, built and ready: what a process of
    :func:`run_fleet_backtest` is handed."""

    controller: Controller
    load: FluidLoad
    start: ClusterSpec
    lifecycle: LifecycleSpec
    control_interval_s: float

    def run(self) -> ControlRun:
        plant = FluidLoop(self.load, self.start, lifecycle=self.lifecycle)
        return run_controller(plant, self.controller, control_interval_s=self.control_interval_s)


def run_fleet_backtest(
    scenario: FleetScenario,
    builders: Mapping[str, Builder],
    *,
    grid: dict[str, tuple] | None = None,
    curation: Curation | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> FleetBacktest:
    """Curate on the scenario's curation part, then run every policy on its evaluation part.

    Parameters
    ----------
    scenario : FleetScenario
    builders : Mapping[str, Builder]
        Policy name -> builder (:data:`policies.registry.POLICIES`, or a selection of it).
    grid : dict, optional
        Curation's candidate grid (:data:`policies.curation.DEFAULT_GRID` when omitted).
    curation : Curation, optional
        Reuse an earlier curation of the same curation part instead of curating again.
    progress : policies.parallel.Progress, optional
        Wraps curation's sweep and the policies' runs, one after the other.
    workers : int
        Processes the sweep's candidates and the policies' runs spread over
        (:func:`policies.parallel.spread`); the results are the same for any number.
    """
    curation = curation or scenario.plan_curation(grid).run(progress, workers)
    evaluation = scenario.evaluation
    start = initial_cluster(scenario.cluster, curation.inputs, evaluation)
    controllers, skipped = {}, {}
    for name, build in builders.items():
        try:
            controllers[name] = build(curation, evaluation)
        except ValueError as error:
            skipped[name] = str(error)
    loops = [
        PolicyLoop(
            controller,
            evaluation,
            start,
            INSTANT if isinstance(controller, Oracle) else scenario.lifecycle,
            scenario.control_interval_s,
        )
        for controller in controllers.values()
    ]
    done = spread(PolicyLoop.run, loops, workers=workers, progress=progress, desc="policies")
    runs = dict(zip(controllers, done, strict=True))
    per_day = _per_day(runs, scenario, curation)
    return FleetBacktest(
        scenario=scenario,
        curation=curation,
        runs=runs,
        summary=_summary(runs, per_day, scenario, curation),
        per_day=per_day,
        decisions=pl.concat(
            [
                run.decisions.select(pl.lit(name).alias("policy"), pl.all())
                for name, run in runs.items()
            ]
        ),
        skipped=skipped,
    )


def _per_day(runs, scenario, curation) -> pl.DataFrame:
    rows = [
        {"policy": name, "day": day + 1, **scores}
        for name, run in runs.items()
        for day, scores in enumerate(
            daily_scores(run, scenario.slo, pd_ratio=curation.inputs.pd_ratio)
        )
    ]
    return pl.DataFrame(rows)


def _summary(runs, per_day, scenario, curation) -> pl.DataFrame:
    rows = []
    for name, run in runs.items():
        row = {"policy": name, **score(run, scenario.slo, pd_ratio=curation.inputs.pd_ratio)}
        days = per_day.filter(pl.col("policy") == name)
        for metric, total in (
            ("gpu_hours", True),
            ("avg_gpu_util", False),
            ("slo_attainment", False),
        ):
            low, high = bootstrap_mean_ci(days[metric].to_numpy())
            scale = days.height if total else 1
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low * scale, high * scale
        rows.append(row)
    summary = pl.DataFrame(rows)
    if "oracle" in runs:
        oracle = summary.filter(pl.col("policy") == "oracle")["gpu_hours"].item()
        summary = summary.with_columns(gpu_hours_vs_oracle=pl.col("gpu_hours") / oracle)
    return summary


def bootstrap_mean_ci(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (days resampled with
    replacement, :data:`BOOTSTRAP` times, fixed seed)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        mean = float(values.mean()) if values.size else float("nan")
        return mean, mean
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, values.size, (BOOTSTRAP, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def curated_policy_row(scenario: FleetScenario, curation: Curation) -> pl.DataFrame:
    """The chosen policy as one row: what it is, where each value came from, what it is held
    to (the ``curated_policy`` table)."""
    inputs = curation.inputs
    evaluation = scenario.evaluation
    return pl.DataFrame(
        [
            {
                "policy": "heteroscale",
                "signal": "decode_tps",
                "pd_ratio": inputs.pd_ratio,
                "decode_tps_per_instance": inputs.decode_tps_per_instance,
                **{
                    f"{role}_{name}": value
                    for role in ("prefill", "decode")
                    for name, value in zip(
                        ("gpu_type", "gpus_per_instance", "tps_at_slo"),
                        (*inputs.of_role(role)[0].key[1:], inputs.of_role(role)[0].tps_at_slo),
                        strict=True,
                    )
                },
                **curation.config.__dict__,
                "met_objective": curation.met_objective,
                "ttft_p99_slo_s": scenario.slo.ttft_p99_s,
                "tbt_p99_slo_s": scenario.slo.tbt_p99_s,
                "slo_attainment_target": scenario.slo.attainment,
                "source": scenario.source,
                "curation_start": scenario.load.start,
                "evaluation_start": evaluation.start,
                "evaluation_end": evaluation.end,
            }
        ]
    )


def pressure_targets(curated: dict, service: str) -> dict[tuple[str, str, str], float]:
    """The per-instance targets a ``curated_policy`` row's pressure tests give the signal
    study (:func:`signals.run_study`), keyed ``(service, role, signal)``: the throughput one
    instance of each role's first pool carries at the SLO."""
    prefill = curated["prefill_tps_at_slo"]
    return {
        (service, "decode", "decode_tps"): curated["decode_tps_at_slo"],
        (service, "prefill", "prefill_tps_total"): prefill,
        (service, "prefill", "prefill_tps_cache_missed"): prefill,
    }


def curation_tables(scenario: FleetScenario, curation: Curation) -> dict[str, pl.DataFrame]:
    """Every table curation stores, by name (docs/policy.md, "Tables")."""
    return {
        "curated_policy": curated_policy_row(scenario, curation),
        "curation_candidates": curation.candidates,
        "pressure_sweep": curation.pressure.sweep,
        "pd_ratios": curation.pressure.pairing_ratios(),
    }


def backtest_tables(backtest: FleetBacktest) -> dict[str, pl.DataFrame]:
    """Every table the fleet backtest stores besides curation's, by name (docs/policy.md,
    "Tables")."""
    start = backtest.scenario.evaluation.start
    return {
        "fleet_summary": backtest.summary,
        "fleet_per_day": backtest.per_day,
        "fleet_timeline": timeline(backtest),
        "fleet_decisions": backtest.decisions.with_columns(
            ts=pl.lit(start) + pl.duration(microseconds=(pl.col("t_s") * 1e6).cast(pl.Int64))
        ),
        "scaling_decisions": backtest.runs["heteroscale"].role_targets(),
    }
