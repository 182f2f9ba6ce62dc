"""``heteroscale simulate``: replay a request trace through a simulated cluster into a store."""

import argparse
import json
import sys
import time
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    from simulator.workloads import TRACE_FORMATS

    simulate = commands.add_parser(
        "simulate",
        help="replay a request trace through a simulated P/D cluster, writing canonical telemetry",
        description=(
            "Replay a real request trace through the simulated cluster and write its canonical "
            "telemetry (instance_samples, service_load) and per-request outcomes to a DuckDB "
            "store (docs/telemetry-schema.md, docs/simulator.md)."
        ),
    )
    simulate.add_argument("--trace", type=Path, required=True, help="the request trace file")
    simulate.add_argument(
        "--format", choices=TRACE_FORMATS, default="azure", help="trace format (default azure)"
    )
    simulate.add_argument(
        "--cluster",
        type=Path,
        help="cluster YAML (docs/simulator.md, 'Your own cluster'); default: the embedded "
        "L20/H20 cluster",
    )
    simulate.add_argument("--out", type=Path, required=True, help="DuckDB file to write")
    simulate.add_argument("--service", default="chat", help="service name (default chat)")
    simulate.add_argument(
        "--interval-s", type=float, default=15.0, help="telemetry interval (default 15 s)"
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
        type=float,
        default=1.0,
        help="simulated seconds per wall second while serving (default 1)",
    )
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from simulator import TraceError, default_cluster, load_trace, simulate
    from simulator.cluster_file import ClusterFileError, load_cluster
    from simulator.persist import write_result
    from telemetry.store import TelemetryStore

    try:
        address = _host_port(args.serve) if args.serve else None
        if args.speed <= 0:
            raise ValueError(f"--speed must be > 0, got {args.speed}")
    except ValueError as exc:
        print(f"heteroscale simulate: {exc}", file=sys.stderr)
        return 2
    try:
        trace = load_trace(args.trace, args.format)
        cluster = load_cluster(args.cluster) if args.cluster else default_cluster()
    except (TraceError, ClusterFileError) as exc:
        print(f"heteroscale simulate: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        result = simulate(
            trace.requests,
            cluster,
            service=args.service,
            start=trace.start,
            interval_s=args.interval_s,
        )
    except ValueError as exc:  # e.g. a prompt no instance of this cluster can hold
        print(f"heteroscale simulate: {args.trace}: {exc}", file=sys.stderr)
        return 2
    wall_s = time.perf_counter() - started
    summary = {
        "requests": result.requests.height,
        "cluster": cluster.describe(),
        "wall_s": round(wall_s, 3),
        "db": str(args.out),
        "rows": write_result(TelemetryStore(args.out), result, service=args.service),
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
