"""Decoders, policy replay and scoring on cached window statistics (research scripts only).

Fast re-implementations for sweeping many choices leave-one-subject-out on the dev
recordings; the figures that are published go through the deployed path instead
(``calibrate`` -> profile -> online loop). Features are those of :class:`bci.decoders.RessFBCCA`
(filter-bank canonical correlations and RESS power fractions), computed from the statistics of
:mod:`_window_stats`, plus variants (harmonics, sub-bands, filters learned per sub-band,
filter-bank covariances).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from _window_stats import LABELS, SessionStats
from scipy.linalg import eigh
from scipy.ndimage import minimum_filter1d

from calibration.rest_model import block_maxima

REST = "rest"


# ---------------------------------------------------------------------- features
def _whitened(C: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``L^-1 P`` with ``C = L L^T``: C ``(..., c, c)``, P ``(..., c, k)``."""
    C = C.astype(float)
    n = C.shape[-1]
    tr = np.trace(C, axis1=-2, axis2=-1)[..., None, None]
    L = np.linalg.cholesky(C + (1e-8 * tr / n) * np.eye(n))
    return np.linalg.solve(L, P.astype(float))


def cca_features(st: SessionStats, idx, bands, h: int, n_cca: int) -> np.ndarray:
    """Canonical correlations ``(n, len(bands) * n_freqs * n_cca)``."""
    C = st.C[idx][:, list(bands)]
    P = st.P[idx][:, list(bands)][..., : 2 * h]  # (n, b, c, f, r)
    M = _whitened(C, P.reshape(*P.shape[:3], -1)).reshape(P.shape)
    M = np.moveaxis(M, 3, 2)  # (n, b, f, c, r)
    s = np.linalg.svd(M, compute_uv=False)[..., :n_cca]
    return np.clip(s, 0, 1).reshape(len(s), -1)


def ress_filters(st_list, masks, y, band: int, h: int, nf: int, targets) -> np.ndarray:
    """RESS filters ``(n_ch, n_targets * nf)`` from training windows (unit-power windows)."""
    Cs = np.concatenate([st.C[m][:, band] for st, m in zip(st_list, masks)]).astype(float)
    Ps = np.concatenate([st.P[m][:, band] for st, m in zip(st_list, masks)]).astype(float)
    tr = np.trace(Cs, axis1=1, axis2=2)
    R = np.einsum("ncd,n->cd", Cs, 1 / tr)
    R = R + 1e-3 * np.trace(R) / len(R) * np.eye(len(R))
    out = []
    for k, lab in enumerate(targets):
        sel = y == lab if np.any(y == lab) else np.ones(len(y), bool)
        Pk = Ps[sel][:, :, k, : 2 * h]
        S = np.einsum("ncr,ndr,n->cd", Pk, Pk, 1 / tr[sel])
        _, v = eigh(S, R)
        out.append(v[:, ::-1][:, :nf])
    return np.concatenate(out, axis=1)


def ress_features(st: SessionStats, idx, W: np.ndarray, bands, h: int) -> np.ndarray:
    """Logit power fractions of every filter's output in every target's reference subspace,
    per sub-band ``(n, len(bands) * n_filters * n_freqs)``."""
    C = st.C[idx][:, list(bands)].astype(float)  # (n, b, c, c)
    P = st.P[idx][:, list(bands)][..., : 2 * h].astype(float)  # (n, b, c, f, r)
    tot = np.einsum("cq,nbcd,dq->nbq", W, C, W) + 1e-300
    Z = np.einsum("cq,nbcfr->nbqfr", W, P)
    frac = np.einsum("nbqfr,nbqfr->nbqf", Z, Z) / tot[..., None]
    frac = np.clip(frac, 1e-6, 1 - 1e-6)
    return np.log(frac / (1 - frac)).reshape(len(C), -1)


def snr_features(st: SessionStats, idx, W: np.ndarray, h: int, per_harmonic: bool
                 ) -> np.ndarray:
    """Log ratio of each RESS filter's power at every target harmonic to its power at the
    neighbouring frequencies (+-1 Hz), in the base sub-bands."""
    P = st.P[idx][:, :3][..., : 2 * h].astype(float)  # (n, b, c, f, 2h)
    N = st.PN[idx][..., : 2 * h].astype(float)  # (n, b, c, f, 2, 2h)
    Zs = np.einsum("cq,nbcfr->nbqfr", W, P)
    Zn = np.einsum("cq,nbcfsr->nbqfsr", W, N)
    ps = (Zs**2).reshape(*Zs.shape[:-1], h, 2).sum(-1)  # (n, b, q, f, h)
    pn = (Zn**2).reshape(*Zn.shape[:-1], h, 2).sum(-1).mean(-2)
    if not per_harmonic:
        ps, pn = ps.sum(-1), pn.sum(-1)
    return np.log((ps + 1e-12) / (pn + 1e-12)).reshape(len(P), -1)


