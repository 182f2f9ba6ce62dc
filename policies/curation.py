"""Workload-centric policy curation, the paper's Algorithm 1 (§5.3.5), on the fast-mode plant.

1. **Pressure tests** (:func:`pressure_test`): ramp the service's own load mix slowly past
   what a pool can serve and read, per pool, the tokens/s one instance carries while its
   latency quantile stays within the SLO; then sweep the P/D split at a fixed decode count
   and keep the split that serves the most decode tokens/s per instance within both SLOs:
   the ratio ``r_opt`` and the per-instance target ``m-hat`` (the paper's Fig. 4 experiment).
2. **Simulate every candidate** controller configuration on the curation days
   (:meth:`CurationPlan.score`), closed loop, with startup delays; each on its own, so the
   sweep can be spread over processes (:mod:`pipelines.assets.policies`).
3. **Choose** by a stated objective: the fewest GPU-hours among candidates that spend at most
   a quarter of the SLO's error budget on *every* curation day (attainment >= 1 - (1 - target)
   / 4: 99.75% for a 99% target) and whose flaps stay within a limit; when none does, the best
   worst-day attainment (and it says so). Every day, not the pooled share, because calm days
   would hide a bad one; a quarter of the budget, because the choice must hold on days not
   seen, which can be burstier than the curation days (docs/policy.md shows the evaluation week
   of the default workload is, and which rules it has informed).

Curation sees only the load it is given (the curation days); evaluation days never enter it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from policies.controller import DECODE, PREFILL
from policies.heteroscale import HeteroScale, HeteroScaleConfig
from policies.inputs import PolicyInputs, PoolCapacity
from policies.loop import run_controller
from policies.parallel import Progress, spread
from policies.scoring import DAY_S, daily_scores, score
from policies.slo import ServiceSLO
from simulator.cluster import ClusterSpec, LifecycleSpec
from simulator.fluid_load import FluidLoad
from simulator.fluid_loop import FluidLoop

#: Intervals of a pressure-test ramp: 0.5% of the ramp's top per interval.
RAMP_INTERVALS = 200
#: Decode instances of the P/D split sweep (prefill runs 1 .. RAMP_SPLITS x this).
SWEEP_DECODE = 4
#: Share of the SLO's error budget a candidate may spend on a curation day.
BUDGET_SHARE = 0.25
#: Flaps per day a chosen configuration may make (a shorter history is allowed one day's).
MAX_FLAPS_PER_DAY = 4.0

#: Candidate configurations swept on the curation days: headroom, scale-in pace, tiers.
DEFAULT_GRID: dict[str, tuple] = {
    "utilisation_target": (0.65, 0.7, 0.75, 0.8, 0.85, 0.9),
    "scale_in_cooldown_s": (180.0, 300.0, 600.0),
    "scale_in_step": (0.05, 0.1),
}


@dataclass(frozen=True)
class PressureTest:
    """What the pressure tests found.

    Attributes
    ----------
    pools : tuple of PoolCapacity
        Per pool, tokens/s one instance carries within the SLO.
    pd_ratio : float
        Prefill per decode instances of the split that served the most.
    decode_tps_per_instance : float
        Decode tokens/s per instance (prefill and decode counted) at that split, within SLO.
    sweep : pl.DataFrame
        ``prefill``, ``decode``, ``decode_tps_within_slo``: the split sweep (Fig. 4).
    """

    pools: tuple[PoolCapacity, ...]
    pd_ratio: float
    decode_tps_per_instance: float
    sweep: pl.DataFrame

    def pairing_ratios(self) -> pl.DataFrame:
        """The P/D ratio of every (prefill pool, decode pool) hardware pairing.

        The split sweep runs on the first pool of each role (the reference pairing); another
        pairing needs as much prefill capacity per unit of decode capacity, so its ratio is
        the reference one scaled by the pools' pressure-tested capacities:
        ``r(P, D) = r_ref x (cap_D / cap_D_ref) / (cap_P / cap_P_ref)``. That is the ratio the
        coordinated controller keeps when it spreads a role over GPU types by capacity.

        Returns
        -------
        pl.DataFrame
            ``prefill_gpu_type``, ``prefill_gpus_per_instance``, ``decode_gpu_type``,
            ``decode_gpus_per_instance``, ``pd_ratio``.
        """
        prefill = [p for p in self.pools if p.role == PREFILL]
        decode = [p for p in self.pools if p.role == DECODE]
        rows = [
            (
                *p.key[1:],
                *d.key[1:],
                self.pd_ratio
                * (d.tps_at_slo / decode[0].tps_at_slo)
                / (p.tps_at_slo / prefill[0].tps_at_slo),
            )
            for p in prefill
            for d in decode
        ]
        return pl.DataFrame(
            rows,
            schema=[
                "prefill_gpu_type",
                "prefill_gpus_per_instance",
                "decode_gpu_type",
                "decode_gpus_per_instance",
                "pd_ratio",
            ],
            orient="row",
        )


def _ramp(load: FluidLoad, top_rps: float) -> FluidLoad:
    """A load rising linearly to ``top_rps`` requests/s over :data:`RAMP_INTERVALS`, with
    ``load``'s length mix."""
    dt = load.interval_s
    requests = np.linspace(0.0, top_rps * dt, RAMP_INTERVALS + 1)[1:]
    return FluidLoad(
        start=load.start,
        interval_s=dt,
        requests=requests,
        prompt_tokens=requests * load.mix.prompt_tokens,
        decode_tokens=requests * load.mix.decode_tokens,
        mix=load.mix,
    )


