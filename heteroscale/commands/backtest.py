"""``heteroscale backtest``: curate on some days, backtest every policy on the others."""

import argparse
import json
from dataclasses import replace

from heteroscale.arguments import add_trace, at_least_one, positive

#: Scores the readable table shows, in order.
_COLUMNS = (
    ("gpu_hours", "GPU-h", "{:,.0f}"),
    ("gpu_hours_vs_oracle", "x oracle", "{:.2f}"),
    ("avg_gpu_util", "util", "{:.1%}"),
    ("ttft_attainment", "TTFT ok", "{:.2%}"),
    ("tbt_attainment", "TBT ok", "{:.2%}"),
    ("scaling_actions", "actions", "{:,}"),
    ("flaps", "flaps", "{:,}"),
)


def register(commands: argparse._SubParsersAction) -> None:
    backtest = commands.add_parser(
        "backtest",
        help="curate the coordinated policy and backtest it against every baseline and the oracle",
        description=(
            "Algorithm 1 on the curation part (pressure tests, P/D ratio, per-instance target, "
            "controller sweep), then every policy closed loop in fast mode on the evaluation "
            "part, scored against the SLO (docs/policy.md). Default workload: ServeGen "
            "m-large's 14 real days scaled to a fleet, days 1-7 curation, 8-14 evaluation."
        ),
    )
    add_trace(backtest, "a request trace of your own")
    backtest.add_argument(
        "--curation-share",
        type=float,
        default=0.5,
        help="share of a trace curated on; the rest is evaluated (default 0.5)",
    )
    backtest.add_argument(
        "--days",
        type=int,
        default=14,
        help="days of the default workload; the first half is curation (default 14)",
    )
    backtest.add_argument(
        "--servegen",
        choices=("m-large", "m-mid", "m-small"),
        help="which of ServeGen's language services the default workload replays, scaled to "
        "the same mean rate (default m-large)",
    )
    backtest.add_argument(
        "--ttft-slo-s", type=positive, default=6.0, help="TTFT p99 objective, s (default 6)"
    )
    backtest.add_argument(
        "--tbt-slo-s", type=positive, default=0.1, help="TBT p99 objective, s (default 0.1)"
    )
    backtest.add_argument(
        "--policies", help="comma-separated policy names (default: every policy and the oracle)"
    )
    backtest.add_argument(
        "--ablations", action="store_true", help="also run HeteroScale without each mechanism"
    )
    backtest.add_argument(
        "--workers",
        type=at_least_one,
        default=1,
        help="processes the curation sweep's candidates and the policies spread over; the "
        "results are the same for any number (default 1)",
    )
    backtest.add_argument("--json", action="store_true", help="print one JSON object")
    backtest.set_defaults(handler=_backtest)


def _backtest(args: argparse.Namespace) -> int:
    from heteroscale.progress import bar
    from policies.fleet import run_fleet_backtest, servegen_scenario, trace_scenario
    from policies.registry import select
    from policies.slo import ServiceSLO
    from simulator import load_trace

    builders = select(args.policies.split(",") if args.policies else None, ablations=args.ablations)
    if args.trace and args.servegen:
        raise ValueError("--trace replays your trace; --servegen a ServeGen service: not both")
    if args.trace:
        scenario = trace_scenario(
            load_trace(args.trace, args.format), curation_share=args.curation_share
        )
    elif args.days < 2:
        raise ValueError(
            f"--days must be at least 2 (half curated, half evaluated), got {args.days}"
        )
    else:
        scenario = servegen_scenario(
            days=args.days,
            curation_days=args.days // 2,
            servegen_service=args.servegen or "m-large",
        )
    slo = ServiceSLO(ttft_p99_s=args.ttft_slo_s, tbt_p99_s=args.tbt_slo_s)
    result = run_fleet_backtest(
        replace(scenario, slo=slo), builders, progress=bar, workers=args.workers
    )
    report = _report(result)
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    return 0


def _report(result) -> dict:
    """The JSON document: where the split fell, what curation chose, every policy's scores."""
    scenario, curation = result.scenario, result.curation
    evaluation = scenario.evaluation
    return {
        "scenario": {
            "service": scenario.service,
            "source": scenario.source,
            "curation_start": scenario.load.start.isoformat(),
            "evaluation_start": evaluation.start.isoformat(),
            "evaluation_end": evaluation.end.isoformat(),
            "slo": {
                "ttft_p99_s": scenario.slo.ttft_p99_s,
                "tbt_p99_s": scenario.slo.tbt_p99_s,
                "attainment": scenario.slo.attainment,
            },
        },
        "curation": {
            "pd_ratio": curation.inputs.pd_ratio,
            "decode_tps_per_instance": curation.inputs.decode_tps_per_instance,
            "tps_at_slo": {"/".join(map(str, p.key)): p.tps_at_slo for p in curation.inputs.pools},
            "config": curation.config.__dict__,
            "met_objective": curation.met_objective,
        },
        "policies": result.summary.to_dicts(),
        "skipped": result.skipped,
    }


def _print_table(report: dict) -> None:
    scenario, curation = report["scenario"], report["curation"]
    evaluated = f"{scenario['evaluation_start']} .. {scenario['evaluation_end']}"
    print(f"{scenario['source']}; evaluated {evaluated}")
    print(
        f"curated: P:D {curation['pd_ratio']:.2f}, {curation['decode_tps_per_instance']:,.1f} "
        f"decode tok/s per instance"
        + ("" if curation["met_objective"] else " (no candidate met the SLO on curation days)")
    )
    header = f"{'policy':<42}" + "".join(f"{title:>10}" for _, title, _ in _COLUMNS)
    print(header)
    for row in report["policies"]:
        cells = "".join(
            f"{fmt.format(row[key]) if row.get(key) is not None else '-':>10}"
            for key, _, fmt in _COLUMNS
        )
        print(f"{row['policy']:<42}{cells}")
    for policy, reason in report["skipped"].items():
        print(f"{policy:<42}  not run: {reason}")
