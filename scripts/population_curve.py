"""Calibration in a minute: a population decoder (rest class included) adapted with the first
minutes of a new user's data, leave-one-subject-out on the dev recordings.

For every held-out subject, the population model is trained on every session of the other
subjects. The user's data are the first ``n`` trials of each class of a calibration session
(``n = 0, 1, 2, 4, 8``: 0, about 0.4, 0.9, 1.7 and 3.5 minutes of cues at 6.5 s per trial),
the test session is another session of the user (the one before; the first: the one after).

Variants:
``user``    the calibrated decoder on the user's data alone (today's ``ress-fbcca``);
``pop``     the population model, no user data;
``map``     the population model adapted: the spatial filters from the user's and the
            population's covariances (``n0`` pseudo-windows of the population), the logistic
            regression fitted on the user's windows with a Gaussian prior centred on the
            population's coefficients (no population data needed at run time).

Stage ``windows``: sliding-window 4-class accuracy on the test session, per ``n``.

Usage: OMP_NUM_THREADS=1 nice python scripts/population_curve.py windows
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import eigh

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _research as rs  # noqa: E402
import _window_stats as ws  # noqa: E402
import weak_responders as wr  # noqa: E402

from bci.decoders.population import map_logreg  # noqa: E402

OUT = ws.REPO / "cache" / "population"
N_PER_CLASS = (0, 1, 2, 4, 8)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def first_trials(st, n: int, classes=rs.LABELS) -> np.ndarray:
    """Cue indices of the first ``n`` trials of each class."""
    keep = []
    for c in classes:
        keep.extend(np.flatnonzero(st.labels == c)[:n].tolist())
    return np.array(sorted(keep), int)


@dataclass
class Population:
    """A population model: filters' covariances, feature standardisation, coefficients."""

    cfg: rs.Config
    model: rs.Model
    R: np.ndarray  # (c, c) mean unit-power covariance
    S: list  # per target (c, c) mean projected covariance
    mu: np.ndarray
    sd: np.ndarray
    W0: np.ndarray  # standardised-space coefficients
    b0: np.ndarray
    n_windows: int


def _cov_stats(st_list, masks, y, band, h, targets):
    Cs = np.concatenate([st.C[m][:, band] for st, m in zip(st_list, masks)]).astype(float)
    Ps = np.concatenate([st.P[m][:, band] for st, m in zip(st_list, masks)]).astype(float)
    tr = np.trace(Cs, axis1=1, axis2=2)
    R = np.einsum("ncd,n->cd", Cs, 1 / tr) / len(Cs)
    S = []
    for k, lab in enumerate(targets):
        sel = y == lab
        Pk = Ps[sel][:, :, k, : 2 * h]
        S.append(np.einsum("ncr,ndr,n->cd", Pk, Pk, 1 / tr[sel]) / max(sel.sum(), 1))
    return R, S, len(Cs), [int((y == lab).sum()) for lab in targets]


def _filters(R, S, nf):
    R = R + 1e-3 * np.trace(R) / len(R) * np.eye(len(R))
    out = []
    for Sk in S:
        _, v = eigh(Sk, R)
        out.append(v[:, ::-1][:, :nf])
    return np.concatenate(out, axis=1)


def fit_population(cfg: rs.Config, st_list) -> Population:
    masks, y, _ = rs.training_set(st_list, classes=cfg.classes)
    model = rs.Model(cfg).fit(st_list, masks, y)
    targets = [c for c in cfg.classes if c != rs.REST]
    R, S, n, _ = _cov_stats(st_list, masks, y, cfg.ress_band, cfg.h, targets)
    F = np.concatenate([model.features(st, m) for st, m in zip(st_list, masks)])
    mu, sd = F.mean(0), F.std(0) + 1e-12
    W0 = model.coef * sd
    b0 = model.intercept + model.coef @ mu
    return Population(cfg, model, R, S, mu, sd, W0, b0, n)