def _within_slo_until(telemetry, role_rows: list[int], slo: ServiceSLO) -> int:
    """First interval in which a pool of the tested roles misses its latency SLO (the
    ramp's length if none does)."""
    ttft = telemetry.metric("ttft_p99_s")
    tbt = telemetry.metric("tbt_p99_s")
    missed = np.zeros(telemetry.intervals, dtype=bool)
    for j in role_rows:
        missed |= np.nan_to_num(ttft[j]) > slo.ttft_p99_s
        missed |= np.nan_to_num(tbt[j]) > slo.tbt_p99_s
    return int(np.argmax(missed)) if missed.any() else telemetry.intervals


def _tokens_per_request(load: FluidLoad, role: str) -> float:
    """The tokens a request brings to ``role``: its prompt, or its output after the first."""
    return load.mix.prompt_tokens if role == PREFILL else load.mix.decode_tokens


def _pool_capacity(
    load: FluidLoad, cluster: ClusterSpec, j: int, slo: ServiceSLO, raw: list[float]
) -> float:
    """Per-instance tokens/s of pool ``j`` at its SLO, the other pools ample (``raw``: each
    pool's raw per-instance capacity)."""
    pools = (*cluster.prefill_pools, *cluster.decode_pools)
    tested = pools[j]
    n = tested.count
    top_rps = 1.5 * n * raw[j] / _tokens_per_request(load, tested.role)
    # Instances of every other pool that carry top_rps at half their raw capacity.
    ample = [
        replace(
            p,
            count=n
            if p is tested
            else max(1, math.ceil(2 * top_rps * _tokens_per_request(load, p.role) / raw[k])),
        )
        for k, p in enumerate(pools)
    ]
    fixed = replace(
        cluster,
        prefill_pools=tuple(p for p in ample if p.role == PREFILL),
        decode_pools=tuple(p for p in ample if p.role == DECODE),
    )
    ramp = FluidLoop(_ramp(load, top_rps), fixed)
    for _ in range(RAMP_INTERVALS):
        ramp.advance()
    telemetry = ramp.telemetry()
    first_miss = _within_slo_until(telemetry, [j], slo)
    column = "prefill_tps_total" if tested.role == PREFILL else "decode_tps"
    served = telemetry.metric(column)[j, :first_miss]
    if served.size == 0:
        metric, limit = (
            ("ttft_p99_s", slo.ttft_p99_s)
            if tested.role == PREFILL
            else ("tbt_p99_s", slo.tbt_p99_s)
        )
        idle = float(telemetry.metric(metric)[j, 0])
        raise ValueError(
            f"the SLO is out of reach: one {tested.tp} x {tested.gpu_type} {tested.role} "
            f"instance at the lightest load already has {metric} {idle:.3g} s > {limit:g} s "
            f"(this load's requests are too long for it); set a looser SLO"
        )
    return float(served.max())


