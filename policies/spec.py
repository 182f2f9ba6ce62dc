"""The chosen policy as a versioned, self-describing artefact: what a cluster is asked to run.

The main job stores its curated policy as table rows (``curated_policy``, ``pd_ratios``) and
its evaluation as scores (``fleet_summary``). A deployment needs one document instead, that
can be reviewed, diffed, versioned and loaded back exactly: :class:`PolicySpec`, dumped as
YAML (:func:`dump`) and read back with :func:`load`, which checks it against the JSON Schema
shipped beside this module (:data:`SCHEMA_PATH`) before building it, so a hand-edited file
fails with the field at fault rather than deep inside an exporter.

Every value says where it came from (``provenance.sources``): Algorithm 1's pressure tests
or its configuration sweep on the curation days of a named trace, a project default that
was not tuned, the scenario (the SLO), or the policy's design. The spec also carries the
publication gate's verdict on the evaluation days (:mod:`policies.gate`), so a spec that
failed says so itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

import jsonschema
import polars as pl
import yaml

from policies.controller import DECODE, PREFILL
from policies.curation import DEFAULT_GRID
from policies.fleet import FleetScenario
from policies.gate import Verdict, validate
from policies.heteroscale import HeteroScaleConfig
from policies.inputs import PolicyInputs, PoolCapacity
from policies.slo import ServiceSLO
from telemetry.store import TelemetryStore, one_service

API_VERSION = "heteroscale/v1"
KIND = "PolicySpec"
SCHEMA_PATH = Path(__file__).with_name("policy_spec.schema.json")

#: The backtest's decision period (a scenario default the store does not record).
_CONTROL_INTERVAL_S = next(
    f.default for f in fields(FleetScenario) if f.name == "control_interval_s"
)

#: Where a value can come from (``provenance.sources``; docs/policy-spec.md).
SOURCES = ("pressure_test", "curation_sweep", "default", "scenario", "design")


@dataclass(frozen=True)
class Pool:
    """One role's pool: its hardware, pressure-tested capacity and bounds."""

    role: str
    gpu_type: str
    gpus_per_instance: int
    tps_at_slo: float
    min_instances: int
    max_instances: int


@dataclass(frozen=True)
class Pairing:
    """The P/D ratio that keeps one prefill/decode hardware pairing balanced."""

    prefill_gpu_type: str
    prefill_gpus_per_instance: int
    decode_gpu_type: str
    decode_gpus_per_instance: int
    pd_ratio: float


@dataclass(frozen=True)
class Provenance:
    """Which run, trace and days the values came from, and how each was obtained.

    Attributes
    ----------
    curation_run : str or None
        The Dagster run that curated the policy; None when the spec was built from a store
        outside the pipeline (``heteroscale export``).
    trace : str
        The workload curation and evaluation ran on.
    curation_start, evaluation_start, evaluation_end : datetime
        Curation days are ``[curation_start, evaluation_start)``, evaluation days
        ``[evaluation_start, evaluation_end)``.
    curation_met_objective : bool
        False when no candidate met curation's per-day SLO budget and flap limit.
    sources : dict of str to str
        Spec field (dotted path) -> one of :data:`SOURCES`.
    """

    curation_run: str | None
    trace: str
    curation_start: datetime
    evaluation_start: datetime
    evaluation_end: datetime
    curation_met_objective: bool
    sources: dict[str, str]


@dataclass(frozen=True)
class PolicySpec:
    """HeteroScale's coordinated policy for one service, as validated (docs/policy-spec.md).

    Attributes
    ----------
    service : str
    policy : str
        The policy's name in the backtest (``heteroscale``).
    signal : str
        The scaling signal: the decode pool's decode tokens/s (``decode_tps``).
    decode_tps_per_instance : float
        m-hat: decode tokens/s one instance carries at the SLO, prefill and decode counted.
    pd_ratio : float
        Prefill instances per decode instance on the curated pairing (the pools').
    control_interval_s : float
        How often the policy decides.
    pools : tuple of Pool
        Prefill first, then decode.
    pairings : tuple of Pairing
        The ratio of every prefill/decode hardware pairing.
    controller : HeteroScaleConfig
        Utilisation target, hysteresis band, cool-downs, damping, latency tiers, scale-in
        guard, soft scale-in.
    slo : ServiceSLO
    validation : Verdict
        The publication gate on the evaluation days.
    provenance : Provenance
    """

    service: str
    policy: str
    signal: str
    decode_tps_per_instance: float
    pd_ratio: float
    control_interval_s: float
    pools: tuple[Pool, ...]
    pairings: tuple[Pairing, ...]
    controller: HeteroScaleConfig
    slo: ServiceSLO
    validation: Verdict
    provenance: Provenance

    def pool(self, role: str) -> Pool:
        """The pool of ``role``."""
        for pool in self.pools:
            if pool.role == role:
                return pool
        raise KeyError(role)

    @property
    def max_total(self) -> int:
        """The most instances both pools may hold together while keeping the ratio: where
        either role reaches its bound, as :class:`policies.heteroscale.HeteroScale` caps
        its total (one pool per role, so a role's bound in its own instances)."""
        r = self.pd_ratio
        most_prefill = self.pool(PREFILL).max_instances * (1 + r) / r
        most_decode = self.pool(DECODE).max_instances * (1 + r)
        return max(2, math.floor(min(most_prefill, most_decode)))


