"""Turning fold outcomes into the xarray Dataset that :func:`run_loso` returns.

Layout (dims ``fold`` = held-out subject, ``start`` = ``"warm"``/``"cold"``, ``term`` =
smooth block of the full-data fit, ``s(x)``, ``s(x):fA``, ``te(x,z)``; ``penalty`` =
smoothing parameter, named as :attr:`FitResult.rho_names <gamstore.fit.FitResult.rho_names>`:
the block's name for a block with one ρ, the block's name and the margin for a tensor
product's, ``te(x,z)[x]``, ``te(x,z):fA[z]``; coordinate ``penalty_term`` = its block):

* per fold and start: ``rho(fold, start, penalty)``, ``edf(fold, start, term)`` (the sum
  over the block's coefficients, however many ρ it has), ``edf_total``,
  ``reml``, ``scale`` (and ``theta``, negative binomial only; ``power``, Tweedie only), ``n_outer``, ``n_pirls_calls``, ``n_pirls_iters``, ``wall_time``,
  ``cpu_time``,
  ``warm_source`` (where the fit started), ``warm_decision`` (what the warm-start policy
  did and why), ``converged``, ``heldout_deviance``,
  ``heldout_n``, ``status``, ``error``, ``attempts``; the start check
  (:mod:`gamstore.fit.startcheck`): ``rho_moved``, ``cold_checked``, ``check_reasons``,
  ``start_disagree``, ``warm_reml``, ``cold_check_reml``, ``kept``; and ``fit_warnings``;
* the full-data fit: ``full_rho(penalty)``, ``full_edf(term)``, ``full_edf_total``,
  ``full_reml``, ``full_scale`` (``full_theta``, ``full_power``), ``full_n_outer``, ``full_n_pirls_calls``,
  ``full_n_pirls_iters``, ``full_wall_time``, ``full_warm_source``, ``full_warm_decision``
  (and the same numbers in ``attrs`` for a quick look, with ``warm_decisions``: each policy
  decision of the folds and how many folds made it);
* per row of the data (dim ``row``; coordinates ``input_row`` = position in the caller's
  data before rows with missing values were omitted, ``row_subject``): ``y_observed``,
  ``prior_weights`` (if any) and, per start, the held-out predictions ``pred_link``,
  ``pred_response`` with standard errors ``se_link``, ``se_response`` (from the fold that
  held the row out);
* cross-validation totals per start: ``cv_deviance``, ``cv_log_score``, ``cv_rmse``
  (Gaussian), ``cv_auc`` (binomial), ``cv_n``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from gamstore.loso.folds import FoldOutcome
from gamstore.rhonames import PARAMETRIC, penalty_block


def term_names(rho: np.ndarray, edf: Mapping[str, float]) -> list[str]:
    """Names for the smoothing parameters of a fitter without ``rho_names``: the smooth
    blocks' names when one per block, ``sp0``, ``sp1``... otherwise (its ρ order within a
    block is not known, so a tensor's margins are not named here)."""
    smooth = [name for name in edf if name != PARAMETRIC]
    if len(smooth) == len(rho):
        return smooth
    return [f"sp{i}" for i in range(len(rho))]


def penalty_names(
    rho: np.ndarray, edf: Mapping[str, float], names: Sequence[str] | None = None
) -> list[str]:
    """Names for the smoothing parameters: the fit's ``rho_names`` when it has one per ρ
    (gamstore's fitter), else :func:`term_names`."""
    if names is not None and len(names) == len(rho) and len(set(names)) == len(names):
        return [str(v) for v in names]
    return term_names(rho, edf)


def _label(value: Any) -> Any:
    """A plain Python scalar for a subject label (numpy scalars become int/float/str)."""
    return value.item() if isinstance(value, np.generic) else value


