"""``heteroscale run``: materialise the main job on a simulated scenario, or the policy job on
the telemetry a store holds."""

import argparse
import sys
import time
from pathlib import Path

from heteroscale.arguments import add_cluster, add_trace, at_least_one
from telemetry.store import DB_ENV_VAR, TelemetryStore, default_db_path


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="study, curate, backtest, gate, place and report: on the embedded default, "
        "a trace, or your ingested telemetry (--db)",
        description=(
            "Simulate a real ServeGen day (or --trace) on the embedded P/D cluster (or "
            "--cluster) and study its candidate autoscaling signals; curate the coordinated "
            "policy and backtest it with every baseline on 14 real days; place its decisions; "
            "write the DuckDB store and an HTML report. With --db, do all of it on the "
            "telemetry a store holds (heteroscale ingest), the backtest driven by the offered "
            "load it recorded, simulating nothing (docs/operations.md)."
        ),
    )
    run.add_argument(
        "--out",
        type=Path,
        help=f"output directory (default: the store at ${DB_ENV_VAR}, else ./out)",
    )
    run.add_argument(
        "--db",
        type=Path,
        help="a store of your telemetry, with its offered load (service_load): run on it; "
        "the report goes beside it",
    )
    run.add_argument(
        "--service",
        help="the service (default: with --db, every service the store holds, each in a run "
        "of its own; else chat)",
    )
    add_trace(run, "simulate this request trace, not the ServeGen day")
    add_cluster(run, " simulated and backtested")
    run.add_argument(
        "--topology",
        type=Path,
        help="topology YAML the decisions are placed on (default: the shipped fleet)",
    )
    run.add_argument(
        "--workers",
        type=at_least_one,
        default=1,
        help="processes to spread the steps over, the curation sweep's and the backtest's "
        "policies in parallel; with --db on a store of several services, services run at once "
        "(default 1: one after another, every step in this process, which pays the imports "
        "once)",
    )
    run.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster console log level (default INFO: one line per step)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # dagster is slow to import: only here
    from pipelines.resources import ScenarioResource, StoreResource
    from pipelines.run import DB_NAME, run_main_job, run_policy_job, run_policy_jobs

    scenarios = _scenarios(args)  # bad input raises: one line from heteroscale.cli.main
    if len(scenarios) == 1:  # one run: its backtest's policies over the workers too
        scenarios = [
            ScenarioResource(**(scenarios[0].model_dump() | {"backtest_workers": args.workers}))
        ]
    started = time.perf_counter()
    if args.db:
        services = ", ".join(scenario.service for scenario in scenarios)
        print(
            f"heteroscale: running the policy job on {args.db} (service {services}), "
            "its backtest on the offered load recorded there",
            file=sys.stderr,
        )
        if len(scenarios) == 1:
            runs = [run_policy_job(args.db, scenarios[0], **_options(args))]
        else:
            runs = run_policy_jobs(args.db, scenarios, **_options(args))
    else:
        db_path = args.out / DB_NAME if args.out else default_db_path()
        print(f"heteroscale: running the main job, writing to {db_path}", file=sys.stderr)
        runs = [run_main_job(db_path, scenarios[0], **_options(args))]
    elapsed_s = time.perf_counter() - started
    if len(runs) > 1:
        print(f"{len(runs)} runs, one per service, in {elapsed_s:.1f} s")
    for scenario, outputs in zip(scenarios, runs, strict=True):
        verdict = "succeeded" if outputs.success else "FAILED"
        if len(runs) > 1:
            print(f"{scenario.service}: {verdict} (run {outputs.run_id})")
        else:
            print(f"{verdict} in {elapsed_s:.1f} s (run {outputs.run_id})")
        for failure in outputs.failures:
            print(f"  {failure}")
    print(f"DuckDB store: {runs[0].db_path}")
    for table, rows in TelemetryStore(runs[0].db_path).row_counts().items():
        print(f"  {table:<24} {rows:>9,} rows")
    for scenario, outputs in zip(scenarios, runs, strict=True):
        named = f" ({scenario.service})" if len(runs) > 1 else ""
        print(f"HTML report{named}:  {outputs.report_path or 'none written by this run'}")
    if any(outputs.report_path for outputs in runs):
        index = StoreResource(db_path=str(runs[0].db_path)).services_index_path()
        if index is not None:
            print(f"HTML index of the services:  {index}")
    return 0 if all(outputs.success for outputs in runs) else 1


def _options(args: argparse.Namespace) -> dict:
    return {"log_level": args.log_level, "workers": args.workers}


def _scenarios(args: argparse.Namespace) -> list:
    """The scenarios the options name, checked before Dagster starts: every file readable, the
    topology holding the cluster's GPU types, a store with telemetry and offered load to split
    for each service run (``--service``, else every service whose offered load it recorded)."""
    from pipelines.resources import ScenarioResource
    from policies.fleet import store_scenario
    from scheduler import load_topology
    from telemetry.schema import INSTANCE_SAMPLES, SERVICE_LOAD

    if args.db and (args.out or args.trace):
        raise ValueError("--db runs on a store's telemetry; --out and --trace simulate: not both")
    fields = {
        "cluster_path": str(args.cluster or ""),
        **({"topology_path": str(args.topology)} if args.topology else {}),
    }
    scenario = ScenarioResource(**fields)
    cluster = scenario.cluster()
    topology = load_topology(scenario.topology_path)
    pools = (*cluster.prefill_pools, *cluster.decode_pools)
    missing = {p.gpu_type for p in pools} - {n.gpu_type for n in topology.nodes}
    if missing:
        raise ValueError(
            f"{scenario.topology_path} has no {', '.join(sorted(missing))} nodes for the "
            "cluster's pools: give --topology one that does"
        )
    if not args.db:
        scenario = ScenarioResource(
            service=args.service or "chat",
            trace_path=str(args.trace or ""),
            trace_format=args.format,
            **fields,
        )
        scenario.trace()
        return [scenario]
    if not args.db.is_file():
        raise ValueError(f"no store at {args.db}")
    store = TelemetryStore(args.db)
    offered = store.distinct(SERVICE_LOAD, ["service"])
    services = [args.service] if args.service or offered is None else offered["service"]
    samples = store.distinct(INSTANCE_SAMPLES, ["service"])
    scenarios = []
    for named in sorted(services):
        service = store_scenario(store, service=named, cluster=cluster).service
        if samples is None or service not in samples["service"].to_list():
            raise ValueError(f"{args.db} holds no instance_samples of {service}: nothing to study")
        scenarios.append(ScenarioResource(service=service, fleet_from_store=True, **fields))
    return scenarios