def tangent_features(st: SessionStats, idx, bands, ref: list[np.ndarray]) -> np.ndarray:
    """Tangent-space vectors of trace-normalised filter-bank covariances at ``ref``."""
    from pyriemann.utils.tangentspace import tangent_space

    out = []
    for b, R in zip(bands, ref):
        C = st.C[idx][:, b].astype(float)
        C = C / np.trace(C, axis1=1, axis2=2)[:, None, None]
        C = C + 1e-6 * np.eye(C.shape[-1])
        out.append(tangent_space(C, R))
    return np.concatenate(out, axis=1)


# ---------------------------------------------------------------------- classifier
def fit_logreg(F: np.ndarray, y: np.ndarray, classes, C: float, sample_weight=None):
    """Multinomial L2 logistic regression on standardised features: (coef, intercept, mu, sd)."""
    from sklearn.linear_model import LogisticRegression

    mu = F.mean(axis=0)
    sd = F.std(axis=0) + 1e-12
    yi = np.array([list(classes).index(v) for v in y])
    lr = LogisticRegression(C=C, max_iter=3000).fit((F - mu) / sd, yi,
                                                    sample_weight=sample_weight)
    return lr.coef_ / sd, lr.intercept_ - (lr.coef_ / sd) @ mu


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@dataclass
class Config:
    """A decoder: features (CCA, RESS, covariance) and a logistic regression."""

    bands: tuple = (0, 1, 2)
    h: int = 3
    n_cca: int = 2
    nf: int = 2
    ress_band: int = 0  # band index (into the cache's bands) the filters are learned on
    ress_per_band: bool = False  # one set of filters per sub-band instead
    tangent: tuple = ()  # bands whose covariances add tangent-space features
    snr: str = ""  # "h": SNR features per harmonic, "sum": summed over harmonics
    C: float = 0.03
    classes: tuple = LABELS

    def name(self) -> str:
        return (f"b{''.join(map(str, self.bands))}-h{self.h}-cca{self.n_cca}-f{self.nf}"
                f"{'pb' if self.ress_per_band else ''}"
                f"{'-ts' + ''.join(map(str, self.tangent)) if self.tangent else ''}"
                f"{'-snr' + self.snr if self.snr else ''}-C{self.C:g}")