def build_dataset(
    subjects: Sequence[Any],
    starts: Sequence[str],
    outcomes: Sequence[FoldOutcome],
    full: Mapping[str, Any],
    attrs: Mapping[str, Any],
    rows: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Assemble the LOSO result Dataset.

    Parameters
    ----------
    subjects : sequence
        Held-out subject labels, in fold order.
    starts : sequence of str
        The starts that were run (``["warm"]``, ``["cold"]`` or ``["warm", "cold"]``).
    outcomes : sequence of FoldOutcome
        One per (subject, start) pair, in any order.
    full : mapping
        The full-data fit: ``rho``, ``edf`` (dict), ``reml``, ``scale``, ``n_outer``,
        ``n_pirls_calls``, ``n_pirls_iters``, ``wall_time``, ``warm_source``.
    attrs : mapping
        Strict-JSON-friendly run attributes (family, response, subject column, store URL...).
    rows : mapping, optional
        Per row of the LOSO data: ``y`` (response as fitted), ``weights`` (or None),
        ``subject`` labels and ``input_row`` (position in the caller's data, before rows
        with missing values were omitted). With it the Dataset gets the held-out
        predictions on a ``row`` dimension and the cross-validation totals.

    Returns
    -------
    xarray.Dataset
    """
    full_rho = np.asarray(full["rho"], dtype=np.float64)
    pens = penalty_names(full_rho, full["edf"], full.get("rho_names"))
    terms = [name for name in full["edf"] if name != PARAMETRIC]
    nf, ns, nt, npen = len(subjects), len(starts), len(terms), len(pens)
    pidx = {name: k for k, name in enumerate(pens)}
    fidx = {_label(s): i for i, s in enumerate(subjects)}
    sidx = {s: j for j, s in enumerate(starts)}

    def filled(value: Any, dtype: Any, *shape: int) -> np.ndarray:
        return np.full((nf, ns, *shape), value, dtype=dtype)

    rho = filled(np.nan, np.float64, npen)
    edf = filled(np.nan, np.float64, nt)
    floats = {
        k: filled(np.nan, np.float64)
        for k in ("edf_total", "reml", "scale", "theta", "power", "wall_time", "cpu_time")
    }
    floats["heldout_deviance"] = filled(np.nan, np.float64)
    for k in ("rho_moved", "warm_reml", "cold_check_reml"):
        floats[k] = filled(np.nan, np.float64)
    ints = {
        k: filled(-1, np.int64) for k in ("n_outer", "n_pirls_calls", "n_pirls_iters", "attempts")
    }
    ints["heldout_n"] = filled(0, np.int64)
    strs = {
        k: filled("", object)
        for k in (
            "warm_source",
            "warm_decision",
            "status",
            "error",
            "worker",
            "check_reasons",
            "kept",
        )
    }
    strs["fit_warnings"] = filled("", object)
    strs["status"][...] = "missing"
    converged = filled(False, bool)
    flags = {k: filled(False, bool) for k in ("cold_checked", "start_disagree")}

    for out in outcomes:
        i, j = fidx[_label(out.subject)], sidx[out.mode]
        names = list(getattr(out, "rho_names", None) or ())
        if out.ok and len(names) == out.rho.size and names and set(names) <= set(pidx):
            # by name: a fold without a by level's rows has that level's ρ missing (NaN)
            rho[i, j, [pidx[v] for v in names]] = out.rho
        elif out.ok and out.rho.shape == (npen,):
            rho[i, j] = out.rho
        if out.ok:
            edf[i, j] = [out.edf.get(t, np.nan) for t in terms]
            floats["edf_total"][i, j] = sum(out.edf.values()) if out.edf else np.nan
        for k in floats:
            if k != "edf_total":
                floats[k][i, j] = getattr(out, k)
        for k in flags:
            flags[k][i, j] = getattr(out, k)
        for k in ("check_reasons", "kept", "fit_warnings"):
            strs[k][i, j] = getattr(out, k)
        for k in ("n_outer", "n_pirls_calls", "n_pirls_iters", "attempts", "heldout_n"):
            ints[k][i, j] = getattr(out, k)
        strs["warm_source"][i, j] = out.warm_source
        strs["warm_decision"][i, j] = getattr(out, "warm_decision", "")
        strs["status"][i, j] = out.status
        strs["error"][i, j] = out.error
        strs["worker"][i, j] = out.worker
        converged[i, j] = out.converged

    dims = ("fold", "start")
    data_vars: dict[str, Any] = {
        "rho": ((*dims, "penalty"), rho, {"long_name": "log smoothing parameter (mgcv scale)"}),
        "edf": ((*dims, "term"), edf, {"long_name": "effective degrees of freedom of the block"}),
        "edf_total": (dims, floats["edf_total"], {"long_name": "total edf, all blocks"}),
        "reml": (dims, floats["reml"], {"long_name": "REML criterion (mgcv gcv.ubre scale)"}),
        "scale": (dims, floats["scale"], {"long_name": "scale estimate"}),
        "n_outer": (dims, ints["n_outer"], {"long_name": "outer (Newton) iterations"}),
        "n_pirls_calls": (dims, ints["n_pirls_calls"], {"long_name": "PIRLS calls"}),
        "n_pirls_iters": (dims, ints["n_pirls_iters"], {"long_name": "PIRLS iterations"}),
        "wall_time": (dims, floats["wall_time"], {"long_name": "fit wall time", "units": "s"}),
        "cpu_time": (
            dims,
            floats["cpu_time"],
            {"long_name": "CPU time of the fitting process during the fit", "units": "s"},
        ),
        "warm_source": (dims, strs["warm_source"], {"long_name": "warm-start level used"}),
        "warm_decision": (
            dims,
            strs["warm_decision"],
            {"long_name": "warm-start policy decision (lookup, save) and why"},
        ),
        "converged": (dims, converged, {"long_name": "outer loop converged"}),
        "heldout_deviance": (
            dims,
            floats["heldout_deviance"],
            {"long_name": "deviance of the held-out subject's rows"},
        ),
        "heldout_n": (dims, ints["heldout_n"], {"long_name": "held-out rows"}),
        "status": (dims, strs["status"], {"long_name": "ok | failed"}),
        "error": (dims, strs["error"], {"long_name": "error of the last failed attempt"}),
        "attempts": (dims, ints["attempts"], {"long_name": "attempts (1 + retries)"}),
        "worker": (dims, strs["worker"], {"long_name": "host:pid that ran the fit"}),
        "rho_moved": (
            dims,
            floats["rho_moved"],
            {"long_name": "max |rho - rho_start| of the warm run (log scale)"},
        ),
        "cold_checked": (
            dims,
            flags["cold_checked"],
            {"long_name": "a start from another fit was also fitted cold"},
        ),
        "check_reasons": (
            dims,
            strs["check_reasons"],
            {"long_name": "start-check triggers (rows, moved, indefinite, not-converged)"},
        ),
        "start_disagree": (
            dims,
            flags["start_disagree"],
            {"long_name": "warm-start and cold-check REML differ (the lower is kept)"},
        ),
        "warm_reml": (dims, floats["warm_reml"], {"long_name": "REML of the warm-start run"}),
        "cold_check_reml": (
            dims,
            floats["cold_check_reml"],
            {"long_name": "REML of the cold check (NaN when it did not run)"},
        ),
        "kept": (dims, strs["kept"], {"long_name": "run returned: warm | cold"}),
        "fit_warnings": (
            dims,
            strs["fit_warnings"],
            {"long_name": "warnings of the fit (gamstore.fit.diagnostics)"},
        ),
    }
    full_edf = np.array([float(full["edf"].get(t, np.nan)) for t in terms], dtype=np.float64)
    full_scalars = {
        "full_edf_total": float(sum(full["edf"].values())),
        "full_reml": float(full["reml"]),
        "full_scale": float(full["scale"]),
        "full_n_outer": int(full["n_outer"]),
        "full_n_pirls_calls": int(full["n_pirls_calls"]),
        "full_n_pirls_iters": int(full["n_pirls_iters"]),
        "full_wall_time": float(full["wall_time"]),
    }
    nb = str(attrs.get("family", "")) == "nb"
    if nb:  # negative binomial: each fit's theta (the held-out rows are scored at it)
        data_vars["theta"] = (dims, floats["theta"], {"long_name": "negative binomial theta"})
        full_scalars["full_theta"] = float(full.get("theta", np.nan))
    if str(attrs.get("family", "")) == "tw":  # Tweedie: each fit's power p, likewise
        data_vars["power"] = (dims, floats["power"], {"long_name": "Tweedie power p"})
        full_scalars["full_power"] = float(full.get("power", np.nan))
    data_vars["full_rho"] = (("penalty",), full_rho, {"long_name": "full-data log sp"})
    data_vars["full_edf"] = (("term",), full_edf, {"long_name": "full-data edf"})
    for k, v in full_scalars.items():
        data_vars[k] = ((), v)
    data_vars["full_warm_source"] = ((), str(full["warm_source"]))
    data_vars["full_warm_decision"] = ((), str(full.get("warm_decision", "")))
    if rows is not None:
        _add_predictions(data_vars, rows, starts, outcomes, attrs)
    labels = [_label(s) for s in subjects]
    coords: dict[str, Any] = {
        "fold": ("fold", np.asarray(labels), {"long_name": "held-out subject"}),
        "start": ("start", np.asarray(list(starts), dtype=object)),
        "term": ("term", np.asarray(terms, dtype=object), {"long_name": "smooth block"}),
        "penalty": (
            "penalty",
            np.asarray(pens, dtype=object),
            {"long_name": "smoothing parameter (block, and [margin] for a tensor product)"},
        ),
        "penalty_term": (
            "penalty",
            np.asarray([penalty_block(v, terms) for v in pens], dtype=object),
            {"long_name": "smooth block of the smoothing parameter"},
        ),
    }
    if rows is not None:
        n_rows = len(rows["y"])
        coords["row"] = ("row", np.arange(n_rows), {"long_name": "row of the LOSO data"})
        coords["input_row"] = (
            "row",
            np.asarray(rows["input_row"], dtype=np.int64),
            {"long_name": "row of the input data (before omitting missing values)"},
        )
        coords["row_subject"] = (
            "row",
            np.asarray([_label(v) for v in rows["subject"]]),
            {"long_name": "subject of the row (its held-out fold)"},
        )
    all_attrs = dict(attrs)
    all_attrs.update({k: v for k, v in full_scalars.items() if np.isfinite(v)})
    all_attrs["n_failed"] = int(np.sum(strs["status"] != "ok"))
    all_attrs["n_cold_checked"] = int(np.sum(flags["cold_checked"]))
    all_attrs["n_start_disagree"] = int(np.sum(flags["start_disagree"]))
    all_attrs["warm_decisions"] = _decision_summary(strs["warm_decision"])
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=all_attrs)


def _decision_summary(decisions: np.ndarray) -> str:
    """``"lookup skipped x9; looked up x1"``: each policy decision (the phrase before its
    numbers) with the number of folds that made it."""
    counts: dict[str, int] = {}
    for text in decisions.ravel():
        for part in str(text).split("; "):
            head = part.split(":")[0].split(" (")[0].strip()
            if head:
                counts[head] = counts.get(head, 0) + 1
    return "; ".join(f"{k} x{n}" for k, n in counts.items())


def _add_predictions(
    data_vars: dict[str, Any],
    rows: Mapping[str, Any],
    starts: Sequence[str],
    outcomes: Sequence[FoldOutcome],
    attrs: Mapping[str, Any],
) -> None:
    """Held-out predictions per row and start, and the cross-validation totals per start.

    Totals use the rows of folds that succeeded: ``cv_deviance`` (sum of the held-out
    deviances), ``cv_log_score`` (sum of the log predictive densities; Gaussian at each fold
    fit's scale; negative binomial at each fold's theta; Tweedie at each fold's scale and p), ``cv_rmse`` (Gaussian) and ``cv_auc`` (binomial), and ``cv_n`` rows.
    """
    from gamstore.loso.deviance import auc, deviance, log_density

    family = str(attrs.get("family", "gaussian"))
    y = np.asarray(rows["y"], dtype=np.float64)
    wt = None if rows.get("weights") is None else np.asarray(rows["weights"], dtype=np.float64)
    n, ns = y.size, len(starts)
    sidx = {st: j for j, st in enumerate(starts)}
    pred = {k: np.full((n, ns), np.nan) for k in ("link", "response", "se_link", "se_response")}
    scale = np.full((n, ns), np.nan)
    theta = np.full((n, ns), np.nan)
    power = np.full((n, ns), np.nan)
    for out in outcomes:
        r = np.asarray(out.heldout_rows, dtype=np.int64)
        if not out.ok or r.size == 0 or out.pred_response.shape != r.shape:
            continue
        j = sidx[out.mode]
        pred["link"][r, j] = out.pred_link
        pred["response"][r, j] = out.pred_response
        pred["se_link"][r, j] = out.se_link
        pred["se_response"][r, j] = out.se_response
        scale[r, j] = out.scale
        theta[r, j] = getattr(out, "theta", np.nan)
        power[r, j] = getattr(out, "power", np.nan)
    dims = ("row", "start")
    data_vars["y_observed"] = (
        ("row",),
        y,
        {"long_name": "observed response (binomial: proportion)"},
    )
    if wt is not None:
        data_vars["prior_weights"] = (("row",), wt, {"long_name": "prior weights (trials)"})
    data_vars["pred_link"] = (dims, pred["link"], {"long_name": "held-out prediction, link scale"})
    data_vars["pred_response"] = (
        dims,
        pred["response"],
        {"long_name": "held-out prediction, response scale"},
    )
    data_vars["se_link"] = (dims, pred["se_link"], {"long_name": "its standard error, link scale"})
    data_vars["se_response"] = (
        dims,
        pred["se_response"],
        {"long_name": "its standard error, response scale"},
    )
    totals: dict[str, np.ndarray] = {
        k: np.full(ns, np.nan) for k in ("cv_deviance", "cv_log_score", "cv_rmse", "cv_auc")
    }
    cv_n = np.zeros(ns, dtype=np.int64)
    for j in range(ns):
        ok = np.isfinite(pred["response"][:, j])
        cv_n[j] = int(ok.sum())
        if not ok.any():
            continue
        w = None if wt is None else wt[ok]
        mu = pred["response"][ok, j]
        th = theta[ok, j] if family == "nb" else None  # nb: each row at its fold's theta
        pw = power[ok, j] if family == "tw" else None  # tw: each row at its fold's p
        totals["cv_deviance"][j] = deviance(family, y[ok], mu, w, theta=th, power=pw)
        totals["cv_log_score"][j] = float(
            np.sum(log_density(family, y[ok], mu, w, scale[ok, j], theta=th, power=pw))
        )
        if family == "gaussian":
            totals["cv_rmse"][j] = float(np.sqrt(np.mean((y[ok] - mu) ** 2)))
        if family in ("binomial", "quasibinomial"):
            totals["cv_auc"][j] = auc(y[ok], mu, w)
    long = {
        "cv_deviance": "cross-validated deviance (sum over held-out rows)",
        "cv_log_score": "cross-validated log predictive density (sum over held-out rows)",
        "cv_rmse": "cross-validated root mean squared error (gaussian)",
        "cv_auc": "cross-validated area under the ROC curve (binomial)",
    }
    for k, v in totals.items():
        data_vars[k] = (("start",), v, {"long_name": long[k]})
    data_vars["cv_n"] = (("start",), cv_n, {"long_name": "held-out rows in the totals"})