def build_spec(
    curated: Mapping,
    pairings: pl.DataFrame,
    summary: pl.DataFrame,
    *,
    service: str,
    curation_run: str | None = None,
) -> PolicySpec:
    """The spec of a ``curated_policy`` row, judged on its fleet backtest.

    Parameters
    ----------
    curated : Mapping
        One ``curated_policy`` row (:func:`policies.fleet.curated_policy_row`).
    pairings : pl.DataFrame
        ``pd_ratios`` of the same run.
    summary : pl.DataFrame
        ``fleet_summary`` of the same run (evaluation days), for the gate.
    service : str
    curation_run : str, optional
        The run that curated it, when known.
    """
    defaults = {f.name: f.default for f in fields(PoolCapacity)}
    pools = tuple(
        Pool(
            role=role,
            gpu_type=curated[f"{role}_gpu_type"],
            gpus_per_instance=int(curated[f"{role}_gpus_per_instance"]),
            tps_at_slo=float(curated[f"{role}_tps_at_slo"]),
            min_instances=defaults["min_instances"],
            max_instances=defaults["max_instances"],
        )
        for role in (PREFILL, DECODE)
    )
    controller = HeteroScaleConfig(**{f.name: curated[f.name] for f in fields(HeteroScaleConfig)})
    slo = ServiceSLO(
        ttft_p99_s=curated["ttft_p99_slo_s"],
        tbt_p99_s=curated["tbt_p99_slo_s"],
        attainment=curated["slo_attainment_target"],
    )
    return PolicySpec(
        service=service,
        policy=curated["policy"],
        signal=curated["signal"],
        decode_tps_per_instance=float(curated["decode_tps_per_instance"]),
        pd_ratio=float(curated["pd_ratio"]),
        control_interval_s=_CONTROL_INTERVAL_S,
        pools=pools,
        pairings=tuple(
            Pairing(**{f.name: row[f.name] for f in fields(Pairing)})
            for row in pairings.sort("prefill_gpu_type", "decode_gpu_type").iter_rows(named=True)
        ),
        controller=controller,
        slo=slo,
        validation=validate(summary, target=slo.attainment, policy=curated["policy"]),
        provenance=Provenance(
            curation_run=curation_run,
            trace=curated["source"],
            curation_start=curated["curation_start"],
            evaluation_start=curated["evaluation_start"],
            evaluation_end=curated["evaluation_end"],
            curation_met_objective=bool(curated["met_objective"]),
            sources=_sources(),
        ),
    )


def _sources() -> dict[str, str]:
    """How each value of a spec built by :func:`build_spec` was obtained (a pairing's
    hardware is its pools')."""
    swept = set(DEFAULT_GRID)
    return {
        "signal": "design",
        "decode_tps_per_instance": "pressure_test",
        "pd_ratio": "pressure_test",
        "control_interval_s": "scenario",
        "pools.gpu_type": "scenario",
        "pools.gpus_per_instance": "scenario",
        "pools.tps_at_slo": "pressure_test",
        "pools.min_instances": "default",
        "pools.max_instances": "default",
        "pairings.pd_ratio": "pressure_test",
        **{
            f"controller.{f.name}": "curation_sweep" if f.name in swept else "default"
            for f in fields(HeteroScaleConfig)
        },
        "slo": "scenario",
    }


