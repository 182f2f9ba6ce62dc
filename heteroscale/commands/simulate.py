"""``heteroscale simulate``: replay a request trace through a simulated cluster into a store."""

import argparse
import json
import time
from pathlib import Path

from heteroscale.arguments import add_cluster, add_trace, non_negative, positive


def register(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="replay a request trace through a simulated P/D cluster, writing canonical telemetry",
        description=(
            "Replay a real request trace through the simulated cluster and write its canonical "
            "telemetry (instance_samples, service_load) and per-request outcomes to a DuckDB "
            "store (docs/telemetry-schema.md, docs/simulator.md)."
        ),
    )
    add_trace(simulate, "the request trace file", required=True)
    add_cluster(simulate)
    simulate.add_argument("--out", type=Path, required=True, help="DuckDB file to write")
    simulate.add_argument(
        "--service", help="service name (default: the policy's service, else chat)"
    )
    simulate.add_argument(
        "--policy",
        type=Path,
        help=(
            "a policy spec (heteroscale export --format policy): it scales the cluster as the "
            "trace replays, every action placed on --topology; its decisions are stored as "
            "scaling_decisions"
        ),
    )
    simulate.add_argument(
        "--topology",
        type=Path,
        help="where --policy's actions are placed (default: the shipped fleet topology)",
    )
    simulate.add_argument(
        "--startup-s",
        type=non_negative,
        help="seconds a new instance takes to serve, under --policy (default: the simulator's "
        "per-GPU delays)",
    )
    simulate.add_argument(
        "--interval-s", type=positive, default=15.0, help="telemetry interval (default 15 s)"
    )
    simulate.add_argument("--json", action="store_true", help="print a JSON summary")
    simulate.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help=(
            "then serve the run's telemetry on http://HOST:PORT/metrics with real vLLM/DCGM "
            "names, replayed as wall time passes (port 0: any free one; Ctrl-C stops)"
        ),
    )
    simulate.add_argument(
        "--speed",
        type=positive,
        default=1.0,
        help="simulated seconds per wall second while serving (default 1)",
    )
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    """Bad input raises; :func:`heteroscale.cli.main` turns it into one line."""
    from scheduler import load_topology
    from simulator import default_cluster, load_trace
    from simulator.cluster_file import load_cluster
    from simulator.persist import write_result
    from telemetry.store import TelemetryStore

    address = _host_port(args.serve) if args.serve else None
    if args.out.is_dir():
        raise ValueError(f"--out {args.out} is a folder: name the DuckDB file to write")
    if (args.topology or args.startup_s is not None) and not args.policy:
        raise ValueError("--topology and --startup-s place and start --policy's instances")
    trace = load_trace(args.trace, args.format)
    cluster = load_cluster(args.cluster) if args.cluster else default_cluster()
    spec = _policy(args.policy) if args.policy else None
    topology = load_topology(args.topology) if args.topology else None
    if spec:
        from policies.rollout import check_pools  # only a policy's run needs policies/

        check_pools(spec, cluster)
    service = args.service or (spec.service if spec else "chat")
    if spec and service != spec.service:
        raise ValueError(f"--service {service} but the policy is {spec.service}'s")
    started = time.perf_counter()
    try:
        result, decisions = _run(args, trace, cluster, spec, service, topology)
    except ValueError as exc:  # e.g. a prompt no instance of this cluster can hold
        raise ValueError(f"{args.trace}: {exc}") from exc
    wall_s = time.perf_counter() - started
    store = TelemetryStore(args.out)
    rows = write_result(store, result, service=service)
    if decisions is not None:
        rows["scaling_decisions"] = store.write("scaling_decisions", decisions, ("service",))
    summary = {
        "requests": result.requests.height,
        "cluster": cluster.describe(),
        "wall_s": round(wall_s, 3),
        "db": str(args.out),
        "rows": rows,
        **outcome(result),
    }
    server = None
    if address is not None:
        from simulator.prometheus_endpoint import FinishedRun, MetricsServer

        host, port = address
        server = MetricsServer(
            FinishedRun(result, trace.start),
            host=host,
            port=port,
            speed=args.speed,
            interval_s=args.interval_s,
        )
        summary["metrics_url"] = server.url
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(
            f"simulated {summary['requests']:,} requests on {summary['cluster']} in {wall_s:.1f} s"
        )
        for name, quantiles in summary["latency_s"].items():
            shown = ", ".join(f"{q} {value * 1e3:,.1f} ms" for q, value in quantiles.items())
            print(f"  {name.upper():<4} {shown}")
        for role, figures in summary["roles"].items():
            print(
                f"  {role:<9} {figures['instances']} instances, GPU util "
                f"{figures['gpu_util_mean']:.1%} mean, {figures['gpu_util_peak']:.1%} peak "
                f"interval, SM active {figures['sm_active_mean']:.1%} mean"
            )
        for table, rows in summary["rows"].items():
            print(f"  {table:<20} {rows:>9,} rows -> {args.out}")
        if server is not None:
            print(f"serving {server.url} at {args.speed:g}x (Ctrl-C stops)", flush=True)
    if server is not None:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return 0


