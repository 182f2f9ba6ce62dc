"""Fit the roofline efficiencies on measured latencies and measure how well they predict.

Source: Splitwise's measured prefill and decode latencies of Llama2-70B on DGX A100 and DGX H100
at TP 2/4/8 (Patel et al., ISCA 2024; ``data/perf/splitwise_perf_model.csv``, MIT). These are the
only public measurements in reach, so one efficiency set fitted here serves every GPU; for GPUs
outside :data:`SPLITWISE_GPUS` (H20, L20, L40S, RTX 4090, RTX PRO 6000) the model's latencies are
*derived*: spec sheet times these efficiencies, with no measurement behind them.

Method. Configurations (GPU, TP, prompt size, batch size) are split once, with a fixed seed, into
a training part and a held-out part (:data:`HELD_OUT_FRACTION`). On the training part, ``mfu`` and
``mbu`` are searched on a 0.01 grid; for each pair the all-reduce and overhead terms, which enter
linearly, are solved by non-negative least squares on relative error. The held-out part is never
seen by the fit; its relative error is what ``docs/simulator.md`` reports.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simulator.hardware import GPUS, MODELS
from simulator.paths import SPLITWISE_PERF_CSV
from simulator.perf_model import Efficiency, PerfModel, Work

#: Splitwise hardware names of the GPUs it measured; the power-capped H100 is left out because
#: no spec sheet describes its clocks.
SPLITWISE_GPUS = {"a100-80gb": "A100-80GB", "h100-80gb": "H100-SXM"}
SPLITWISE_MODEL = "llama2-70b"
FITTED_MODEL = "Llama-2-70B"

HELD_OUT_FRACTION = 0.3
SPLIT_SEED = 0

_MFU_GRID = np.round(np.arange(0.05, 1.0001, 0.01), 2)
_MBU_GRID = np.round(np.arange(0.20, 1.0001, 0.01), 2)

_CONFIG_COLUMNS = ["gpu", "tp", "prompt_tokens", "batch_size"]

#: Efficiencies of 1 and no overhead: the model then returns the ideal roofline terms.
_UNIT_EFFICIENCY = Efficiency(mfu=1.0, mbu=1.0, link_util=1.0, step_overhead_s=0.0)


@dataclass(frozen=True)
class CalibrationResult:
    """Fitted efficiencies and every measurement with its prediction.

    Attributes
    ----------
    efficiency : Efficiency
        Fitted on the training part only.
    points : pl.DataFrame
        One row per measured point: ``phase``, configuration, ``held_out``, ``measured_s``,
        ``predicted_s`` and ``rel_error`` (absolute relative error).
    """

    efficiency: Efficiency
    points: pl.DataFrame

    def error_summary(self) -> pl.DataFrame:
        """Mean, p90 and max absolute relative error per phase, training vs held-out."""
        return (
            self.points.group_by("phase", "held_out")
            .agg(
                n=pl.len(),
                mean_rel_error=pl.col("rel_error").mean(),
                p90_rel_error=pl.col("rel_error").quantile(0.9, interpolation="linear"),
                max_rel_error=pl.col("rel_error").max(),
            )
            .sort("phase", "held_out")
        )


def load_splitwise_points(path: Path = SPLITWISE_PERF_CSV) -> pl.DataFrame:
    """Median latency per measured point of Llama2-70B on A100 and H100, with the held-out flag.

    Prefill points are keyed by (GPU, TP, prompt size, batch size); decode points also by the
    number of generated tokens, whose average context (``prompt + generated / 2``) sets the KV
    read per step. The two TP-2 batch-64 configurations are dropped: their prefill is reported
    8x faster than at batch 32 on the same hardware, which no batching effect explains.

    Returns
    -------
    pl.DataFrame
        Columns ``phase`` ("prefill" | "decode"), ``gpu``, ``tp``, ``prompt_tokens``,
        ``batch_size``, ``decode_tokens``, ``measured_s``, ``held_out``.
    """
    raw = pl.read_csv(path).filter(
        pl.col("model") == SPLITWISE_MODEL,
        pl.col("hardware").is_in(list(SPLITWISE_GPUS)),
        ~((pl.col("tensor_parallel") == 2) & (pl.col("batch_size") == 64)),
    )
    raw = raw.select(
        gpu=pl.col("hardware").replace_strict(SPLITWISE_GPUS),
        tp=pl.col("tensor_parallel"),
        prompt_tokens=pl.col("prompt_size"),
        batch_size=pl.col("batch_size"),
        decode_tokens=pl.col("token_size"),
        prompt_s=pl.col("prompt_time") / 1e3,
        token_s=pl.col("token_time") / 1e3,
    )
    prefill = raw.group_by(_CONFIG_COLUMNS).agg(
        decode_tokens=pl.lit(0, dtype=pl.Int64), measured_s=pl.col("prompt_s").median()
    )
    decode = raw.group_by([*_CONFIG_COLUMNS, "decode_tokens"]).agg(
        measured_s=pl.col("token_s").median()
    )
    configs = raw.select(_CONFIG_COLUMNS).unique().sort(_CONFIG_COLUMNS)
    rng = np.random.default_rng(SPLIT_SEED)
    n_held_out = round(HELD_OUT_FRACTION * configs.height)
    held_out = np.zeros(configs.height, dtype=bool)
    held_out[rng.permutation(configs.height)[:n_held_out]] = True
    configs = configs.with_columns(held_out=pl.Series(held_out))
    columns = ["phase", *_CONFIG_COLUMNS, "decode_tokens", "measured_s"]
    points = pl.concat(
        [
            prefill.with_columns(phase=pl.lit("prefill")).select(columns),
            decode.with_columns(phase=pl.lit("decode")).select(columns),
        ]
    )
    return points.join(configs, on=_CONFIG_COLUMNS, how="inner").sort(
        "phase", *_CONFIG_COLUMNS, "decode_tokens"
    )


def _point_work(points: pl.DataFrame) -> list[tuple[PerfModel, Work]]:
    """Every measured pass as work on an efficiency-free model of its (GPU, TP), in row order."""
    model = MODELS[FITTED_MODEL]
    perf: dict[tuple[str, int], PerfModel] = {}
    out = []
    for phase, gpu, tp, prompt, batch, generated in points.select(
        "phase", "gpu", "tp", "prompt_tokens", "batch_size", "decode_tokens"
    ).iter_rows():
        pm = perf.setdefault((gpu, tp), PerfModel(model, GPUS[gpu], tp, _UNIT_EFFICIENCY))
        if phase == "prefill":
            work = pm.prefill_work([prompt] * batch, [0] * batch)
        else:
            work = pm.decode_work(batch, round(batch * (prompt + generated / 2)))
        out.append((pm, work))
    return out


def _solve_linear_terms(design: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative least squares of ``target`` (G, n) on the two columns of ``design`` (n, 2).

    Two unknowns allow an exact active-set search: the unconstrained solution, each column
    alone, or neither; the best non-negative candidate wins per grid point.

    Returns
    -------
    coef : (G, 2) array
    loss : (G,) array of mean squared residuals
    """
    n_grid = target.shape[0]
    candidates = [np.zeros((n_grid, 2))]
    candidates.append((np.linalg.pinv(design) @ target.T).T)
    for j in range(2):
        column = design[:, j]
        single = np.zeros((n_grid, 2))
        single[:, j] = target @ column / (column @ column)
        candidates.append(single)
    best_coef = np.zeros((n_grid, 2))
    best_loss = np.full(n_grid, np.inf)
    for coef in candidates:
        loss = np.mean((target - coef @ design.T) ** 2, axis=1)
        better = (coef >= 0).all(axis=1) & (loss < best_loss)
        best_coef[better] = coef[better]
        best_loss[better] = loss[better]
    return best_coef, best_loss