def pressure_test(load: FluidLoad, cluster: ClusterSpec, slo: ServiceSLO) -> PressureTest:
    """Algorithm 1's PressureTest(S, W) on the fast-mode plant.

    Parameters
    ----------
    load : FluidLoad
        The service's load; only its length mix is used (the ramps are synthetic rates).
    cluster : ClusterSpec
        The pools to test; each pool is tested at its ``count`` instances (prefill TTFT
        depends a little on how many instances share the queue).
    slo : ServiceSLO

    Returns
    -------
    PressureTest
    """
    pools = (*cluster.prefill_pools, *cluster.decode_pools)
    plant = FluidLoop(_ramp(load, 1.0), cluster)  # only for the pools' raw capacities
    raw = [plant.capacity_tps(j) for j in range(len(pools))]
    capacities = tuple(
        PoolCapacity((p.role, p.gpu_type, p.tp), _pool_capacity(load, cluster, j, slo, raw))
        for j, p in enumerate(pools)
    )
    prefill, decode = cluster.prefill_pools[0], cluster.decode_pools[0]
    prefill_cap = capacities[0].tps_at_slo
    decode_cap = capacities[len(cluster.prefill_pools)].tps_at_slo
    balanced = decode_cap * load.mix.prompt_tokens / load.mix.decode_tokens / prefill_cap
    rows = []
    for p in range(1, math.ceil(2 * balanced * SWEEP_DECODE) + 1):
        split = replace(
            cluster,
            prefill_pools=(replace(prefill, count=p),),
            decode_pools=(replace(decode, count=SWEEP_DECODE),),
        )
        top_rps = 1.5 * SWEEP_DECODE * decode_cap / load.mix.decode_tokens
        ramp = FluidLoop(_ramp(load, top_rps), split)
        for _ in range(RAMP_INTERVALS):
            ramp.advance()
        telemetry = ramp.telemetry()
        first_miss = _within_slo_until(telemetry, [0, 1], slo)
        served = telemetry.metric("decode_tps")[1, :first_miss] * SWEEP_DECODE
        rows.append((p, SWEEP_DECODE, float(served.max()) if served.size else 0.0))
    sweep = pl.DataFrame(rows, schema=["prefill", "decode", "decode_tps_within_slo"], orient="row")
    per_instance = sweep["decode_tps_within_slo"] / (sweep["prefill"] + sweep["decode"])
    best = int(per_instance.arg_max())
    return PressureTest(
        pools=capacities,
        pd_ratio=sweep["prefill"][best] / SWEEP_DECODE,
        decode_tps_per_instance=float(per_instance[best]),
        sweep=sweep,
    )


@dataclass(frozen=True)
class Curation:
    """Algorithm 1's output: the inputs every policy is built from, the chosen controller
    configuration, and the evidence.

    Attributes
    ----------
    inputs : PolicyInputs
    config : HeteroScaleConfig
        The chosen candidate.
    met_objective : bool
        False when no candidate met the SLO and flap constraints (the best attainment won).
    pressure : PressureTest
    candidates : pl.DataFrame
        One row per candidate: its parameters and scores on the curation days.
    """

    inputs: PolicyInputs
    config: HeteroScaleConfig
    met_objective: bool
    pressure: PressureTest
    candidates: pl.DataFrame


def initial_cluster(cluster: ClusterSpec, inputs: PolicyInputs, load: FluidLoad) -> ClusterSpec:
    """``cluster`` with its first pool of each role sized for the first interval's load at
    the SLO, in the curated P/D ratio (the state a run starts from, for every policy alike;
    the scheduler places Deployment Groups within one instance of the ratio)."""
    dt = load.interval_s
    r = inputs.pd_ratio
    prefill_need = load.prompt_tokens[0] / dt / inputs.of_role(PREFILL)[0].tps_at_slo
    decode_need = load.decode_tokens[0] / dt / inputs.of_role(DECODE)[0].tps_at_slo
    decode = max(1, math.ceil(decode_need), math.ceil(prefill_need / r))
    prefill = max(1, round(r * decode))
    first_p, *rest_p = cluster.prefill_pools
    first_d, *rest_d = cluster.decode_pools
    return replace(
        cluster,
        prefill_pools=(replace(first_p, count=prefill), *(replace(p, count=0) for p in rest_p)),
        decode_pools=(replace(first_d, count=decode), *(replace(p, count=0) for p in rest_d)),
    )


