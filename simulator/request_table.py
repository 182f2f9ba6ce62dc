"""Per-request inputs and outcomes of one simulation, as plain lists for fast access."""

from __future__ import annotations

import math

import polars as pl


class RequestTable:
    """What each request asks for and what happened to it; indexed by request id (row number)."""

    def __init__(self, requests: pl.DataFrame) -> None:
        self.size = requests.height
        self.arrival_s: list[float] = requests["arrival_s"].to_list()
        self.input_tokens: list[int] = requests["input_tokens"].to_list()
        self.output_tokens: list[int] = requests["output_tokens"].to_list()
        self.prefix_hashes: list[list[int]] = requests["prefix_hashes"].to_list()
        n = self.size
        self.cached_tokens = [0] * n
        self.prefill_instance = [-1] * n
        self.prefill_start_s = [math.nan] * n
        self.first_token_s = [math.nan] * n
        self.decode_instance = [-1] * n
        self.decode_start_s = [math.nan] * n
        self.finish_s = [math.nan] * n

    def to_frame(self, instance_ids: list[str]) -> pl.DataFrame:
        """Outcomes per request; instance columns hold ids, decode columns are null for
        requests whose only token came from prefill."""

        def name(index: int) -> str | None:
            return instance_ids[index] if index >= 0 else None

        def time(values: list[float]) -> pl.Series:
            return pl.Series(values, dtype=pl.Float64).fill_nan(None)

        return pl.DataFrame(
            {
                "arrival_s": pl.Series(self.arrival_s, dtype=pl.Float64),
                "input_tokens": pl.Series(self.input_tokens, dtype=pl.Int64),
                "output_tokens": pl.Series(self.output_tokens, dtype=pl.Int64),
                "cached_tokens": pl.Series(self.cached_tokens, dtype=pl.Int64),
                "prefill_instance": pl.Series(
                    [name(i) for i in self.prefill_instance], dtype=pl.String
                ),
                "prefill_start_s": time(self.prefill_start_s),
                "first_token_s": time(self.first_token_s),
                "ttft_s": time(self.first_token_s) - pl.Series(self.arrival_s),
                "decode_instance": pl.Series(
                    [name(i) for i in self.decode_instance], dtype=pl.String
                ),
                "decode_start_s": time(self.decode_start_s),
                "finish_s": time(self.finish_s),
            }
        )
