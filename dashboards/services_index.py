"""The index of a store's services: each service's decision on one screen, linking its report.

A store of several services gets a report per service; the index, at the report's usual name,
is where a capacity planner starts: per service, the rows of its own first screen that decide
(the SLO verdict, the publication gate's, the recommended signal, the saving against static
provisioning), computed by the same function (:func:`dashboards.decision_card`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from dashboards.decision_summary import decision_card
from dashboards.page import INDEX, Page, card, paragraph, service_report, write_pages
from dashboards.policy_groups import STATIC_PEAK

#: The decision card's rows the index shows.
SHOWN = ("SLO", "Publication gate", "Signal", f"Against {STATIC_PEAK}")
#: The tables the decision card is computed from, by its keyword.
DECISION_TABLES = (
    "curated_policy",
    "signal_study",
    "signal_recommendation",
    "fleet_summary",
    "fleet_per_day",
)


def write_services_index(
    index: Path, services: Sequence[str], tables: Mapping[str, pl.DataFrame]
) -> Path:
    """Write the index of ``services`` at ``index``; return its path.

    Parameters
    ----------
    index : Path
        Where it goes; each service's report is beside it (:func:`dashboards.page.service_report`).
    services : sequence of str
        The store's services, in the order shown.
    tables : mapping of str to pl.DataFrame
        :data:`DECISION_TABLES`, each holding every service's rows (a ``service`` column); a
        service without rows in all of them has no finished policy run, and the index says so.
    """
    blocks = [
        paragraph(
            f"{len(services)} services, each with its own report. Per service, what its report's "
            "first screen decides:"
        )
    ]
    for service in services:
        report = service_report(index, service)
        blocks.append(f"<h2><a href='{html.escape(report.name)}'>{html.escape(service)}</a></h2>")
        own = {name: tables[name].filter(pl.col("service") == service) for name in DECISION_TABLES}
        if any(frame.is_empty() for frame in own.values()):
            blocks.append(paragraph("No policy run has finished for this service yet."))
            continue
        rows = [row for row in decision_card(**own) if row[0] in SHOWN]
        blocks.append(card(rows))
    (path,) = write_pages(index, services, [Page(INDEX, "Services", blocks)])
    return path