def adapt(pop: Population, st_list, masks, y, *, n0: float, C: float | None = None) -> rs.Model:
    """The population model adapted to the user's windows (see the module doc)."""
    cfg = pop.cfg
    targets = [c for c in cfg.classes if c != rs.REST]
    model = rs.Model(cfg)
    if len(y) == 0:
        return pop.model
    R_u, S_u, n_u, n_k = _cov_stats(st_list, masks, y, cfg.ress_band, cfg.h, targets)
    a = n_u / (n_u + n0)
    R = a * R_u + (1 - a) * pop.R
    S = [(nk / (nk + n0 / len(targets))) * Su + (n0 / len(targets) / (nk + n0 / len(targets)))
         * Sp for nk, Su, Sp in zip(n_k, S_u, pop.S)]
    model.W = _filters(R, S, cfg.nf)
    F = np.concatenate([model.features(st, m) for st, m in zip(st_list, masks)])
    Z = (F - pop.mu) / pop.sd
    yi = np.array([list(cfg.classes).index(v) for v in y])
    W, b = map_logreg(Z, yi, pop.W0, pop.b0, C if C is not None else cfg.C)
    model.coef = W / pop.sd
    model.intercept = b - model.coef @ pop.mu
    return model


# ---------------------------------------------------------------------- stage: windows
def run_windows(window: float, variants: list[str]) -> dict:
    f = OUT / f"windows_w{window:g}.json"
    res = json.loads(f.read_text()) if f.exists() else {}
    allst = ws.load_all(window)
    cfg = rs.Config()
    t0 = time.perf_counter()
    for s, sts in allst.items():
        todo = [v for v in variants if f"{v}/{s}" not in res]
        if not todo:
            continue
        others = [st for o, v in allst.items() if o != s for st in v]
        pop = fit_population(cfg, others)
        for a, b in wr.pairs(sts):
            A, B = sts[a], sts[b]
            m, lab = wr.sliding_eval_mask(B)
            truth = lab[m]
            for n in N_PER_CLASS:
                keep = first_trials(A, n)
                masks, y, _ = rs.training_set([A], trials=[keep])
                models = {}
                if "pop" in todo:
                    models["pop"] = pop.model
                if "user" in todo and n >= 1:
                    models["user"] = rs.Model(cfg).fit([A], masks, y)
                for v in todo:
                    if v.startswith("map"):
                        n0, _, c = v[3:].partition("c")
                        models[v] = adapt(pop, [A], masks, y, n0=float(n0),
                                          C=float(c) if c else None)
                for name, model in models.items():
                    pred = np.asarray(cfg.classes)[model.scores(B, m).argmax(1)]
                    res.setdefault(f"{name}/{s}", {}).setdefault(str(n), []).append(
                        float(np.mean(pred == truth)))
        log(f"{s} done ({time.perf_counter() - t0:.0f} s)")
        OUT.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(res, indent=1))
    return res


# ---------------------------------------------------------------------- stage: online
def subset_oof(pop: Population, A, keep: np.ndarray, *, n0: float, C: float | None):
    """Out-of-fold scores of the windows of the user's calibration trials ``keep`` (NaN
    elsewhere): each trial's windows scored by the prior adapted without it (one trial out
    with up to 2 trials per class, else 5 folds stratified by class)."""
    labels = A.labels[keep]
    n_per = min(np.unique(labels, return_counts=True)[1])
    folds = (np.arange(len(keep)) if n_per <= 2
             else rs.trial_folds(labels, min(5, n_per)))
    out = np.full((len(A.t), len(pop.cfg.classes)), np.nan)
    ci = A.cue_index()
    for f in np.unique(folds):
        train = keep[folds != f]
        masks, y, _ = rs.training_set([A], trials=[train])
        model = adapt(pop, [A], masks, y, n0=n0, C=C)
        sel = np.isin(ci, keep[folds == f])
        out[sel] = model.scores(A, sel)
    return out


def nested_population_streams(allst, held: str, cfg: rs.Config) -> dict:
    """For every other subject o: its sessions scored by a population model trained without
    ``held`` and ``o`` (what a prior's own rest statistics would come from)."""
    out = {}
    for o, sts in allst.items():
        if o == held:
            continue
        train = [st for s, v in allst.items() if s not in (held, o) for st in v]
        pop = fit_population(cfg, train)
        out[o] = [(st, pop.model.scores(st)) for st in sts]
    return out


def _sub(st, mask):
    return rs._sub(st, mask)