def spec_from_store(
    store: TelemetryStore, service: str | None = None, *, curation_run: str | None = None
) -> PolicySpec:
    """The spec of the policy a store's main job curated and backtested.

    Raises
    ------
    ValueError
        When there is no store, no curated policy, or several services and none named,
        saying what to run or pass.
    """
    if not store.path.exists():
        raise ValueError(f"no store at {store.path}: run `heteroscale run` first")
    counts = store.row_counts()
    missing = [t for t in ("curated_policy", "pd_ratios", "fleet_summary") if not counts.get(t)]
    if missing:
        raise ValueError(
            f"no curated policy in {store.path} (missing {', '.join(missing)}): run "
            "`heteroscale run` first"
        )
    curated = store.read("curated_policy")
    service = one_service(curated["service"].to_list(), service)
    where = {"service": service}
    return build_spec(
        curated.filter(pl.col("service") == service).row(0, named=True),
        store.read("pd_ratios", where),
        store.read("fleet_summary", where),
        service=service,
        curation_run=curation_run,
    )


def published_spec(store: TelemetryStore, service: str | None = None) -> PolicySpec:
    """The spec the main job published into a store's ``policy_spec`` table, whatever its
    verdict (the spec carries it).

    Raises
    ------
    ValueError
        When the store holds no published spec, or several services and none named, saying
        what to run or pass.
    """
    if not store.row_counts().get("policy_spec"):
        raise ValueError(
            f"no published policy spec in {store.path}: run `heteroscale run` first, or pass "
            "the YAML that `heteroscale export --format policy` writes"
        )
    published = store.read("policy_spec")
    service = one_service(published["service"].to_list(), service, held="specs are published for")
    return load(published.filter(pl.col("service") == service)["spec_yaml"].item())


def policy_inputs(spec: PolicySpec) -> PolicyInputs:
    """What :class:`policies.heteroscale.HeteroScale` is built from, as the spec records it
    (with ``spec.controller``). The spec carries no history of offered load, so the inputs
    have none: policies that fit one (schedules, forecasts) cannot be built from a spec."""
    return PolicyInputs(
        pools=tuple(
            PoolCapacity(
                (p.role, p.gpu_type, p.gpus_per_instance),
                p.tps_at_slo,
                min_instances=p.min_instances,
                max_instances=p.max_instances,
            )
            for p in spec.pools
        ),
        slo=spec.slo,
        pd_ratio=spec.pd_ratio,
        decode_tps_per_instance=spec.decode_tps_per_instance,
        history=None,
        control_interval_s=spec.control_interval_s,
    )


def to_document(spec: PolicySpec) -> dict:
    """The spec as plain data (what :func:`dump` writes), led by its version and kind."""
    body = asdict(spec)
    provenance = body["provenance"]
    for key in ("curation_start", "evaluation_start", "evaluation_end"):
        provenance[key] = provenance[key].isoformat()
    # YAML's safe dumper writes lists, not the dataclasses' tuples.
    body["pools"], body["pairings"] = list(body["pools"]), list(body["pairings"])
    body["validation"]["reasons"] = list(body["validation"]["reasons"])
    return {"apiVersion": API_VERSION, "kind": KIND, **body}


def from_document(document: Mapping) -> PolicySpec:
    """The spec of a document, checked against the JSON Schema first.

    Raises
    ------
    ValueError
        Naming the first field that breaks the schema (or a controller setting that
        :class:`HeteroScaleConfig` refuses).
    """
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ValueError(f"policy spec does not match its schema at {where}: {error.message}")
    provenance = dict(document["provenance"])
    for key in ("curation_start", "evaluation_start", "evaluation_end"):
        provenance[key] = datetime.fromisoformat(provenance[key])
    validation = dict(document["validation"])
    validation["reasons"] = tuple(validation["reasons"])
    return PolicySpec(
        service=document["service"],
        policy=document["policy"],
        signal=document["signal"],
        decode_tps_per_instance=document["decode_tps_per_instance"],
        pd_ratio=document["pd_ratio"],
        control_interval_s=document["control_interval_s"],
        pools=tuple(Pool(**p) for p in document["pools"]),
        pairings=tuple(Pairing(**p) for p in document["pairings"]),
        controller=HeteroScaleConfig(**document["controller"]),
        slo=ServiceSLO(**document["slo"]),
        validation=Verdict(**validation),
        provenance=Provenance(**provenance),
    )


def dump(spec: PolicySpec) -> str:
    """The spec as YAML text, fields in their documented order."""
    return yaml.safe_dump(to_document(spec), sort_keys=False, allow_unicode=True)


def load(text: str) -> PolicySpec:
    """The spec of YAML text written by :func:`dump` (or by hand, if it meets the schema)."""
    return from_document(yaml.safe_load(text))


def schema() -> dict:
    """The JSON Schema of a spec document."""
    return json.loads(SCHEMA_PATH.read_text())


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())
