"""Raw samples: what the exposition reader hands to the semantics, before any meaning.

A sample moves as integers and floats only (source, line, series, time, value); what a series
is (its metric name and label text) is stored once per series in a table of its own, and joined
only where a reader needs it, so nothing is hashed or copied per sample that is the same for
thousands of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from telemetry.ingest import quarantine

#: One row per sample line. ``source`` indexes :attr:`RawSamples.sources`, ``series`` the
#: series table.
RAW_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.UInt32(),
    "line": pl.Int64(),
    "series": pl.UInt32(),
    "ts": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
}

#: One row per series that has samples: its id, metric name and label text.
SERIES_SCHEMA: dict[str, pl.DataType] = {
    "series": pl.UInt32(),
    "metric": pl.String(),
    "labels": pl.String(),
}


@dataclass
class RawSamples:
    """Samples of one or more exposition sources, before any semantics.

    Attributes
    ----------
    samples : pl.DataFrame
        One row per sample line, :data:`RAW_SCHEMA`, in source then line order.
    series : pl.DataFrame
        One row per series with samples, :data:`SERIES_SCHEMA`.
    labels : pl.DataFrame
        One row per distinct label text: ``labels`` plus one column per label name.
    sources : list of str
        The file names, indexed by the samples' ``source``.
    quarantine : pl.DataFrame
        Lines that could not be read, with the reason.
    types : dict
        ``# TYPE`` declarations by metric family.
    rows_read : int
        Sample lines read (comments and blank lines are not samples).
    """

    samples: pl.DataFrame
    series: pl.DataFrame
    labels: pl.DataFrame
    sources: list[str]
    quarantine: pl.DataFrame = field(default_factory=quarantine.empty)
    types: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0

    def named(self) -> pl.DataFrame:
        """The samples with their source name, metric and label text: for reading a few
        samples (a scrape, a test), not for the bulk path, which keeps to integer ids."""
        names = pl.lit(pl.Series(self.sources, dtype=pl.String)).gather(pl.col("source"))
        return self.samples.join(
            self.series, on="series", how="left", maintain_order="left"
        ).select(names.alias("source"), "line", "metric", "labels", "ts", "value", "series")

    @staticmethod
    def concat(parts: list[RawSamples]) -> RawSamples:
        """Samples of several sources as one: series ids made common through the (small)
        series tables, then looked up per sample by position, never by text."""
        if len(parts) == 1:  # ids are already common
            return parts[0]
        every = pl.concat(
            p.series.with_columns(pl.lit(k, pl.UInt32).alias("_part")) for k, p in enumerate(parts)
        )
        common = (
            every.select("metric", "labels")
            .unique(maintain_order=True)
            .with_row_index("common")
            .with_columns(pl.col("common").cast(pl.UInt32))
        )
        ids = every.join(common, on=["metric", "labels"], how="left")
        samples = []
        offset = 0
        for k, part in enumerate(parts):
            mine = ids.filter(pl.col("_part") == k)
            samples.append(
                part.samples.with_columns(
                    pl.col("source") + offset,
                    renumber(pl.col("series"), mine["series"], mine["common"]),
                )
            )
            offset += len(part.sources)
        types: dict[str, str] = {}
        for part in parts:
            types.update(part.types)
        return RawSamples(
            samples=pl.concat(samples),
            series=common.select(pl.col("common").alias("series"), "metric", "labels"),
            labels=pl.concat([p.labels for p in parts], how="diagonal_relaxed").unique("labels"),
            sources=[name for part in parts for name in part.sources],
            quarantine=pl.concat([p.quarantine for p in parts]),
            types=types,
            rows_read=sum(p.rows_read for p in parts),
        )


def renumber(ids: pl.Expr, old: pl.Series, new: pl.Series) -> pl.Expr:
    """``ids`` mapped from ``old`` to ``new`` (null where not in ``old``) through a lookup
    array: ids are small dense integers, so a sample costs a gather, not a hash lookup."""
    lookup = pl.repeat(None, int(old.max() or 0) + 1, dtype=pl.UInt32, eager=True)
    return (
        pl.lit(lookup.scatter(old, new.cast(pl.UInt32))).gather(ids).alias(ids.meta.output_name())
    )