def run_online(window: float, *, n0: float = 100.0, C: float | None = None,
               budget: float = 0.5, own_from: int = 4) -> dict:
    """Pseudo-online figures per minutes of user data (see the module doc). The threshold
    comes from the user's rest-tail model from ``own_from`` trials per class on (below: the
    population's)."""
    from calibration.rest_model import pooled_shape, threshold_for_budget

    f = OUT / f"online_w{window:g}{'' if own_from == 4 else f'_own{own_from}'}.json"
    res = json.loads(f.read_text()) if f.exists() else {}
    allst = ws.load_all(window)
    cfg = rs.Config()
    pol = rs.Policy()
    block_s = pol.horizon_s
    t0 = time.perf_counter()
    for s, sts in allst.items():
        if s in res:
            continue
        others = [st for o, v in allst.items() if o != s for st in v]
        pop = fit_population(cfg, others)
        nested = nested_population_streams(allst, s, cfg)
        # the population's rest evidence: shape, and pooled blocks at a threshold
        def prior_at(h, nested=nested):
            return np.concatenate([rs.maxima_fn(st, sc, pol, block_s)(h)
                                   for v in nested.values() for st, sc in v])
        h_e = {o: rs.choose_threshold([st for st, _ in v], [sc for _, sc in v], budget, pol)[0]
               for o, v in nested.items()}
        xi, se = pooled_shape([np.concatenate([rs.maxima_fn(st, sc, pol, block_s)(h_e[o])
                                               for st, sc in v]) for o, v in nested.items()
                               if h_e[o] >= 0.01], np.linspace(-0.5, 0.5, 21))
        # no user data: the population's own rest blocks (hundreds: shape fitted too)
        h_pop, tail_pop = threshold_for_budget(prior_at, budget, block_s=block_s)
        rows = {}
        for a, b in wr.pairs(sts):
            A, B = sts[a], sts[b]
            for n in N_PER_CLASS:
                keep = first_trials(A, n)
                if n < own_from:
                    # no user data, or too little rest (one trial: two blocks): the
                    # population's threshold
                    h, tail = h_pop, tail_pop
                    model = pop.model if n == 0 else None
                if n >= 1:
                    masks, y, _ = rs.training_set([A], trials=[keep])
                    model = adapt(pop, [A], masks, y, n0=n0, C=C)
                if n >= own_from:
                    oof = subset_oof(pop, A, keep, n0=n0, C=C)
                    ok = np.isfinite(oof).all(1)
                    Ast = _sub(A, ok)
                    rest_cues = keep[A.labels[keep] == rs.REST]
                    ends = rs.trial_ends(A.onsets, A.end_s)
                    iv = [(float(A.onsets[c]), float(ends[c])) for c in rest_cues]

                    def user_at(h, Ast=Ast, x=oof[ok], iv=iv):
                        from calibration.rest_model import block_maxima

                        return block_maxima(Ast.t, rs.evidence_trace(Ast.t, x, pol, h), iv,
                                            block_s)
                    h, tail = threshold_for_budget(user_at, budget, block_s=block_s,
                                                   shape=xi, shape_sd=se)
                p = rs.Policy(h, pol.drift, pol.clip, pol.horizon_s, pol.refractory_s,
                              pol.release_s)
                r = rs.score(p.replay(B.t, model.scores(B)), B)
                m, lab = wr.sliding_eval_mask(B)
                pred = np.asarray(cfg.classes)[model.scores(B, m).argmax(1)]
                r["acc"] = float(np.mean(pred == lab[m]))
                r["pred_fa"] = tail.expected_rate(h)[0]
                r.pop("trial")
                rows.setdefault(str(n), []).append(r)
        res[s] = rows
        log(f"online {s} ({time.perf_counter() - t0:.0f} s): " + " ".join(
            f"n={n}:{100 * rs.pool(v)['hit']:.0f}%/{rs.pool(v)['fa_min']:.1f}"
            for n, v in rows.items()))
        OUT.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(res, indent=1))
    return res


def report_online(res: dict) -> None:
    print("pseudo-online, population prior adapted with n trials per class of the user")
    for n in N_PER_CLASS:
        rows = [r for s in res for r in res[s][str(n)]]
        weak = rs.pool([r for s in wr.WEAK if s in res for r in res[s][str(n)]])
        print(f"n={n} ({n * 4 * 6.5 / 60:.1f} min): {rs.fmt(rs.pool(rows))}  acc "
              f"{100 * np.mean([r['acc'] for r in rows]):.1f} %  weak hits "
              f"{100 * weak['hit']:.1f} %")


