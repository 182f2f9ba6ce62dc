"""The policy spec: built from the stored curated policy, dumped and loaded back unchanged,
checked against its JSON Schema, and saying where every value came from."""

from dataclasses import fields, replace
from datetime import UTC, datetime
from types import SimpleNamespace

import jsonschema
import numpy as np
import polars as pl
import pytest
import yaml

from policies.curation import DEFAULT_GRID, PressureTest
from policies.fleet import FleetScenario, curated_policy_row
from policies.heteroscale import HeteroScale, HeteroScaleConfig
from policies.inputs import PolicyInputs, PoolCapacity
from policies.slo import ServiceSLO
from policies.spec import (
    SOURCES,
    PolicySpec,
    Pool,
    build_spec,
    dump,
    load,
    schema,
    spec_from_store,
    to_document,
)
from simulator.cluster import default_cluster
from simulator.fluid_load import FluidLoad
from telemetry.store import TableWrite, TelemetryStore
from tests.policies.windows import DECODE_KEY, MIX, PREFILL_KEY

START = datetime(2024, 1, 1, tzinfo=UTC)
#: The configuration the helpers curate: HeteroScale's defaults with a faster scale-out step
#: (so that damping shows) and the swept fields off their defaults.
CONFIG = HeteroScaleConfig(
    utilisation_target=0.8, scale_in_cooldown_s=300.0, scale_in_step=0.1, scale_out_step=0.5
)


def policy_inputs(*, pd_ratio=4.0, m=200.0, prefill_max=512, decode_max=512) -> PolicyInputs:
    """Prefill and decode carry 1,000 tok/s per instance at the SLO; 2 days of history."""
    requests = np.full(2 * 5760, 10.0)
    history = FluidLoad(START, 15.0, requests, requests * 1000, requests * 200, MIX)
    return PolicyInputs(
        pools=(
            PoolCapacity(PREFILL_KEY, 1000.0, max_instances=prefill_max),
            PoolCapacity(DECODE_KEY, 1000.0, max_instances=decode_max),
        ),
        slo=ServiceSLO(),
        pd_ratio=pd_ratio,
        decode_tps_per_instance=m,
        history=history,
    )


def curated_tables(
    inputs: PolicyInputs | None = None,
    config: HeteroScaleConfig = CONFIG,
    *,
    ttft=0.9938,
    tbt=0.9988,
    gpu_hours=50_737.0,
    static_peak_gpu_hours=104_158.0,
    service="chat",
) -> dict[str, pl.DataFrame]:
    """The three tables the main job stores for a service, made by the functions that make
    them (``curated_policy_row``, ``pairing_ratios``) on a two-day scenario, with the fleet
    summary's scores given."""
    inputs = inputs or policy_inputs()
    scenario = FleetScenario(
        service=service,
        load=inputs.history,
        curation_intervals=5760,
        cluster=default_cluster(),
        source="two hand-made days",
        requests=lambda first_s, span_s: None,
        slo=inputs.slo,
    )
    backtest = SimpleNamespace(
        scenario=scenario,
        curation=SimpleNamespace(inputs=inputs, config=config, met_objective=True),
    )
    pressure = PressureTest(inputs.pools, inputs.pd_ratio, inputs.decode_tps_per_instance, None)
    summary = pl.DataFrame(
        {
            "policy": ["heteroscale", "static_peak", "oracle"],
            "gpu_hours": [gpu_hours, static_peak_gpu_hours, 30_000.0],
            "ttft_attainment": [ttft, 1.0, 0.998],
            "tbt_attainment": [tbt, 1.0, 1.0],
            "slo_attainment": [min(ttft, tbt), 1.0, 0.998],
        }
    )
    tables = {
        "curated_policy": curated_policy_row(backtest.scenario, backtest.curation),
        "pd_ratios": pressure.pairing_ratios(),
        "fleet_summary": summary,
    }
    return {name: t.with_columns(service=pl.lit(service)) for name, t in tables.items()}


def write_store(path, tables: dict[str, pl.DataFrame]) -> TelemetryStore:
    store = TelemetryStore(path)
    store.write_many([TableWrite(name, t, ("service",)) for name, t in tables.items()])
    return store


def make_spec(**kwargs) -> PolicySpec:
    tables = curated_tables(**kwargs)
    return build_spec(
        tables["curated_policy"].row(0, named=True),
        tables["pd_ratios"],
        tables["fleet_summary"],
        service="chat",
        curation_run="run-1",
    )


def test_the_spec_carries_the_curated_values():
    spec = make_spec()
    assert spec.signal == "decode_tps"
    assert (spec.pd_ratio, spec.decode_tps_per_instance) == (4.0, 200.0)
    assert spec.controller == CONFIG
    assert spec.pools == (
        Pool("prefill", "L20", 4, 1000.0, 1, 512),
        Pool("decode", "H20", 4, 1000.0, 1, 512),
    )
    assert [(p.prefill_gpu_type, p.decode_gpu_type, p.pd_ratio) for p in spec.pairings] == [
        ("L20", "H20", 4.0)
    ]
    assert spec.slo == ServiceSLO()
    assert spec.validation.passed
    provenance = spec.provenance
    assert provenance.curation_run == "run-1"
    assert provenance.trace == "two hand-made days"
    assert (provenance.curation_start, provenance.evaluation_start) == (
        START,
        datetime(2024, 1, 2, tzinfo=UTC),
    )


