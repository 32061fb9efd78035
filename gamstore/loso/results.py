"""Turning fold outcomes into the xarray Dataset that :func:`run_loso` returns.

Layout (dims ``fold`` = held-out subject, ``start`` = ``"warm"``/``"cold"``, ``term`` =
smoothing parameter):

* per fold and start: ``rho(fold, start, term)``, ``edf(fold, start, term)``, ``edf_total``,
  ``reml``, ``scale``, ``n_outer``, ``n_pirls_calls``, ``n_pirls_iters``, ``wall_time``,
  ``cpu_time``,
  ``warm_source`` (where the fit started), ``converged``, ``heldout_deviance``,
  ``heldout_n``, ``status``, ``error``, ``attempts``; the start check
  (:mod:`gamstore.fit.startcheck`): ``rho_moved``, ``cold_checked``, ``check_reasons``,
  ``start_disagree``, ``warm_reml``, ``cold_check_reml``, ``kept``; and ``fit_warnings``;
* the full-data fit: ``full_rho(term)``, ``full_edf(term)``, ``full_edf_total``,
  ``full_reml``, ``full_scale``, ``full_n_outer``, ``full_n_pirls_calls``,
  ``full_n_pirls_iters``, ``full_wall_time``, ``full_warm_source`` (and the same numbers in
  ``attrs`` for a quick look).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from gamstore.loso.folds import FoldOutcome

PARAMETRIC = "(parametric)"


def term_names(rho: np.ndarray, edf: Mapping[str, float]) -> list[str]:
    """Names for the smoothing parameters: the smooth blocks' names when one per block."""
    smooth = [name for name in edf if name != PARAMETRIC]
    if len(smooth) == len(rho):
        return smooth
    return [f"sp{i}" for i in range(len(rho))]


def _label(value: Any) -> Any:
    """A plain Python scalar for a subject label (numpy scalars become int/float/str)."""
    return value.item() if isinstance(value, np.generic) else value


def build_dataset(
    subjects: Sequence[Any],
    starts: Sequence[str],
    outcomes: Sequence[FoldOutcome],
    full: Mapping[str, Any],
    attrs: Mapping[str, Any],
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

    Returns
    -------
    xarray.Dataset
    """
    full_rho = np.asarray(full["rho"], dtype=np.float64)
    terms = term_names(full_rho, full["edf"])
    nf, ns, nt = len(subjects), len(starts), len(terms)
    fidx = {_label(s): i for i, s in enumerate(subjects)}
    sidx = {s: j for j, s in enumerate(starts)}

    def filled(value: Any, dtype: Any, *shape: int) -> np.ndarray:
        return np.full((nf, ns, *shape), value, dtype=dtype)

    rho = filled(np.nan, np.float64, nt)
    edf = filled(np.nan, np.float64, nt)
    floats = {
        k: filled(np.nan, np.float64)
        for k in ("edf_total", "reml", "scale", "wall_time", "cpu_time")
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
        for k in ("warm_source", "status", "error", "worker", "check_reasons", "kept")
    }
    strs["fit_warnings"] = filled("", object)
    strs["status"][...] = "missing"
    converged = filled(False, bool)
    flags = {k: filled(False, bool) for k in ("cold_checked", "start_disagree")}

    for out in outcomes:
        i, j = fidx[_label(out.subject)], sidx[out.mode]
        if out.ok and out.rho.shape == (nt,):
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
        strs["status"][i, j] = out.status
        strs["error"][i, j] = out.error
        strs["worker"][i, j] = out.worker
        converged[i, j] = out.converged

    dims = ("fold", "start")
    data_vars: dict[str, Any] = {
        "rho": ((*dims, "term"), rho, {"long_name": "log smoothing parameter (mgcv scale)"}),
        "edf": ((*dims, "term"), edf, {"long_name": "effective degrees of freedom"}),
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
    data_vars["full_rho"] = (("term",), full_rho, {"long_name": "full-data log sp"})
    data_vars["full_edf"] = (("term",), full_edf, {"long_name": "full-data edf"})
    for k, v in full_scalars.items():
        data_vars[k] = ((), v)
    data_vars["full_warm_source"] = ((), str(full["warm_source"]))
    labels = [_label(s) for s in subjects]
    coords = {
        "fold": ("fold", np.asarray(labels), {"long_name": "held-out subject"}),
        "start": ("start", np.asarray(list(starts), dtype=object)),
        "term": ("term", np.asarray(terms, dtype=object)),
    }
    all_attrs = dict(attrs)
    all_attrs.update({k: v for k, v in full_scalars.items() if np.isfinite(v)})
    all_attrs["n_failed"] = int(np.sum(strs["status"] != "ok"))
    all_attrs["n_cold_checked"] = int(np.sum(flags["cold_checked"]))
    all_attrs["n_start_disagree"] = int(np.sum(flags["start_disagree"]))
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=all_attrs)
