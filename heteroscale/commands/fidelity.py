"""``heteroscale fidelity``: replay measured vLLM runs through the colocated simulator."""

import argparse
import json
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    fidelity = commands.add_parser(
        "fidelity",
        help="compare the simulator with measured vLLM benchmark runs",
        description=(
            "Replay each vLLM benchmark folder (meta.json, requests.jsonl, timeseries.csv) with "
            "the same requests, arrival times, GPU, model and parallelism, and report measured "
            "vs simulated TTFT p50/p99, TPOT p50, peak decode tokens/s and max waiting."
        ),
    )
    fidelity.add_argument(
        "--bench-dir",
        type=Path,
        help="a run folder, or a folder of run folders (default: the bundled vLLM runs)",
    )
    fidelity.add_argument("--json", action="store_true", help="print the report as JSON")
    fidelity.set_defaults(handler=_fidelity)


def _fidelity(args: argparse.Namespace) -> int:
    from simulator.fidelity import METRICS, fidelity_report
    from simulator.paths import VLLM_BENCH_DIR

    report = fidelity_report(args.bench_dir or VLLM_BENCH_DIR)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for run in report["runs"]:
        print(run["name"])
        for metric in METRICS:
            m = run[metric]
            print(
                f"  {metric:<16} measured {m['measured']:>10.4g}  simulated {m['simulated']:>10.4g}"
                f"  rel_err {m['rel_err']:+.1%}"
            )
    return 0