def test_dump_then_load_gives_the_same_spec():
    spec = make_spec()
    assert load(dump(spec)) == spec
    failed = make_spec(ttft=0.9)
    assert load(dump(failed)) == failed and not load(dump(failed)).validation.passed


def test_the_dumped_document_meets_the_shipped_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    document = yaml.safe_load(dump(make_spec()))
    jsonschema.Draft202012Validator(schema()).validate(document)
    assert document["apiVersion"] == "heteroscale/v1" and document["kind"] == "PolicySpec"


def test_the_schema_names_every_field_of_the_dataclasses():
    root = schema()
    defs = root["$defs"]
    assert set(root["properties"]) == {"apiVersion", "kind"} | {f.name for f in fields(PolicySpec)}
    assert set(defs["controller"]["properties"]) == {f.name for f in fields(HeteroScaleConfig)}
    assert set(root["properties"]["slo"]["properties"]) == {f.name for f in fields(ServiceSLO)}
    assert set(defs["pool"]["properties"]) == {f.name for f in fields(Pool)}
    sources = defs["provenance"]["properties"]["sources"]["additionalProperties"]
    assert tuple(sources["enum"]) == SOURCES


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("controller", "utilisation_target"), 1.5, "controller/utilisation_target"),
        (("pools", 0, "role"), "decode", "pools/0/role"),
        (("provenance", "curation_start"), "2024-01-01 00:00", "provenance/curation_start"),
        (("slo", "ttft_p99_s"), -1.0, "slo/ttft_p99_s"),
        (("pd_ratio",), "9", "pd_ratio"),
    ],
)
def test_load_refuses_a_document_that_breaks_the_schema_naming_the_field(path, value, where):
    document = to_document(make_spec())
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=f"at {where}:"):
        load(yaml.safe_dump(document))


def test_load_refuses_an_unknown_field_and_another_version():
    document = to_document(make_spec())
    with pytest.raises(ValueError, match="at controller"):
        load(yaml.safe_dump({**document, "controller": {**document["controller"], "typo": 1}}))
    with pytest.raises(ValueError, match="at apiVersion"):
        load(yaml.safe_dump({**document, "apiVersion": "heteroscale/v2"}))


def test_every_value_says_where_it_came_from():
    spec = make_spec()
    sources = spec.provenance.sources
    assert set(sources.values()) <= set(SOURCES)
    assert {k for k, v in sources.items() if v == "curation_sweep"} == {
        f"controller.{name}" for name in DEFAULT_GRID
    }
    assert {f"controller.{f.name}" for f in fields(HeteroScaleConfig)} <= set(sources)
    for name in ("decode_tps_per_instance", "pd_ratio", "pools.tps_at_slo", "pairings.pd_ratio"):
        assert sources[name] == "pressure_test"
    # Every value but the identity, the verdict and the provenance itself has a source.
    identity = {"service", "policy", "validation", "provenance"}
    for field in fields(PolicySpec):
        if field.name not in identity:
            assert any(k == field.name or k.startswith(f"{field.name}.") for k in sources)
    for field in fields(Pool):
        if field.name != "role":
            assert f"pools.{field.name}" in sources


@pytest.mark.parametrize(("prefill_max", "decode_max"), [(512, 512), (10, 512), (40, 3)])
def test_the_ratio_keeping_bound_is_the_controllers_own(prefill_max, decode_max):
    spec = with_bounds(make_spec(), prefill_max=prefill_max, decode_max=decode_max)
    inputs = policy_inputs(prefill_max=prefill_max, decode_max=decode_max)
    assert spec.max_total == HeteroScale(inputs, CONFIG)._max_total


def with_bounds(spec: PolicySpec, *, prefill_max: int, decode_max: int) -> PolicySpec:
    """``spec`` with other upper bounds (the store records none: the spec takes the
    defaults)."""
    prefill, decode = spec.pools
    return replace(
        spec,
        pools=(
            replace(prefill, max_instances=prefill_max),
            replace(decode, max_instances=decode_max),
        ),
    )


def test_a_store_gives_the_same_spec_as_its_tables(tmp_path):
    tables = curated_tables()
    store = write_store(tmp_path / "h.duckdb", tables)
    spec = spec_from_store(store)
    assert replace(spec, provenance=replace(spec.provenance, curation_run="run-1")) == make_spec()
    assert spec.provenance.curation_run is None


def test_a_store_without_a_curated_policy_says_what_to_run(tmp_path):
    with pytest.raises(ValueError, match="no store at .*heteroscale run"):
        spec_from_store(TelemetryStore(tmp_path / "missing.duckdb"))
    store = TelemetryStore(tmp_path / "h.duckdb")
    store.write("other", pl.DataFrame({"service": ["chat"]}), ("service",))
    with pytest.raises(ValueError, match="no curated policy .*curated_policy.*heteroscale run"):
        spec_from_store(store)


def test_a_store_of_several_services_needs_one_named(tmp_path):
    tables = curated_tables()
    store = write_store(tmp_path / "h.duckdb", tables)
    store.write_many(
        [TableWrite(n, t, ("service",)) for n, t in curated_tables(service="code").items()]
    )
    with pytest.raises(ValueError, match=r"--service.*\['chat', 'code'\]"):
        spec_from_store(store)
    assert spec_from_store(store, "code").service == "code"
