"""The report's signal section: which metric the study recommends, and how it judged the one
the chosen policy scales on, in words computed from the study's tables."""

from __future__ import annotations

import polars as pl


def signal_lines(
    signal_study: pl.DataFrame, signal_recommendation: pl.DataFrame, curated_policy: pl.DataFrame
) -> list[str]:
    """What the study recommends and what it makes of the policy's own signal.

    Parameters
    ----------
    signal_study : pl.DataFrame
        :func:`signals.run_study`'s ranked table (``rank``, ``role``, ``gpu_type``, ``signal``,
        ``class``, ``reasons``).
    signal_recommendation : pl.DataFrame
        Its recommendation, one row (``signal`` null when nothing is proportional).
    curated_policy : pl.DataFrame
        One row; ``signal`` is what the chosen policy scales on (its decode pool's).

    Returns
    -------
    list of str
        The recommendation with its first reason and target, then the policy signal's class
        and rank, so a disagreement between the two is stated rather than hidden.
    """
    whole_role = signal_study.filter(pl.col("gpu_type").is_null())
    recommended = signal_recommendation.row(0, named=True) if signal_recommendation.height else {}
    lines = []
    if recommended.get("signal") is None:
        lines.append("The signal study found no signal fit for proportional control.")
    else:
        best = _candidate(whole_role, recommended["role"], recommended["signal"])
        target = recommended.get("target_per_instance")
        lines.append(
            f"The signal study recommends {recommended['role']} {recommended['signal']} "
            f"(rank {best['rank']} of {whole_role.height}, {best['class']}): "
            f"{'; '.join(best['reasons'])}; "
            + (
                f"target {target:,.1f} per instance ({recommended['target_source']})."
                if target is not None
                else "no target: the data never neared the SLO and no pressure test covers it."
            )
        )
    used = curated_policy["signal"].item()
    own = _candidate(whole_role, "decode", used)
    if own is not None and own["signal"] != recommended.get("signal"):
        lines.append(
            f"The chosen policy scales on its decode pool's {used}, which the study ranks "
            f"{own['rank']} "
            f"({own['class']}: {'; '.join(own['reasons'])})."
        )
    return lines


def _candidate(table: pl.DataFrame, role: str, signal: str) -> dict | None:
    rows = table.filter((pl.col("role") == role) & (pl.col("signal") == signal))
    return rows.row(0, named=True) if rows.height else None