@dataclass
class Model:
    cfg: Config
    W: object = None  # filters: array, or list per band
    ref: list = field(default_factory=list)
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None

    def features(self, st: SessionStats, idx) -> np.ndarray:
        c = self.cfg
        F = []
        if c.n_cca:
            F.append(cca_features(st, idx, c.bands, c.h, c.n_cca))
        if c.nf:
            if c.ress_per_band:
                F.extend(ress_features(st, idx, w, (b,), c.h) for b, w in zip(c.bands, self.W))
            else:
                F.append(ress_features(st, idx, self.W, c.bands, c.h))
        if c.tangent:
            F.append(tangent_features(st, idx, c.tangent, self.ref))
        if c.snr:
            W = self.W[0] if c.ress_per_band else self.W
            F.append(snr_features(st, idx, W, min(c.h, 3), c.snr == "h"))
        return np.concatenate(F, axis=1)

    def fit_filters(self, st_list, masks, y):
        c = self.cfg
        targets = [lab for lab in c.classes if lab != REST]
        if c.nf:
            if c.ress_per_band:
                self.W = [ress_filters(st_list, masks, y, b, c.h, c.nf, targets)
                          for b in c.bands]
            else:
                self.W = ress_filters(st_list, masks, y, c.ress_band, c.h, c.nf, targets)
        if c.tangent:
            from pyriemann.utils.mean import mean_riemann

            self.ref = []
            for b in c.tangent:
                Cs = np.concatenate([st.C[m][:, b] for st, m in zip(st_list, masks)]).astype(
                    float)
                Cs = Cs / np.trace(Cs, axis1=1, axis2=2)[:, None, None] + 1e-6 * np.eye(
                    Cs.shape[-1])
                self.ref.append(mean_riemann(Cs[:: max(1, len(Cs) // 400)]))
        return self

    def fit(self, st_list, masks, y, sample_weight=None):
        """Fit filters and classifier on the masked windows of the sessions."""
        self.fit_filters(st_list, masks, y)
        F = np.concatenate([self.features(st, m) for st, m in zip(st_list, masks)])
        self.coef, self.intercept = fit_logreg(F, y, self.cfg.classes, self.cfg.C,
                                               sample_weight)
        return self

    def scores(self, st: SessionStats, idx=slice(None)) -> np.ndarray:
        return log_softmax(self.features(st, idx) @ self.coef.T + self.intercept)


def training_set(st_list, *, start=1.0, end=6.0, stride=0.5, shortest=None, classes=LABELS,
                 trials=None):
    """Masks and labels of the training windows of sessions (``trials``: per session, the cue
    indices to keep, None = all)."""
    masks, ys, tids = [], [], []
    for i, st in enumerate(st_list):
        m = st.train_mask(start, end, stride, shortest)
        ci = st.cue_index()
        lab = st.labels[np.clip(ci, 0, None)]
        m &= np.isin(lab, classes)
        if trials is not None and trials[i] is not None:
            m &= np.isin(ci, trials[i])
        masks.append(m)
        ys.append(lab[m])
        tids.append(ci[m] + 1000 * i)
    return masks, np.concatenate(ys), np.concatenate(tids)


def test_mask(st: SessionStats, *, tmin: float = 2.0) -> np.ndarray:
    """The conventional test window of each trial: the window starting ``tmin`` after the cue
    (nearest on the 0.1 s grid)."""
    m = np.zeros(len(st.t), bool)
    for on in st.onsets:
        j = int(np.argmin(np.abs(st.t - (on + tmin + st.window))))
        m[j] = True
    return m


# ---------------------------------------------------------------------- out of fold
def trial_folds(labels: np.ndarray, n_folds: int = 5, seed: int = 42) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels).astype(str)
    _, counts = np.unique(labels, return_counts=True)
    k = int(min(n_folds, counts.min()))
    folds = np.empty(len(labels), int)
    for f, (_, te) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(
            np.zeros(len(labels)), labels)):
        folds[te] = f
    return folds


def oof_scores(cfg: Config, st_list, *, fit_kw=None, extra=None, n_folds=5, seed=42):
    """Out-of-fold scores of every window of the sessions (a window is scored by the model
    that did not see the trial it ends in); ``extra``: (st_list, masks, y, weight) added to
    every fold's training set (e.g. other subjects)."""
    fit_kw = fit_kw or {}
    # trial table across sessions
    tl = [(i, j, lab) for i, st in enumerate(st_list) for j, lab in enumerate(st.labels)
          if lab in cfg.classes]
    folds = trial_folds([lab for _, _, lab in tl], n_folds, seed)
    fold_of = {(i, j): f for (i, j, _), f in zip(tl, folds)}
    out = [np.empty((len(st.t), len(cfg.classes))) for st in st_list]
    for f in range(folds.max() + 1):
        keep = [[j for (i2, j, _), fo in zip(tl, folds) if i2 == i and fo != f]
                for i in range(len(st_list))]
        masks, y, _ = training_set(st_list, trials=keep, classes=cfg.classes, **fit_kw)
        model = _fit_with_extra(cfg, st_list, masks, y, extra)
        for i, st in enumerate(st_list):
            ci = st.cue_index()
            w = np.array([fold_of.get((i, int(c)), 0) if c >= 0 else 0 for c in ci])
            sel = w == f
            if sel.any():
                out[i][sel] = model.scores(st, sel)
    return out


def _fit_with_extra(cfg, st_list, masks, y, extra):
    if extra is None:
        return Model(cfg).fit(st_list, masks, y)
    est, emasks, ey, ew = extra
    wts = np.concatenate([np.ones(len(y)), np.full(len(ey), ew)])
    return Model(cfg).fit(list(st_list) + list(est), list(masks) + list(emasks),
                          np.concatenate([y, ey]), sample_weight=wts)


# ---------------------------------------------------------------------- policy
class _Acc:
    __slots__ = ("cum", "mins")

    def __init__(self):
        self.cum = 0.0
        self.mins = deque()

    def clear(self):
        self.cum = 0.0
        self.mins.clear()

    def add(self, t, x, horizon):
        c0 = self.cum
        mins = self.mins
        while mins and mins[-1][1] >= c0:
            mins.pop()
        mins.append((t, c0))
        while mins and mins[0][0] < t - horizon + 1e-9:
            mins.popleft()
        self.cum = c0 + x
        v = self.cum - mins[0][1]
        return v if v > 0 else 0.0


@dataclass
class Policy:
    """The evidence policy (sliding CUSUM of target-vs-strongest-competitor log-posterior
    ratios, refractory, latching), as the deployed policy defines it."""

    threshold: float = 1.0
    drift: float = 0.1  # fraction of the threshold
    clip: float | None = 0.5  # fraction of the threshold
    horizon_s: float = 3.0
    refractory_s: float = 1.0
    release_s: float = 1.0

    def replay(self, t: np.ndarray, scores: np.ndarray, rest_idx: int = 3,
               trace: bool = False, commit: bool = True):
        """Commits ``[(t, class index)]`` (and the max evidence per window when ``trace``;
        ``commit=False``: the evidence of a policy that never commits)."""
        h = self.threshold
        drift = self.drift * h
        clip = None if self.clip is None else self.clip * h
        n, k = scores.shape
        targets = [i for i in range(k) if i != rest_idx]
        # evidence of each target vs its strongest competitor
        srt = np.sort(scores, axis=1)
        top = scores.argmax(axis=1)
        comp = np.where(np.arange(k)[None, :] == top[:, None], srt[:, -2:-1], srt[:, -1:])
        E = scores - comp
        if clip is not None:
            X = np.minimum(E, clip) - drift
        else:
            X = E - drift
        accs = {j: _Acc() for j in targets}
        last = -np.inf
        latched = -1
        away = None
        commits = []
        ev = np.zeros(n) if trace else None
        hor, ref, rel = self.horizon_s, self.refractory_s, self.release_s
        tl = t.tolist()
        Xl = X.tolist()
        for i in range(n):
            ti = tl[i]
            best_k, best_a = -1, 0.0
            xi = Xl[i]
            for j in targets:
                a = accs[j].add(ti, xi[j], hor)
                if j == latched:
                    # released once its evidence stays under half the threshold for release_s
                    if a >= 0.5 * h:
                        away = None
                    else:
                        if away is None:
                            away = ti
                        if ti - away >= rel:
                            latched, away = -1, None
                    if j == latched:
                        continue
                    accs[j].clear()
                    a = 0.0
                if a > best_a:
                    best_k, best_a = j, a
            if trace:
                ev[i] = best_a
            if best_k < 0 or best_a < h or not commit:
                continue
            if ti - last < ref:
                continue
            last = ti
            latched = best_k if rel > 0 else -1
            away = None
            for a in accs.values():
                a.clear()
            commits.append((ti, best_k))
        return (commits, ev) if trace else commits


# ---------------------------------------------------------------------- scoring
def trial_ends(onsets: np.ndarray, end_s: float) -> np.ndarray:
    gaps = np.diff(onsets)
    spacing = float(np.median(gaps))
    return np.append(onsets[1:], min(onsets[-1] + spacing, end_s))


def score(commits, st: SessionStats, classes=LABELS) -> dict:
    """Per-trial scoring (hit / wrong / none; false activations in rest trials)."""
    ends = trial_ends(st.onsets, st.end_s)
    ct = np.array([c[0] for c in commits], float)
    cl = [classes[c[1]] for c in commits]
    r = {"n_target": 0, "n_hit": 0, "n_wrong": 0, "n_none": 0, "rest_min": 0.0, "n_fa": 0,
         "times": [], "trial": []}
    for on, end, lab in zip(st.onsets, ends, st.labels):
        lo, hi = np.searchsorted(ct, [on, end], side="left")
        here = cl[lo:hi]
        if lab == REST:
            r["rest_min"] += (end - on) / 60
            r["n_fa"] += len(here)
            r["trial"].append(("rest", len(here)))
            continue
        r["n_target"] += 1
        if any(c != lab for c in here):
            r["n_wrong"] += 1
        if here and here[0] == lab:
            r["n_hit"] += 1
            r["times"].append(float(ct[lo] - on))
            r["trial"].append(("hit", float(ct[lo] - on)))
        elif not here:
            r["n_none"] += 1
            r["trial"].append(("none", None))
        else:
            r["trial"].append(("wrong", None))
    return r


def pool(rs) -> dict:
    out = {k: sum(r[k] for r in rs) for k in ("n_target", "n_hit", "n_wrong", "n_none",
                                              "rest_min", "n_fa")}
    times = [t for r in rs for t in r["times"]]
    out["hit"] = out["n_hit"] / max(out["n_target"], 1)
    out["wrong"] = out["n_wrong"] / max(out["n_target"], 1)
    out["fa_min"] = out["n_fa"] / out["rest_min"] if out["rest_min"] > 0 else float("nan")
    out["median"] = float(np.median(times)) if times else float("nan")
    out["times"] = times
    return out


def fmt(r: dict) -> str:
    return (f"hits {100 * r['hit']:5.1f} %  wrong {100 * r['wrong']:4.1f} %  "
            f"FA {r['fa_min']:4.2f}/min  median {r['median']:4.2f} s")


def replay_score(policy: Policy, st_list, scores_list, classes=LABELS) -> dict:
    rest_idx = list(classes).index(REST)
    return pool([score(policy.replay(st.t, sc, rest_idx), st, classes)
                 for st, sc in zip(st_list, scores_list)])


def choose_threshold(st_list, scores_list, budget: float, base: Policy, iterations: int = 22,
                     classes=LABELS) -> tuple[float, dict]:
    """Smallest threshold (log bisection) whose replay keeps false activations within the
    budget on the (calibration) streams."""
    import math

    def rate(h):
        p = Policy(h, base.drift, base.clip, base.horizon_s, base.refractory_s, base.release_s)
        return replay_score(p, st_list, scores_list, classes)

    lo, hi = math.log(1e-3), math.log(1e3)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if rate(math.exp(mid))["fa_min"] <= budget:
            hi = mid
        else:
            lo = mid
    return math.exp(hi), rate(math.exp(hi))


# ---------------------------------------------------------------------- rest evidence
def evidence_trace(t: np.ndarray, scores: np.ndarray, policy: Policy, h: float,
                   rest_idx: int = 3, step: float = 0.1) -> np.ndarray:
    """Largest accumulated evidence of any target over runs of windows within the horizon
    ending at each window (non-empty runs, so it can be negative), for a policy with
    threshold ``h`` that never commits: it reaches ``h`` exactly when the policy would."""
    srt = np.sort(scores, axis=1)
    top = scores.argmax(axis=1)
    k = scores.shape[1]
    comp = np.where(np.arange(k)[None, :] == top[:, None], srt[:, -2:-1], srt[:, -1:])
    E = np.delete(scores - comp, rest_idx, axis=1)
    X = (np.minimum(E, policy.clip * h) if policy.clip is not None else E) - policy.drift * h
    C = np.cumsum(X, axis=0)
    D = np.vstack([np.zeros((1, X.shape[1])), C[:-1]])  # C(u - 1)
    n = max(1, int(round(policy.horizon_s / step)))
    # trailing minimum over u in [i - n + 1, i]
    M = minimum_filter1d(D, size=n, axis=0, origin=(n - 1) // 2, mode="nearest")
    return np.max(C - M, axis=1)


def rest_intervals(st) -> list[tuple[float, float]]:
    ends = trial_ends(st.onsets, st.end_s)
    return [(float(a), float(b)) for a, b, lab in zip(st.onsets, ends, st.labels)
            if lab == REST]


def maxima_fn(st, sc, policy, block_s):
    iv = rest_intervals(st)

    def f(h):
        return block_maxima(st.t, evidence_trace(st.t, sc, policy, h), iv, block_s)
    return f




def evt_thresholds(keys, st, sc, policy: Policy, budget: float, *, block_s: float | None = None,
                   target: float | None = None, expected: bool = True) -> dict:
    """Threshold per (subject/cal/test) key from the rest-tail model of its calibration
    stream (``st[key + '/cal']``, ``sc[key + '/cal']``); the GEV shape pooled over the other
    subjects' calibration streams (at their empirical thresholds). ``target``: the predicted
    rate aimed at (default: the budget). Returns ``{key: (threshold, tail)}``."""
    from calibration.rest_model import pooled_shape, threshold_for_budget

    block_s = block_s or policy.horizon_s
    groups, fns = {}, {}
    for key in keys:
        cal = sc[key + "/cal"]
        ok = np.isfinite(cal).all(1)
        calst = _sub(st[key + "/cal"], ok)
        h0, _ = choose_threshold([calst], [cal[ok]], budget, policy)
        fns[key] = maxima_fn(calst, cal[ok], policy, block_s)
        groups[key] = fns[key](h0)
        if h0 < 0.01:
            groups.pop(key)
    # a stream whose rest never gives evidence (threshold at the bracket's floor) says
    # nothing about the tail: left out of the pooled shape
    degenerate = {k for k in keys if k not in groups}
    subjects = sorted({k.split("/")[0] for k in keys})
    shapes = {s: pooled_shape([g for k, g in groups.items()
                               if not k.startswith(s + "/") and k not in degenerate],
                              np.linspace(-0.5, 0.5, 21)) for s in subjects}
    out = {}
    for key in keys:
        xi, se = shapes[key.split("/")[0]]
        out[key] = threshold_for_budget(fns[key], target or budget, block_s=block_s,
                                        shape=xi, shape_sd=se, expected=expected)
    return out


def _sub(st, mask):
    from dataclasses import replace

    return replace(st, t=st.t[mask], C=st.C[:0], P=st.P[:0])
