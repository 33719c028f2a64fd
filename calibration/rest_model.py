"""A model of the decision evidence while the user attends nothing, for the no-control threshold.

A calibration holds about a minute of no-control. A threshold that merely keeps the
calibration's own rest free of commands rests on its single most target-like stretch, and on
the next session false activations scatter widely. Instead, the largest evidence of each
block of ``block_s`` seconds of rest is modelled by a generalised extreme-value (GEV)
distribution ``G``, whose tail extrapolates beyond the worst block seen:

- the evidence reaches a level ``h`` in a block with probability ``1 - G(h)``; with
  exceedances arriving as a Poisson process, the false-activation rate is
  ``-log G(h) * 60 / block_s`` per minute of rest;
- the threshold for a budget of ``r`` commands per minute is the level where that rate is
  ``r``;
- the GEV shape (how heavy the tail is) is hard to estimate from twenty blocks; it can be
  fixed to a value pooled over other users (:func:`pooled_shape`), the location and scale
  being the user's own;
- a threshold fitted on a minute of rest is optimistic on average (twenty maxima tend to
  understate the tail); :meth:`RestTail.expected_rate` gives the rate a user will actually
  see at a threshold, its expectation and an interval, from the sampling distribution of the
  fit (simulated once per number of blocks and shape, :func:`rate_calibration`), and
  :func:`threshold_for_budget` holds the budget with that expectation.

The statistic is whatever the decision policy thresholds (for the evidence policy: the
largest accumulated evidence of any target); :func:`threshold_for_budget` handles policies
whose evidence depends on the threshold itself (drift and clip set as fractions of it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize
from scipy.stats import genextreme

#: Shapes are kept in this range (xi > 0: heavy tail; xi < 0: bounded tail).
SHAPE_BOUNDS = (-0.5, 0.5)


def block_maxima(t: np.ndarray, stat: np.ndarray, intervals: Sequence[tuple[float, float]],
                 block_s: float) -> np.ndarray:
    """Largest value of ``stat`` in each block of ``block_s`` seconds of the intervals.

    Parameters
    ----------
    t : ndarray, shape (n,)
        Time of each value (s), increasing.
    stat : ndarray, shape (n,)
        The statistic (e.g. the policy's evidence) at each time.
    intervals : sequence of (start, end)
        The no-control intervals (s); each is cut into whole blocks from its start (a
        remainder shorter than half a block is dropped, a longer one is a block).
    block_s : float
        Block length (s).

    Returns
    -------
    maxima : ndarray
        One value per block that holds at least one time.
    """
    t = np.asarray(t, float)
    stat = np.asarray(stat, float)
    if block_s <= 0:
        raise ValueError(f"'block_s' must be positive, got {block_s!r}.")
    out = []
    for a, b in intervals:
        n = int((b - a) // block_s)
        if (b - a) - n * block_s >= block_s / 2:
            n += 1
        for k in range(n):
            lo, hi = a + k * block_s, min(a + (k + 1) * block_s, b)
            i0, i1 = np.searchsorted(t, [lo, hi], side="left")
            if i1 > i0:
                out.append(float(np.max(stat[i0:i1])))
    return np.asarray(out, float)


def _nll(params: np.ndarray, x: np.ndarray, xi: float) -> float:
    """Negative log-likelihood of a GEV (shape ``xi``) with location and log-scale
    ``params``; 1e300 outside the support."""
    mu, log_s = params
    z = (x - mu) / math.exp(log_s)
    if abs(xi) < 1e-8:
        return float(len(x) * log_s + np.sum(z + np.exp(-z)))
    u = 1.0 + xi * z
    if np.any(u <= 0):
        return 1e300
    lu = np.log(u)
    return float(len(x) * log_s + (1 + 1 / xi) * np.sum(lu) + np.sum(np.exp(-lu / xi)))


def _fit_fixed_shape(x: np.ndarray, xi: float) -> tuple[float, float]:
    """Maximum-likelihood location and scale of a GEV with shape ``xi``."""
    x = np.asarray(x, float)
    sd = float(np.std(x)) or 1e-3
    # Gumbel moment estimates, the scale widened until every value is inside the support
    s0 = sd * math.sqrt(6) / math.pi
    m0 = float(np.mean(x)) - 0.5772 * s0
    for _ in range(60):
        if _nll(np.array([m0, math.log(s0)]), x, xi) < 1e299:
            break
        s0 *= 1.5
    res = minimize(_nll, np.array([m0, math.log(s0)]), args=(x, xi), method="Nelder-Mead",
                   options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
    if not np.isfinite(res.fun) or res.fun >= 1e299:
        return m0, s0
    return float(res.x[0]), float(math.exp(res.x[1]))


def _fit_free(x: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood GEV (shape kept within :data:`SHAPE_BOUNDS`)."""
    best = None
    for xi in np.linspace(*SHAPE_BOUNDS, 21):
        mu, s = _fit_fixed_shape(x, float(xi))
        nll = _nll(np.array([mu, math.log(s)]), x, float(xi))
        if best is None or nll < best[0]:
            best = (nll, float(xi), mu, s)
    return best[1], best[2], best[3]


@dataclass(frozen=True)
class RestTail:
    """GEV model of the per-block maxima of the no-control evidence.

    Attributes
    ----------
    loc, scale, shape : float
        GEV parameters (``shape`` > 0: heavy tail).
    block_s : float
        Block length (s).
    n_blocks : int
        Blocks the model was fitted on.
    shape_sd : float
        Uncertainty of a shape taken from other users (0 when fitted here).
    shape_source : str
        ``"fitted"`` or ``"pooled"``.
    """

    loc: float
    scale: float
    shape: float
    block_s: float
    n_blocks: int
    shape_sd: float = 0.0
    shape_source: str = "fitted"

    def exceedance(self, level: float) -> float:
        """Probability that a block's largest evidence reaches ``level``."""
        return float(genextreme.sf(level, -self.shape, loc=self.loc, scale=self.scale))

    def rate_per_min(self, level: float) -> float:
        """Predicted commands per minute of no-control at threshold ``level``."""
        logcdf = float(genextreme.logcdf(level, -self.shape, loc=self.loc, scale=self.scale))
        return -logcdf * 60.0 / self.block_s

    def level_for_rate(self, rate: float) -> float:
        """The threshold whose predicted rate is ``rate`` per minute."""
        if not rate > 0:
            raise ValueError(f"'rate' must be positive, got {rate!r}.")
        q = math.exp(-rate * self.block_s / 60.0)
        return float(genextreme.ppf(q, -self.shape, loc=self.loc, scale=self.scale))

    def expected_rate(self, level: float, coverage: float = 0.8) -> tuple[float, float, float]:
        """The false-activation rate a user will see at ``level``: its expectation and an
        interval, accounting for the error of a fit on ``n_blocks`` blocks.

        The plug-in rate (:meth:`rate_per_min`) of a fit on a minute of rest is optimistic
        on average (the tail of twenty maxima is underestimated more often than not). The
        sampling distribution of the rate actually realised by a threshold set on such a fit
        is pivotal for a location-scale family, so it is simulated once per ``(n_blocks,
        shape)`` (:func:`rate_calibration`) and read off at this tail's plug-in rate.
        """
        cal = rate_calibration(self.n_blocks, self.shape, self.shape_sd, coverage)
        r = self.rate_per_min(level) * self.block_s / 60.0  # per block
        return tuple(float(v) * 60.0 / self.block_s for v in cal(r))

    def to_dict(self) -> dict:
        """Plain-JSON form (for the profile)."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> RestTail:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


@lru_cache(maxsize=64)
def rate_calibration(n_blocks: int, shape: float, shape_sd: float = 0.0,
                     coverage: float = 0.8, n_draws: int = 400, seed: int = 0):
    """Map a plug-in exceedance rate per block to the realised rate (mean, low, high).

    Simulation in standard units: a true tail GEV(0, 1, xi) with xi drawn around ``shape``
    (spread ``shape_sd``), ``n_blocks`` maxima drawn from it, location and scale refitted with
    the shape fixed at ``shape`` (as :func:`fit_rest_tail` does with a pooled shape); a
    threshold set at plug-in rate ``r`` on that fit realises the true tail's rate there.

    Returns
    -------
    f : callable
        ``f(r) -> (mean, low, high)`` of the realised rate per block, for a plug-in rate
        ``r`` per block (interpolated on a log grid).
    """
    rng = np.random.default_rng(seed)
    xis = np.clip(rng.normal(shape, shape_sd, n_draws) if shape_sd > 0
                  else np.full(n_draws, shape), *SHAPE_BOUNDS)
    fits = []
    for xi_true in xis:
        x = genextreme.rvs(-xi_true, size=max(int(n_blocks), 3), random_state=rng)
        fits.append(_fit_fixed_shape(x, float(shape)))
    mu = np.array([f[0] for f in fits])
    sc = np.array([f[1] for f in fits])
    grid = np.geomspace(1e-5, 0.5, 60)
    mean, lo, hi = [], [], []
    for r in grid:
        # threshold of each fit at plug-in exceedance rate r, and the true rate there
        z = genextreme.ppf(math.exp(-r), -float(shape), loc=mu, scale=sc)
        real = -genextreme.logcdf(z, -xis)
        mean.append(np.mean(real))
        lo.append(np.quantile(real, (1 - coverage) / 2))
        hi.append(np.quantile(real, (1 + coverage) / 2))
    lg = np.log(grid)
    curves = [np.log(np.maximum(np.asarray(c), 1e-300)) for c in (mean, lo, hi)]

    def f(r: float) -> tuple[float, float, float]:
        x = math.log(min(max(r, grid[0]), grid[-1]))
        return tuple(float(np.exp(np.interp(x, lg, c))) for c in curves)
    return f


def fit_rest_tail(maxima: np.ndarray, block_s: float, *, shape: float | None = None,
                  shape_sd: float = 0.0) -> RestTail:
    """Fit the GEV to per-block maxima.

    Parameters
    ----------
    maxima : ndarray
        Per-block maxima (:func:`block_maxima`), at least 3.
    block_s : float
        Block length (s).
    shape : float | None
        Fixed shape (e.g. :func:`pooled_shape` of other users); None: fitted here too.
    shape_sd : float
        Uncertainty of a fixed shape (used by :meth:`RestTail.expected_rate`).
    """
    x = np.asarray(maxima, float)
    x = x[np.isfinite(x)]
    if len(x) < 3:
        raise ValueError(f"Too few blocks of no-control ({len(x)}) to model the rest evidence: "
                         "record more rest (at least three blocks).")
    if shape is None:
        xi, mu, s = _fit_free(x)
        return RestTail(mu, s, xi, float(block_s), len(x), 0.0, "fitted")
    mu, s = _fit_fixed_shape(x, float(shape))
    return RestTail(mu, s, float(shape), float(block_s), len(x), float(shape_sd), "pooled")


def pooled_shape(groups: Sequence[np.ndarray], grid: np.ndarray | None = None) -> tuple[
        float, float]:
    """The GEV shape shared by several users' block maxima (each with its own location and
    scale), by profile likelihood over ``grid``; returns (shape, its standard error from the
    curvature of the profile)."""
    grid = np.linspace(*SHAPE_BOUNDS, 41) if grid is None else np.asarray(grid, float)
    groups = [np.asarray(g, float) for g in groups if len(g) >= 3]
    if not groups:
        raise ValueError("No group has three or more block maxima.")
    prof = []
    for xi in grid:
        nll = 0.0
        for x in groups:
            mu, s = _fit_fixed_shape(x, float(xi))
            nll += _nll(np.array([mu, math.log(s)]), x, float(xi))
        prof.append(nll)
    prof = np.asarray(prof)
    i = int(np.argmin(prof))
    xi = float(grid[i])
    # standard error: where the profile rises by 1/2 (a quadratic through the points within
    # 2 log-likelihood units of the minimum)
    near = prof - prof[i] <= 2.0
    a = np.polyfit(grid[near], prof[near], 2)[0] if near.sum() >= 3 else 0.0
    se = float(1 / math.sqrt(2 * a)) if a > 0 else float(np.ptp(grid) / 4)
    return xi, min(se, float(np.ptp(grid) / 4))


def threshold_for_budget(maxima_at: Callable[[float], np.ndarray], budget: float, *,
                         block_s: float, shape: float | None = None, shape_sd: float = 0.0,
                         lo: float = 1e-3, hi: float = 1e3, iterations: int = 30,
                         expected: bool = True) -> tuple[float, RestTail]:
    """The threshold whose predicted false-activation rate is the budget.

    Parameters
    ----------
    maxima_at : callable
        ``maxima_at(h)``: the per-block maxima of the no-control evidence of the policy with
        threshold ``h`` (its evidence may depend on ``h``, e.g. drift as a fraction of it).
    budget : float
        Commands per minute of no-control.
    block_s, shape, shape_sd
        See :func:`fit_rest_tail`.
    lo, hi : float
        Bracket of the threshold (log bisection).
    iterations : int
        Bisection steps.
    expected : bool, default=True
        Hold the budget with the expected realised rate (:meth:`RestTail.expected_rate`,
        which accounts for the fit's error); False: with the plug-in rate.

    Returns
    -------
    threshold : float
    tail : RestTail
        The model at that threshold.
    """
    def rate(h: float) -> tuple[float, RestTail]:
        tail = fit_rest_tail(maxima_at(h), block_s, shape=shape, shape_sd=shape_sd)
        return (tail.expected_rate(h)[0] if expected else tail.rate_per_min(h)), tail

    a, b = math.log(lo), math.log(hi)
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        if rate(math.exp(mid))[0] <= budget:
            b = mid
        else:
            a = mid
    h = math.exp(b)
    return h, rate(h)[1]


def describe_prediction(pf: dict, budget: float | None = None) -> str:
    """One line: the false-activation rate the model of rest predicts, with its interval
    (``prediction``: :func:`calibration.selection.predicted_false`, as the profile stores it)."""
    lo, hi = pf["interval"]
    tail = pf.get("rest_tail") or {}
    return (f"predicted false activations: {pf['per_min']:.2f}/min of rest"
            + (f" (budget {budget:g})" if budget is not None else "")
            + f", {100 * pf['coverage']:.0f} % interval {lo:.2f}-{hi:.2f}/min; from "
            f"{tail.get('n_blocks', '?')} blocks of {tail.get('block_s', 0):g} s of rest "
            f"({60 * pf.get('rest_minutes', 0):.0f} s), extrapolated by an extreme-value "
            "model")
