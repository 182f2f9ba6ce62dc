"""The Prometheus HTTP API reader: ``query_range`` per canonical signal, into signal values.

Credentials never appear in messages or logs: the URL is shown without its user info, and a
bearer token comes from ``HETEROSCALE_PROMETHEUS_TOKEN``. A load is all or nothing: any failed,
timed-out, truncated or partial answer stops it with an :class:`IngestError` before anything
is written.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta

import polars as pl

from telemetry.ingest import catalog as cat
from telemetry.ingest import promql, quarantine, skipped
from telemetry.ingest.errors import IngestError, no_service
from telemetry.ingest.mapping import Mapping
from telemetry.ingest.semantics import SIGNAL_SCHEMA, Signals

URL_SCHEME = "prometheus+"
TOKEN_ENV = "HETEROSCALE_PROMETHEUS_TOKEN"
#: Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 10_000


def is_prometheus(source: str) -> bool:
    return source.startswith((f"{URL_SCHEME}http://", f"{URL_SCHEME}https://"))


class Client:
    """A minimal ``/api/v1/query_range`` client that hides credentials from every message.

    Parameters
    ----------
    url : str
        ``http(s)://[user:password@]host:port[/prefix]``, optionally prefixed ``prometheus+``.
    timeout_s : float
        Per-request timeout.
    """

    def __init__(self, url: str, timeout_s: float = 30.0):
        parts = urllib.parse.urlsplit(url.removeprefix(URL_SCHEME))
        self.headers = {"Accept": "application/json"}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            pair = f"{user}:{urllib.parse.unquote(parts.password or '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif os.environ.get(TOKEN_ENV):
            self.headers["Authorization"] = f"Bearer {os.environ[TOKEN_ENV]}"
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.safe_url = f"{URL_SCHEME}{self.base}"
        self.timeout_s = timeout_s

    def query_range(self, expr: str, start: datetime, end: datetime, step_s: float) -> dict:
        """The ``data`` of a successful range query.

        Raises
        ------
        IngestError
            On a refused connection, a timeout, an HTTP error, a body that is not complete
            JSON, an error status or a partial answer (warnings).
        """
        query = urllib.parse.urlencode(
            {"query": expr, "start": start.timestamp(), "end": end.timestamp(), "step": step_s}
        )
        request = urllib.request.Request(
            f"{self.base}/api/v1/query_range?{query}", headers=self.headers
        )
        what = f"query {expr!r}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_text(exc.read())
            fix = (
                f"Check the credentials (user info in the URL, or ${TOKEN_ENV})"
                if exc.code in (401, 403)
                else "Fix the query in the mapping's prometheus.queries"
                if exc.code in (400, 422)
                else "Prometheus failed; retry when it is healthy"
            )
            raise IngestError(self.safe_url, f"HTTP {exc.code} for {what}: {detail}", fix) from None
        except TimeoutError as exc:
            raise IngestError(
                self.safe_url,
                f"no answer within {self.timeout_s:g} s for {what}",
                "Raise --timeout or load a shorter time range",
            ) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise IngestError(
                    self.safe_url,
                    f"no answer within {self.timeout_s:g} s for {what}",
                    "Raise --timeout or load a shorter time range",
                ) from None
            raise IngestError(
                self.safe_url,
                f"cannot connect: {exc.reason}",
                "Check the host and port, that Prometheus runs, and any firewall",
            ) from None
        try:
            answer = json.loads(body)
        except json.JSONDecodeError:
            raise IngestError(
                self.safe_url,
                f"the answer to {what} is not complete JSON ({len(body)} bytes, cut off?)",
                "Retry; a proxy may have cut the response",
            ) from None
        if answer.get("status") != "success":
            raise IngestError(
                self.safe_url,
                f"{what} failed: {answer.get('errorType')}: {answer.get('error')}",
                "Fix the query in the mapping's prometheus.queries",
            )
        if answer.get("warnings"):
            raise IngestError(
                self.safe_url,
                f"partial answer to {what}: {'; '.join(answer['warnings'])}",
                "Retry when every store answers; a partial answer would load a half interval",
            )
        data = answer.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise IngestError(
                self.safe_url, f"the answer to {what} has no data.result", "Is this Prometheus?"
            )
        return data


def _error_text(body: bytes) -> str:
    try:
        answer = json.loads(body)
        return f"{answer.get('errorType')}: {answer.get('error')}"
    except (json.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace")


def _windows(start: datetime, end: datetime, step_s: float):
    """Sub-ranges of at most :data:`MAX_POINTS` steps (Prometheus's own limit is 11,000)."""
    span = timedelta(seconds=step_s * MAX_POINTS)
    while start <= end:
        stop = min(end, start + span)
        yield start, stop
        start = stop + timedelta(seconds=step_s)


def read_prometheus(
    url: str,
    *,
    start: datetime,
    end: datetime,
    interval_s: float,
    mapping: Mapping,
    service: str | None,
    timeout_s: float = 30.0,
) -> tuple[Signals, int]:
    """Signal values of every instance in ``[start, end)`` at ``interval_s``.

    Parameters
    ----------
    url : str
        The Prometheus URL (``prometheus+http://host:port``).
    start, end : datetime
        Interval starts from ``start`` up to ``end`` (UTC-aware).
    interval_s : float
        Canonical interval, also the query step; the window is ``prometheus.window_s`` of the
        mapping (default ``interval_s``).
    mapping : Mapping
        ``prometheus:`` section: ``selector``, ``stacks``, ``instance_label``, ``window_s``,
        ``queries`` (overrides per canonical column), ``service``.
    service : str, optional
        Service of the loaded rows, else the mapping's; else, as for files, each instance's
        ``service``, ``model_name`` or ``model`` label (:data:`catalog.SERVICE_LABELS`), or the
        only service the source names.

    Returns
    -------
    (Signals, int)
        The values and the number of points read.

    Raises
    ------
    IngestError
        For a failed query, or when no service is given and no series names one.

    Notes
    -----
    An evaluation at time T describes ``(T - window, T]``, so its value is stored at the
    interval starting ``T - interval_s``. A quantile of an interval without observations is
    NaN in PromQL and null here (no latency was observed).
    """
    config = mapping.prometheus
    service = service or config.get("service") or mapping.service
    client = Client(url, timeout_s=timeout_s)
    label = config.get("instance_label", "pod")
    stacks = tuple(config.get("stacks", promql.DEFAULT_STACKS))
    queries = promql.render(
        selector=config.get("selector", ""),
        stacks=stacks,
        window_s=float(config.get("window_s", interval_s)),
        instance_label=label,
        overrides=config.get("queries"),
        by_service=not service,
    )
    shift = timedelta(seconds=interval_s)
    frames, points = [], 0
    for query in queries:
        for lo, hi in _windows(start + shift, end, interval_s):
            for series in client.query_range(query.expr, lo, hi, interval_s)["result"]:
                labels = series.get("metric", {})
                pairs = series.get("values", [])
                points += len(pairs)
                frames.append(
                    pl.DataFrame(
                        {
                            "ts": [float(t) for t, _ in pairs],
                            "value": [float(v) for _, v in pairs],
                        },
                        schema={"ts": pl.Float64, "value": pl.Float64},
                    ).with_columns(
                        pl.lit(labels.get(label), pl.String).alias("instance_id"),
                        pl.lit(_labelled_service(labels), pl.String).alias("service"),
                        pl.lit(query.column).alias("column"),
                        pl.lit(query.signal.metric if query.signal else None, pl.String).alias(
                            "metric"
                        ),
                        pl.lit(query.priority).alias("priority"),
                        pl.lit(cat.UNIT_SCALE[query.signal.unit] if query.signal else 1.0).alias(
                            "scale"
                        ),
                    )
                )
    attributes = _attributes(client, config, label, stacks, start, end, interval_s)
    values, quarantined, superseded, notes = _values(
        frames, attributes, service, shift, client.safe_url
    )
    if service:
        attributes = attributes.with_columns(pl.lit(service).alias("service"))
    else:
        attributes = _attributes_by_service(attributes, values)
    signals = Signals(
        values=values,
        attributes=attributes.select(ATTRIBUTE_COLUMNS),
        quarantine=quarantined,
        notes={"queries": len(queries), **notes},
        skipped=superseded,
    )
    return signals, points


#: The attribute columns every reader hands to assembly, in its order.
ATTRIBUTE_COLUMNS = ("service", "instance_id", "roles", "gpu_type", "gpus_per_instance")


def _labelled_service(labels: dict) -> str | None:
    """The service a series' labels name (:data:`catalog.SERVICE_LABELS`, first non-empty)."""
    return next((labels[k] for k in cat.SERVICE_LABELS if labels.get(k)), None)


def _values(
    frames: list[pl.DataFrame],
    attributes: pl.DataFrame,
    service: str | None,
    shift: timedelta,
    source: str,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict]:
    """Signal values with their service; the points of no service (when the source names
    several) for quarantine; the points of deprecated names an instance also exports under
    their current name, skipped; and where services came from.

    Raises
    ------
    IngestError
        When series answered, no service is given and none of them (nor their instances) names
        one.
    """
    if not frames:  # nothing answered: the load reports that nothing loaded
        return pl.DataFrame(schema=SIGNAL_SCHEMA), quarantine.empty(), skipped.empty(), {}
    frame = pl.concat(frames).with_columns(
        (pl.col("ts") * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC")) - shift,
        pl.when(pl.col("column").str.ends_with("_s") & pl.col("value").is_nan())
        .then(None)
        .otherwise(pl.col("value") * pl.col("scale"))
        .alias("value"),
        pl.lit(1, pl.Int64).alias("rows"),
    )
    notes = {}
    if service:
        frame = frame.with_columns(pl.lit(service).alias("service"))
    else:
        of_instance = attributes.filter(pl.col("services").list.len() == 1).select(
            "instance_id", pl.col("services").list.first().alias("_of_instance")
        )
        frame = frame.join(of_instance, on="instance_id", how="left").with_columns(
            pl.coalesce("service", "_of_instance").alias("service")
        )
        named = set(frame["service"].drop_nulls()) | {
            s for services in attributes["services"] for s in services
        }
        if not named:
            raise no_service(source)
        if len(named) == 1:
            frame = frame.with_columns(pl.col("service").fill_null(named.pop()))
        notes["service"] = "from the series' " + ", ".join(cat.SERVICE_LABELS) + " labels"
    unnamed = frame.filter(pl.col("service").is_null())
    bad = quarantine.rows(
        unnamed,
        source=source,
        location=pl.format("{} of {}", "column", pl.col("instance_id").fill_null("the service")),
        reason="missing_service",
        detail="no service label on this instance's series, and the source names several",
    )
    frame = frame.filter(pl.col("service").is_not_null())
    # Per instance and column keep the highest-priority name (current before deprecated).
    best = pl.col("priority") == pl.col("priority").min().over("service", "instance_id", "column")
    superseded = skipped.rows(
        frame.filter(~best), source=source, reason="superseded_metric", metric=pl.col("metric")
    )
    return frame.filter(best).select(list(SIGNAL_SCHEMA)), bad, superseded, notes


def _attributes(client, config, label, stacks, start, end, interval_s) -> pl.DataFrame:
    """Role, GPU type, GPU count and labelled services per instance, from the attribute
    queries' labels."""
    queries = promql.attribute_queries(
        selector=config.get("selector", ""), instance_label=label, stacks=stacks
    )
    rows: dict[str, dict] = {}
    for kind, expr in queries.items():
        for series in client.query_range(expr, start, end, interval_s)["result"]:
            metric = series.get("metric", {})
            instance = metric.get(label)
            if instance is None:
                continue
            entry = rows.setdefault(
                instance, {"roles": set(), "services": set(), "gpu_type": None, "gpus": None}
            )
            if kind == "role":
                role = next((metric[k] for k in cat.ROLE_LABELS if metric.get(k)), None)
                if role:
                    entry["roles"].add(role)
                named = _labelled_service(metric)
                if named:
                    entry["services"].add(named)
            else:
                entry["gpu_type"] = cat.gpu_model(metric.get("modelName"))
                entry["gpus"] = int(float(series["values"][-1][1]))
    return pl.DataFrame(
        {
            "instance_id": list(rows),
            "roles": [sorted(r["roles"]) for r in rows.values()],
            "services": [sorted(r["services"]) for r in rows.values()],
            "gpu_type": [r["gpu_type"] for r in rows.values()],
            "gpus_per_instance": [r["gpus"] for r in rows.values()],
        },
        schema={
            "instance_id": pl.String,
            "roles": pl.List(pl.String),
            "services": pl.List(pl.String),
            "gpu_type": pl.String,
            "gpus_per_instance": pl.Int64,
        },
    )


def _attributes_by_service(attributes: pl.DataFrame, values: pl.DataFrame) -> pl.DataFrame:
    """The attributes of each (service, instance) the values hold: an instance's attributes
    are those of its pod, whatever service its values were given."""
    instances = values.filter(pl.col("instance_id").is_not_null()).select("service", "instance_id")
    return instances.unique().join(attributes, on="instance_id", how="left")