@dataclass(frozen=True)
class CurationPlan:
    """Algorithm 1 up to its sweep: the pressure-tested inputs, the cluster every candidate
    starts from, and the candidates. Each candidate is scored on its own (:meth:`score`), so a
    sweep can be spread over processes or machines, and :meth:`choose` picks from the scores.

    Attributes
    ----------
    inputs : PolicyInputs
        The pressure test's ratio and capacities; ``inputs.history`` is the curation days.
    pressure : PressureTest
    start : ClusterSpec
        The cluster every candidate starts from (:func:`initial_cluster`).
    grid : dict
        :class:`HeteroScaleConfig` field -> candidate values.
    lifecycle : LifecycleSpec or None
        Startup delays in the candidates' closed loops.
    """

    inputs: PolicyInputs
    pressure: PressureTest
    start: ClusterSpec
    grid: dict[str, tuple]
    lifecycle: LifecycleSpec | None

    @property
    def candidates(self) -> list[dict]:
        """Every configuration of the grid, as :class:`HeteroScaleConfig` keyword arguments."""
        return [
            dict(zip(self.grid, values, strict=True))
            for values in itertools.product(*self.grid.values())
        ]

    def score(self, params: dict) -> dict:
        """One candidate closed loop on the curation days: its parameters, its scores and its
        worst day's SLO attainment."""
        inputs, slo = self.inputs, self.inputs.slo
        run = run_controller(
            FluidLoop(inputs.history, self.start, lifecycle=self.lifecycle),
            HeteroScale(inputs, HeteroScaleConfig(**params)),
            control_interval_s=inputs.control_interval_s,
        )
        worst = min(
            day["slo_attainment"] for day in daily_scores(run, slo, pd_ratio=inputs.pd_ratio)
        )
        return (
            params | score(run, slo, pd_ratio=inputs.pd_ratio) | {"worst_day_slo_attainment": worst}
        )

    def choose(self, rows: Iterable[dict]) -> Curation:
        """The objective over the candidates' scores (any order): the fewest GPU-hours among
        those within the budget share every day and the flap limit, else the best worst day."""
        slo, history = self.inputs.slo, self.inputs.history
        days = history.count * history.interval_s / DAY_S
        candidates = pl.DataFrame(list(rows)).sort(list(self.grid))
        feasible = candidates.filter(
            (pl.col("worst_day_slo_attainment") >= 1 - BUDGET_SHARE * (1 - slo.attainment))
            & (pl.col("flaps") <= MAX_FLAPS_PER_DAY * max(days, 1.0))
        )
        met = not feasible.is_empty()
        chosen = (
            feasible.sort("gpu_hours").row(0, named=True)
            if met
            else candidates.sort(
                "worst_day_slo_attainment", "gpu_hours", descending=[True, False]
            ).row(0, named=True)
        )
        config = HeteroScaleConfig(**{name: chosen[name] for name in self.grid})
        return Curation(self.inputs, config, met, self.pressure, candidates)

    def run(self, progress: Progress | None = None, workers: int = 1) -> Curation:
        """Every candidate scored, in this process or over ``workers`` processes
        (:func:`policies.parallel.spread`; ``progress`` wraps the sweep, one item per
        candidate), and the choice."""
        scores = spread(
            self.score, self.candidates, workers=workers, progress=progress, desc="curation"
        )
        return self.choose(scores)


def plan_curation(
    history: FluidLoad,
    cluster: ClusterSpec,
    slo: ServiceSLO,
    *,
    lifecycle: LifecycleSpec | None = None,
    control_interval_s: float = 15.0,
    grid: dict[str, tuple] | None = None,
) -> CurationPlan:
    """Algorithm 1's pressure tests on the curation days ``history``, and the sweep to run.

    Parameters
    ----------
    history : FluidLoad
        The curation days' offered load.
    cluster : ClusterSpec
        The service's pools (their counts set the pressure tests' instance counts).
    slo : ServiceSLO
    lifecycle : LifecycleSpec, optional
        Startup delays in the candidates' closed loops.
    control_interval_s : float
    grid : dict, optional
        :class:`HeteroScaleConfig` field -> candidate values (default :data:`DEFAULT_GRID`).
    """
    pressure = pressure_test(history, cluster, slo)
    inputs = PolicyInputs(
        pools=pressure.pools,
        slo=slo,
        pd_ratio=pressure.pd_ratio,
        decode_tps_per_instance=pressure.decode_tps_per_instance,
        history=history,
        control_interval_s=control_interval_s,
    )
    return CurationPlan(
        inputs=inputs,
        pressure=pressure,
        start=initial_cluster(cluster, inputs, history),
        grid=grid or DEFAULT_GRID,
        lifecycle=lifecycle,
    )


def curate(
    history: FluidLoad,
    cluster: ClusterSpec,
    slo: ServiceSLO,
    *,
    progress: Progress | None = None,
    workers: int = 1,
    **options,
) -> Curation:
    """Run Algorithm 1 on the curation days ``history``: :func:`plan_curation` with the same
    arguments and ``options`` (``lifecycle``, ``control_interval_s``, ``grid``), then
    :meth:`CurationPlan.run` over ``workers`` processes."""
    return plan_curation(history, cluster, slo, **options).run(progress, workers)
