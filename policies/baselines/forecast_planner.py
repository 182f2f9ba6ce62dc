"""Forecast-driven planning, after NVIDIA Dynamo's SLA planner.

Dynamo's planner (SLA mode, throughput-based scaling) wakes every ``adjustment_interval``
seconds, reads from the frontend's metrics the interval's request count and mean input and
output sequence lengths, forecasts each of the three for the next interval with a load
predictor (constant, ARIMA, Prophet or Kalman, optionally warm-started from a trace), and
sizes prefill and decode separately: prefill workers from the predicted prompt tokens/s over
a worker's profiled prefill throughput, decode workers from the predicted output tokens/s over
the throughput a worker sustains at the ITL target. No ratio ties the two roles.

Here a worker's profiled throughput is the pool's pressure-tested ``tps_at_slo``
(:func:`policies.sizing.size_role`), and the load predictor is a statsmodels model warm-started
on the curation history (:class:`_ProfileARIMA`). Dynamo's TTFT/ITL correction factors are left
out: the pressure test already measured capacity at the SLO.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.statespace.sarimax import SARIMAX

from policies.controller import DECODE, PREFILL, Decision, Window, hold
from policies.inputs import PolicyInputs
from policies.scoring import DAY_S
from policies.sizing import size_role
from simulator.fluid_load import FluidLoad


@dataclass(frozen=True)
class LoadForecast:
    """The offered load predicted for the next adjustment interval.

    Attributes
    ----------
    request_rate_rps : float
    prompt_tokens, decode_tokens : float
        Per request; decode tokens are those after the first (prefill emits the first).
    """

    request_rate_rps: float
    prompt_tokens: float
    decode_tokens: float

    @property
    def prompt_tps(self) -> float:
        return self.request_rate_rps * self.prompt_tokens

    @property
    def decode_tps(self) -> float:
        return self.request_rate_rps * self.decode_tokens


class ForecastPlanner:
    """Sizes prefill and decode, each on its own, from a forecast of the next interval's load.

    Every ``adjustment_interval_s`` the planner folds the offered load observed since its last
    adjustment (``window.load``: the router's counts, late by the scrape lag) into three
    forecasters, one each for the request rate and the mean prompt and decode tokens per
    request, and sizes each role for the product; in between it holds. Each forecaster is a
    regression on a daily profile with ARIMA(1,1,0) errors fitted to the curation history
    (:class:`_ProfileARIMA`): it follows the level it observes, adds the history's daily swing,
    and updates in microseconds. The planner sees only those lagged observations and the
    curation history, never the evaluation days. A stale window (no load observed) holds, and
    an adjustment it was due waits for the next fresh one.

    Parameters
    ----------
    inputs : PolicyInputs
        Its history warm-starts the forecasters.
    adjustment_interval_s : float
        Time between adjustments, and the forecasters' step; a whole number of the history's
        intervals.
    harmonics : int
        Sine/cosine pairs of the time of day in each forecaster's daily profile.

    Attributes
    ----------
    forecast : LoadForecast or None
        The latest forecast (None before the first adjustment).
    """

    name = "forecast_planner"

    def __init__(
        self, inputs: PolicyInputs, *, adjustment_interval_s: float = 60.0, harmonics: int = 3
    ) -> None:
        self.inputs = inputs
        self.adjustment_interval_s = adjustment_interval_s
        self.harmonics = harmonics
        rate, prompt, decode, tod_s = _aggregate(inputs.history, adjustment_interval_s)
        terms = _profile_terms(tod_s, harmonics)
        self.forecasters = tuple(_ProfileARIMA(v, terms) for v in (rate, prompt, decode))
        self.forecast: LoadForecast | None = None
        self._next_s = adjustment_interval_s
        self._requests = self._prompt = self._decode = self._span_s = 0.0

    def observe(self, window: Window) -> Decision:
        if window.load is None:
            return hold("stale: no offered load observed")
        dt = window.control_interval_s
        rps = window.load["request_rate_rps"]
        self._requests += rps * dt
        self._prompt += window.load["input_tps"] * dt
        self._decode += (window.load["output_tps"] - rps) * dt
        self._span_s += dt
        if window.t_s < self._next_s:
            return hold(f"forecast planner: next adjustment at {self._next_s:.0f} s")
        self._next_s = (window.t_s // self.adjustment_interval_s + 1) * self.adjustment_interval_s

        # The observed span ends ``lag_s`` before now; the forecast is for the step after it.
        observed_tod = (window.now.timestamp() - window.lag_s - self._span_s / 2) % DAY_S
        rate = self._requests / self._span_s
        requests = self._requests if self._requests > 0 else math.nan
        observed = (rate, self._prompt / requests, self._decode / requests)
        terms = _profile_terms(
            np.array([observed_tod, observed_tod + self.adjustment_interval_s]), self.harmonics
        )
        rate_f, prompt_f, decode_f = (
            f.update(value, terms) for f, value in zip(self.forecasters, observed, strict=True)
        )
        self.forecast = LoadForecast(rate_f, prompt_f, decode_f)
        self._requests = self._prompt = self._decode = self._span_s = 0.0

        prompt_tps, decode_tps = self.forecast.prompt_tps, self.forecast.decode_tps
        targets = {
            **size_role(self.inputs, PREFILL, prompt_tps),
            **size_role(self.inputs, DECODE, decode_tps),
        }
        return Decision(
            targets,
            f"forecast planner: observed {rate:.2f} req/s; forecast {rate_f:.2f} req/s x "
            f"{prompt_f:,.0f} prompt + {decode_f:,.0f} decode tok/req = "
            f"{prompt_tps:,.0f} prompt tok/s, {decode_tps:,.0f} decode tok/s",
        )


class _ProfileARIMA:
    """One series' forecaster: a daily profile plus ARIMA(1,1,0) deviations from it.

    ``y_t = b . x(tod_t) + u_t`` with ``(u_t - u_{t-1}) = phi (u_{t-1} - u_{t-2}) + e_t``,
    where ``x`` holds ``harmonics`` sine/cosine pairs of the time of day: a regression with
    ARIMA(1,1,0) errors, fitted once by maximum likelihood (statsmodels' ``SARIMAX`` with the
    profile terms as exogenous regressors). Why this model: the deviation is integrated, so a
    day busier or quieter than the history's is followed at its own level, never pulled back
    to the history's; the profile adds the history's daily swing as the expected change over
    the next step; the AR(1) term on the changes says whether they persist or revert. A
    smooth profile rather than seasonal lags keeps the fit well under a second on 14 days of
    history at minute steps and lets observations fall anywhere in the day.

    Online, the one-step forecast ``b . x(tod_{t+1}) + u_t + phi (u_t - u_{t-1})`` is exactly
    what the state-space filter gives after ``y_t`` (the state is observed), at microseconds
    instead of the milliseconds of ``results.extend``. A missing ``y_t`` (NaN: no requests to
    measure lengths on) is replaced by its forecast, as the filter's forecast does; the filter
    would also revise it once the next observation arrives, which this skips.
    """

    def __init__(self, values: np.ndarray, terms: np.ndarray) -> None:
        known = values[~np.isnan(values)]
        if known.size <= 2 * terms.shape[1] or known.std() <= 1e-9 * abs(known.mean()):
            # Too few observations, or no variation (a fixed length mix): nothing to fit, so
            # forecast the newest observation, as Dynamo's constant predictor does.
            self.beta, self.phi = np.zeros(terms.shape[1]), 0.0
        else:
            with warnings.catch_warnings():
                # A short history may stop the likelihood search early; the parameters it
                # reached still forecast, and the planner is judged by its backtest.
                warnings.simplefilter("ignore", ConvergenceWarning)
                params = SARIMAX(values, exog=terms, order=(1, 1, 0)).fit(disp=False).params
            self.beta, self.phi = params[: terms.shape[1]], float(params[terms.shape[1]])
        # The state: the deviations from the profile at the history's last two known steps.
        deviations = (values - terms @ self.beta)[~np.isnan(values)]
        self.previous, self.last = ([0.0, 0.0] + deviations[-2:].tolist())[-2:]

    def update(self, value: float, terms: np.ndarray) -> float:
        """Take the observation ``value``; forecast the next step (never below 0).

        ``terms`` holds the profile regressors (:func:`_profile_terms`) of the observation's
        time of day, then of the forecast's.
        """
        profile, next_profile = terms @ self.beta
        deviation = value - profile
        if math.isnan(deviation):
            deviation = self.last + self.phi * (self.last - self.previous)
        self.previous, self.last = self.last, deviation
        return max(float(next_profile) + self.last + self.phi * (self.last - self.previous), 0.0)


def _profile_terms(tod_s: np.ndarray, harmonics: int) -> np.ndarray:
    """Regressors of the daily profile: sin and cos of k times the day's angle, k = 1..n (no
    constant: the integrated deviation carries the level)."""
    angle = 2 * np.pi * np.asarray(tod_s, dtype=float)[:, None] / DAY_S
    k = np.arange(1, harmonics + 1)
    return np.hstack([np.sin(k * angle), np.cos(k * angle)])


def _aggregate(history: FluidLoad, step_s: float) -> tuple[np.ndarray, ...]:
    """The history per ``step_s``: request rate, prompt and decode tokens per request (NaN
    without requests), and each step's midpoint time of day."""
    per_step = step_s / history.interval_s
    if per_step < 1 or per_step != round(per_step):
        raise ValueError(
            f"adjustment interval {step_s} s must be a whole number of the history's "
            f"{history.interval_s} s intervals"
        )
    per_step = round(per_step)
    steps = history.count // per_step
    if steps < 2:
        raise ValueError("forecast planner: the history is shorter than two adjustment intervals")

    def summed(values: np.ndarray) -> np.ndarray:
        return values[: steps * per_step].reshape(steps, per_step).sum(axis=1)

    requests = summed(history.requests)
    with np.errstate(invalid="ignore", divide="ignore"):
        prompt = np.where(requests > 0, summed(history.prompt_tokens) / requests, np.nan)
        decode = np.where(requests > 0, summed(history.decode_tokens) / requests, np.nan)
    tod_s = (history.start.timestamp() + (np.arange(steps) + 0.5) * step_s) % DAY_S
    return requests / step_s, prompt, decode, tod_s
