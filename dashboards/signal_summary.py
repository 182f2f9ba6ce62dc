"""The report's signal findings in words: which metric the study recommends, how it judged the
one the chosen policy scales on, and per role which signal tracks load and which cannot scale
in, computed from the study's tables."""

from __future__ import annotations

import polars as pl

from dashboards.wording import number

#: How many of the recommended signal's reasons the first screen quotes.
BRIEF_REASONS = 2


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


def signal_brief(
    signal_study: pl.DataFrame, signal_recommendation: pl.DataFrame, curated_policy: pl.DataFrame
) -> str:
    """The recommendation in one sentence for the first screen: the signal, its rank and
    class, its first :data:`BRIEF_REASONS` reasons; and the policy's own signal when it is
    another (the full reasons are :func:`signal_lines`')."""
    whole_role = signal_study.filter(pl.col("gpu_type").is_null())
    recommended = signal_recommendation.row(0, named=True) if signal_recommendation.height else {}
    used = curated_policy["signal"].item()
    if recommended.get("signal") is None:
        text = "the study found no signal fit for proportional control"
    else:
        best = _candidate(whole_role, recommended["role"], recommended["signal"])
        text = (
            f"the study recommends {recommended['role']} {recommended['signal']} (rank "
            f"{best['rank']} of {whole_role.height}, {best['class']}): "
            + "; ".join(best["reasons"][:BRIEF_REASONS])
        )
    own = _candidate(whole_role, "decode", used)
    if own is not None and used != recommended.get("signal"):
        text += (
            f". The policy scales on the decode pool's {used} (rank {own['rank']}, {own['class']})"
        )
    return text + "."


def _candidate(table: pl.DataFrame, role: str, signal: str) -> dict | None:
    rows = table.filter((pl.col("role") == role) & (pl.col("signal") == signal))
    return rows.row(0, named=True) if rows.height else None


def score_lines(signal_scores: pl.DataFrame) -> list[str]:
    """Per (service, role) the signal that tracks offered load best and the one that gives up
    least at low load.

    Parameters
    ----------
    signal_scores : pl.DataFrame
        The output of :func:`signals.score_signals`.

    Returns
    -------
    list of str
        Per (service, role) with a defined correlation: the signal with the highest |Pearson r|
        and the signal with the lowest scale-in response (the paper's "decode utilisation
        stays busy" test, §5.3.2), which is unfit to scale in on.
    """
    correlated = signal_scores.filter(pl.col("pearson_r").is_not_null()).sort(
        "service", "role", "signal"
    )
    roles = correlated.partition_by("service", "role", maintain_order=True, as_dict=True)
    return [_score_line(service, role, scores) for (service, role), scores in roles.items()]


def _score_line(service: str, role: str, scores: pl.DataFrame) -> str:
    best = scores.sort(pl.col("pearson_r").abs(), "signal", descending=[True, False]).row(
        0, named=True
    )
    line = (
        f"{service} {role}: {best['signal']} tracks offered load best "
        f"(Pearson r = {best['pearson_r']:.2f}, scale-in response "
        f"{number(best['scale_in_response'], 2)})"
    )
    responsive = scores.filter(pl.col("scale_in_response").is_not_null())
    if responsive.height:
        weakest = responsive.sort("scale_in_response", "signal").row(0, named=True)
        line += (
            f"; {weakest['signal']} gives up least at low load "
            f"(scale-in response {weakest['scale_in_response']:.2f}), unfit to scale in on"
        )
    return line + "."