def _policy(path: Path):
    """The policy spec at ``path``, checked against its schema."""
    import yaml

    from policies.spec import load

    try:
        return load(path.read_text())
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _run(args, trace, cluster, spec, service, topology):
    """The simulation, fixed-size or scaled by ``spec``; and the policy's decisions (None
    without one)."""
    from simulator import simulate

    if spec is None:
        result = simulate(
            trace.requests, cluster, service=service, start=trace.start, interval_s=args.interval_s
        )
        return result, None
    from policies.rollout import roll_out
    from simulator.cluster import LifecycleSpec

    rollout = roll_out(
        spec,
        trace,
        cluster,
        topology=topology,
        lifecycle=None
        if args.startup_s is None
        else LifecycleSpec(default_startup_s=args.startup_s),
        interval_s=args.interval_s,
    )
    return rollout.result, rollout.decisions


#: Quantiles of the per-request latencies the summary reports.
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def outcome(result) -> dict:
    """What the run served: TTFT and TPOT quantiles over its requests (TPOT over those with
    more than one output token, linear interpolation), and per role its instances and GPU
    utilisation and SM activity over ready instance-intervals (mean, and the busiest
    interval's mean over the role)."""
    import numpy as np
    import polars as pl

    from simulator.fidelity import tpot_per_request

    requests = result.requests
    samples = {
        "ttft": requests["ttft_s"].drop_nulls().to_numpy(),
        "tpot": tpot_per_request(
            requests["first_token_s"], requests["finish_s"], requests["output_tokens"]
        ),
    }
    latency = {
        name: {q: round(float(np.quantile(values, p)), 6) for q, p in QUANTILES.items()}
        for name, values in samples.items()
        if len(values)
    }
    ready = result.instance_samples.filter(pl.col("ready"))
    per_interval = ready.group_by("role", "ts").agg(pl.col("gpu_util_ratio").mean())
    roles = (
        ready.group_by("role")
        .agg(
            pl.col("instance_id").n_unique().alias("instances"),
            pl.col("gpu_util_ratio").mean().alias("gpu_util_mean"),
            pl.col("sm_active_ratio").mean().alias("sm_active_mean"),
        )
        .join(
            per_interval.group_by("role").agg(
                pl.col("gpu_util_ratio").max().alias("gpu_util_peak")
            ),
            on="role",
        )
        .sort("role")
    )
    return {
        "latency_s": latency,
        "roles": {
            row.pop("role"): {k: v if k == "instances" else round(v, 4) for k, v in row.items()}
            for row in roles.iter_rows(named=True)
        },
    }


def _host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 in brackets) as a host and a port number."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--serve wants HOST:PORT (e.g. 127.0.0.1:9400), got {text!r}")
    return host.strip("[]"), int(port)