def plot_curve(window: float, path: Path) -> None:
    """Accuracy and pseudo-online figures against minutes of the user's data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    win = json.loads((OUT / f"windows_w{window:g}.json").read_text())
    onl_f = OUT / f"online_w{window:g}.json"
    onl = json.loads(onl_f.read_text()) if onl_f.exists() else {}
    minutes = [n * 4 * 6.5 / 60 for n in N_PER_CLASS]
    subjects = sorted({k.split("/")[1] for k in win})
    fig, axes = plt.subplots(1, 3 if onl else 1, figsize=(14 if onl else 5.5, 4.3))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    for v, style in (("user", "o-"), ("map100", "s-"), ("pop", "--")):
        xs, ys = [], []
        for m, n in zip(minutes, N_PER_CLASS):
            acc = [np.mean(win[f"{v}/{s}"][str(n)]) for s in subjects
                   if str(n) in win.get(f"{v}/{s}", {})]
            if acc:
                xs.append(m)
                ys.append(100 * np.mean(acc))
        ax.plot(xs, ys, style, label={"user": "calibrated on the user only",
                                      "map100": "population prior adapted",
                                      "pop": "population prior, no user data"}[v])
    ax.set_xlabel("minutes of the user's cued data (trials x 6.5 s)")
    ax.set_ylabel("4-class window accuracy on the next session (%)")
    ax.set_title(f"{window:g} s windows, mean of 8 subjects (LOSO)", fontsize=9)
    ax.legend(fontsize=8)
    if onl:
        pooled = [rs.pool([r for s in onl for r in onl[s][str(n)]]) for n in N_PER_CLASS]
        weak = [rs.pool([r for s in wr.WEAK if s in onl for r in onl[s][str(n)]])
                for n in N_PER_CLASS]
        ax = axes[1]
        ax.plot(minutes, [100 * p["hit"] for p in pooled], "o-", label="hits, all")
        ax.plot(minutes, [100 * p["hit"] for p in weak], "s--", label="hits, 01 02 05 08")
        ax.plot(minutes, [100 * p["wrong"] for p in pooled], "x-", label="wrong, all")
        ax.set_xlabel("minutes of the user's cued data")
        ax.set_ylabel("% of target trials")
        ax.set_title("pseudo-online, next session, population prior adapted", fontsize=9)
        ax.legend(fontsize=8)
        ax = axes[2]
        ax.plot(minutes, [p["fa_min"] for p in pooled], "o-", label="observed")
        ax.axhline(0.5, color="k", ls=":", label="budget")
        ax2 = ax.twinx()
        ax2.plot(minutes, [p["median"] for p in pooled], "s-", color="C2", label="median")
        ax2.set_ylabel("median cue to command (s)", color="C2")
        ax.set_ylim(0, max(1.0, 1.2 * max(p["fa_min"] for p in pooled)))
        ax2.set_ylim(0, max(4.0, 1.2 * max(p["median"] for p in pooled)))
        ax.set_xlabel("minutes of the user's cued data")
        ax.set_ylabel("false activations per minute of rest")
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Calibration in a minute: population prior vs minutes of user data "
                 f"({ws.stamp()})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_windows(res: dict) -> None:
    variants = sorted({k.split("/")[0] for k in res})
    subjects = sorted({k.split("/")[1] for k in res})
    print("sliding-window 4-class accuracy % on the test session (mean over subjects; weak = "
          "01, 02, 05, 08) vs trials per class of user data")
    print(f"{'variant':<10}" + "".join(f"{'n=' + str(n):>14}" for n in N_PER_CLASS))
    for v in variants:
        cells = []
        for n in N_PER_CLASS:
            acc = [np.mean(res[f"{v}/{s}"][str(n)]) for s in subjects
                   if str(n) in res.get(f"{v}/{s}", {})]
            weak = [np.mean(res[f"{v}/{s}"][str(n)]) for s in wr.WEAK
                    if str(n) in res.get(f"{v}/{s}", {})]
            cells.append(f"{100 * np.mean(acc):6.1f} ({100 * np.mean(weak):4.1f})" if acc
                         else f"{'-':>13}")
        print(f"{v:<10}" + "".join(f"{c:>14}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=["windows", "online", "plot"])
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--variants", default="user,pop,map300,map1000,map3000")
    ap.add_argument("--out", default=None, help="PNG of the curve (stage plot)")
    ap.add_argument("--own-from", type=int, default=4,
                    help="trials per class from which the user's rest sets the threshold "
                         "(default 4, chosen leave-one-subject-out against 2)")
    a = ap.parse_args()
    if a.stage == "plot":
        out = Path(a.out) if a.out else OUT / f"population_curve_w{a.window:g}.png"
        plot_curve(a.window, out)
        print(out)
        return
    if a.stage == "online":
        report_online(run_online(a.window, own_from=a.own_from))
        return
    res = run_windows(a.window, a.variants.split(","))
    report_windows(res)


if __name__ == "__main__":
    main()
