"""The report's page chrome, in one place: the HTML skeleton, the style, the navigation between
pages, the blocks a page is made of, and writing the pages so a reader never sees half of one.

A page is a title and a list of blocks, each an HTML fragment or a plotly figure, in reading
order. Every page is self-contained: one with figures embeds plotly.js once, with its first
figure (the CDN variant renders blank offline); one without figures carries no script at all.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

TITLE = "HeteroScale report"
FIGURE_HEIGHT = "560px"
STYLE = """
body{font-family:sans-serif;margin:0 2em 2em;max-width:1200px;line-height:1.4}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ccc;padding:.6em 0;z-index:9}
nav a{margin-right:1.2em;text-decoration:none;color:#1f4e99}
nav a.here{font-weight:bold;color:#000}
h1{margin:.6em 0 .2em}
.card{border-collapse:collapse;margin:.6em 0}
.card th,.card td{text-align:left;vertical-align:top;padding:.35em .7em}
.card tr{border-bottom:1px solid #ddd;border-left:.4em solid #ccc}
.card th{white-space:nowrap}
.card tr.pass{border-left-color:#2a8a2a;background:#eef8ee}
.card tr.fail{border-left-color:#b00000;background:#fbeeee}
.miss{color:#b00000;font-weight:bold}
dt{font-weight:bold;margin-top:.4em}
"""

Block = str | go.Figure


@dataclass(frozen=True)
class Page:
    """One page of the report.

    Attributes
    ----------
    slug : str
        Its name in the file name (``<index stem>-<slug>.html``); the overview is the index.
    title : str
        Its heading and its link in the navigation.
    blocks : sequence of str or go.Figure
        HTML fragments (:func:`heading`, :func:`bullets`, :func:`paragraph`, ...) and figures.
    """

    slug: str
    title: str
    blocks: Sequence[Block]


#: The slug of the page that opens the report, written at the index path itself.
INDEX = "overview"


def page_path(index: Path, slug: str) -> Path:
    """Where the page ``slug`` of the report whose index is ``index`` goes: the index itself
    for the overview, a sibling ``<stem>-<slug>.html`` otherwise."""
    return index if slug == INDEX else index.with_name(f"{index.stem}-{slug}.html")


def service_report(index: Path, service: str) -> Path:
    """Where the report of one of a store's several services goes: beside ``index``, which
    holds the index of the services (:mod:`dashboards.services_index`), named after it."""
    return index.with_name(f"{index.stem}-{service}.html")


def write_pages(index: Path, services: Sequence[str], pages: Sequence[Page]) -> list[Path]:
    """Render and write every page about ``services`` (a service's report, or the index of
    a store's several); return their paths in page order.

    Each page goes to a sibling temporary file first; the files are renamed into place only
    once all are written, the index last, so a reader who finds the index finds every page it
    links to, and never a half-written one.
    """
    index.parent.mkdir(parents=True, exist_ok=True)
    paths = [page_path(index, page.slug) for page in pages]
    links = [(path.name, page.title) for path, page in zip(paths, pages, strict=True)]
    for path, page in zip(paths, pages, strict=True):
        _partial(path).write_text(_render(page, services, links), encoding="utf-8")
    for path in sorted(paths, key=lambda path: path == index):
        _partial(path).replace(path)
    return paths


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _render(page: Page, services: Sequence[str], links: list[tuple[str, str]]) -> str:
    """The page's HTML: the navigation (this page's link marked), its title, its blocks."""
    nav = " ".join(
        f"<a href='{name}'{' class=here' if title == page.title else ''}>{html.escape(title)}</a>"
        for name, title in links
    )
    body = []
    figures = 0
    for block in page.blocks:
        if isinstance(block, go.Figure):
            block = block.to_html(
                full_html=False, include_plotlyjs=figures == 0, default_height=FIGURE_HEIGHT
            )
            figures += 1
        body.append(block)
    names = ", ".join(services)
    named = ", ".join(f"<b>{html.escape(service)}</b>" for service in services)
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{html.escape(f'{page.title} | {TITLE} ({names})')}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n<nav>{nav}</nav>\n"
        f"<h1>{html.escape(page.title)}</h1>\n"
        f"<p>{TITLE} for service{'s' if len(services) > 1 else ''} {named}.</p>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def heading(text: str) -> str:
    return f"<h2>{html.escape(text)}</h2>"


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def bullets(lines: Sequence[str]) -> str:
    """An HTML list; a line that reports a miss (MISS, FAILED) is set in bold red so it cannot
    be skimmed."""
    items = "\n".join(f"<li{_miss(line)}>{html.escape(line)}</li>" for line in lines)
    return f"<ul>\n{items}\n</ul>"


def card(rows: Sequence[tuple[str, str, bool | None]]) -> str:
    """Labelled short rows in a table; a row that passed is marked green, one that did not
    red, one not judged plain."""
    marks = {True: " class=pass", False: " class=fail", None: ""}
    cells = "\n".join(
        f"<tr{marks[passed]}><th>{html.escape(label)}</th><td>{html.escape(text)}</td></tr>"
        for label, text, passed in rows
    )
    return f"<table class=card>\n{cells}\n</table>"


def _miss(line: str) -> str:
    """The class of a line that reports a miss or a failure (words in capitals on purpose)."""
    return " class=miss" if "MISS" in line or "FAIL" in line else ""


def glossary(terms: Sequence[tuple[str, str]]) -> str:
    """Terms and what they mean, as a definition list."""
    items = "\n".join(
        f"<dt>{html.escape(term)}</dt><dd>{html.escape(meaning)}</dd>" for term, meaning in terms
    )
    return f"<dl>\n{items}\n</dl>"