def fit_efficiency(points: pl.DataFrame) -> CalibrationResult:
    """Fit :class:`Efficiency` on the points not held out and predict all points.

    The loss is the mean squared *relative* error, so short decode steps weigh as much as
    multi-second prefills.
    """
    point_work = _point_work(points)
    terms = [pm.ideal_seconds(work) for pm, work in point_work]
    measured = points["measured_s"].to_numpy()
    train = ~points["held_out"].to_numpy()
    # (points, kernel groups) compute and memory seconds; one all-reduce time per point.
    compute = np.array([c for c, _, _ in terms])[train]
    memory = np.array([m for _, m, _ in terms])[train]
    allreduce = np.array([a for _, _, a in terms])[train]
    y = measured[train]
    mfu, mbu = (g.ravel() for g in np.meshgrid(_MFU_GRID, _MBU_GRID, indexing="ij"))
    roofline = sum(
        np.maximum(compute[None, :, g] / mfu[:, None], memory[None, :, g] / mbu[:, None])
        for g in range(compute.shape[1])
    )
    design = np.column_stack([allreduce / y, 1.0 / y])
    coef, loss = _solve_linear_terms(design, (y[None, :] - roofline) / y[None, :])
    best = int(np.argmin(loss))
    inverse_link_util, overhead_s = coef[best]
    efficiency = Efficiency(
        mfu=float(mfu[best]),
        mbu=float(mbu[best]),
        link_util=math.inf if inverse_link_util == 0 else float(1.0 / inverse_link_util),
        step_overhead_s=float(overhead_s),
    )
    predicted = np.asarray(
        [
            PerfModel(pm.model, pm.gpu, pm.tp, efficiency).cost(work).duration_s
            for pm, work in point_work
        ]
    )
    points = points.with_columns(
        predicted_s=pl.Series(predicted),
        rel_error=pl.Series(np.abs(predicted / measured - 1.0)),
    )
    return CalibrationResult(efficiency=efficiency, points=points)


@functools.cache
def default_calibration() -> CalibrationResult:
    """The calibration on the shipped Splitwise data, computed once per process (~0.2 s)."""
    return fit_efficiency(load_splitwise_points())


def default_efficiency() -> Efficiency:
    """Efficiencies every simulated GPU uses unless a cluster names others."""
    return default_calibration().efficiency
