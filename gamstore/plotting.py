"""Plots of a LOSO result (needs the optional ``fit`` extra: matplotlib).

The figure is built on :class:`matplotlib.figure.Figure` directly (no pyplot), so plotting
neither needs a display nor changes the caller's matplotlib backend.
"""

from __future__ import annotations

import logging
from os import PathLike
from typing import Any

import numpy as np
import xarray as xr

logger = logging.getLogger("gamstore.plotting")

_REQUIRED = ("rho", "full_rho", "n_outer", "wall_time", "status")


def plot_loso(ds: xr.Dataset, path: str | PathLike[str] | None = None, *, dpi: int = 110) -> Any:
    """Plot a :func:`gamstore.loso.run_loso` result.

    Three panels: ρ per fold against the full-data ρ (one colour per smoothing parameter, the full-data value
    as a dashed line); outer iterations per fold, cold against warm; fit wall time per fold,
    cold against warm. Failed folds are left out (gaps).

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset returned by ``run_loso`` (dims ``fold``, ``start``, ``penalty``).
    path : str or os.PathLike, optional
        Write the figure there (format from the suffix, e.g. ``.png``).
    dpi : int
        Resolution when saving.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds: expected the xarray.Dataset of run_loso, got {type(ds).__name__}")
    missing = [v for v in _REQUIRED if v not in ds]
    if missing:
        raise ValueError(f"ds: not a run_loso result, missing variables {missing}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = ds["status"] == "ok"
    starts = [str(s) for s in ds["start"].values]
    folds = [str(f) for f in ds["fold"].values]
    x = np.arange(len(folds))
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_rho, ax_it, ax_t = fig.subplots(1, 3)

    # rho: the warm fits if present (they are what the user keeps), else the first start
    shown = "warm" if "warm" in starts else starts[0]
    rho = ds["rho"].where(ok).sel(start=shown)
    dim = "penalty" if "penalty" in ds["rho"].dims else "term"  # older Datasets: one ρ a term
    colors = [f"C{i % 10}" for i in range(ds.sizes[dim])]
    for t, term in enumerate(ds[dim].values):
        ax_rho.plot(x, rho.isel({dim: t}).values, "o", color=colors[t], label=str(term))
        ax_rho.axhline(float(ds["full_rho"].values[t]), color=colors[t], ls="--", lw=1)
    ax_rho.set_title(f"log sp per fold ({shown}); dashed: full data")
    ax_rho.set_xlabel("held-out subject")
    ax_rho.set_ylabel("ρ = log sp")
    ax_rho.legend(fontsize="small")

    width = 0.8 / len(starts)
    hatch = {"cold": "C7", "warm": "C0"}
    for j, start in enumerate(starts):
        offset = (j - (len(starts) - 1) / 2) * width
        it = ds["n_outer"].where(ok).sel(start=start).values.astype(float)
        ms = 1e3 * ds["wall_time"].where(ok).sel(start=start).values
        color = hatch.get(start, f"C{j + 2}")
        ax_it.bar(x + offset, it, width, label=f"{start} (total {np.nansum(it):.0f})", color=color)
        ax_t.bar(
            x + offset, ms, width, label=f"{start} (total {np.nansum(ms):.0f} ms)", color=color
        )
    ax_it.set_title("outer iterations per fold")
    ax_it.set_ylabel("iterations")
    ax_t.set_title("fit wall time per fold")
    ax_t.set_ylabel("ms")
    for ax in (ax_rho, ax_it, ax_t):
        ax.set_xticks(x, folds, fontsize="small")
    for ax in (ax_it, ax_t):
        ax.set_xlabel("held-out subject")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 1.2)  # headroom for the legend above the bars
        ax.legend(fontsize="small", loc="upper center", ncols=len(starts))
    family = ds.attrs.get("family", "")
    fig.suptitle(f"gamstore LOSO: {family}, {len(folds)} folds")
    if path is not None:
        fig.savefig(path, dpi=dpi)
        logger.info("wrote LOSO plot to %s", path)
    return fig


def smooth_curves(res: Any, n_grid: int = 100) -> list[dict[str, Any]]:
    """Per smooth of a fit: grid, estimate and standard error of the centred term.

    As mgcv's ``plot.gam`` (``seWithMean = FALSE``): the term's own contribution
    ``X_j(x) beta_j`` over an even grid of the covariate's range, with the standard error
    from the term's block of ``Vp``.

    Returns
    -------
    list of dict
        ``label``, ``term``, ``edf``, ``x`` (grid), ``fit``, ``se``, ``data`` (the covariate
        values of the fit, for a rug).
    """
    d = res._design
    vp_w = res._pieces.Hinv * float(res.scale)
    beta_w = d.from_reduced(res.beta_reduced)
    out = []
    for b in d.smooths:
        if not b.has_knots or len(b.spec.covariates_of) > 1:
            # a random effect, a surface s(x, z) or a tensor product has no curve to draw; a
            # by-smooth draws its curve in x (mgcv: the level's smooth, the coefficient
            # function of a numeric by)
            continue
        xs = d.covariates.get(b.spec.term, np.zeros(0))
        lo, hi = (float(b.basis.knots[3]), float(b.basis.knots[-4]))
        if xs.size:
            lo, hi = float(xs.min()), float(xs.max())
        grid = np.linspace(lo, hi, n_grid)
        Xg = b.basis.design(grid, extrapolate=True) @ b.U
        V = vp_w[b.cols, b.cols]
        out.append(
            {
                "label": b.label,
                "term": b.spec.term,
                "edf": float(res.edf[b.label]),
                "x": grid,
                "fit": Xg @ beta_w[b.cols],
                "se": np.sqrt(np.maximum(np.einsum("ij,ij->i", Xg @ V, Xg), 0.0)),
                "data": xs,
            }
        )
    return out


def plot_smooths(
    res: Any,
    path: str | PathLike[str] | None = None,
    *,
    n_grid: int = 100,
    ncols: int | None = None,
    rug: bool = True,
    dpi: int = 110,
) -> Any:
    """One panel per smooth of a fitted GAM: estimate, ±2 standard errors, rug.

    Parameters
    ----------
    res : gamstore.fit.FitResult
        A fit.
    path : str or os.PathLike, optional
        Write the figure there (format from the suffix, e.g. ``.png``).
    n_grid : int
        Grid points per smooth.
    ncols : int, optional
        Panels per row (default: up to 3).
    rug : bool
        Mark the covariate values of the data along the x axis.
    dpi : int
        Resolution when saving.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = smooth_curves(res, n_grid)
    if not curves:
        raise ValueError("res: the model has no smooth terms to plot")
    ncols = ncols or min(3, len(curves))
    nrows = -(-len(curves) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, c in zip(axes, curves, strict=False):
        ax.plot(c["x"], c["fit"], color="k", lw=1.5)
        ax.plot(c["x"], c["fit"] + 2 * c["se"], color="k", lw=1, ls="--")
        ax.plot(c["x"], c["fit"] - 2 * c["se"], color="k", lw=1, ls="--")
        if rug and c["data"].size:
            ax.plot(
                c["data"],
                np.zeros_like(c["data"]),
                "|",
                color="k",
                ms=8,
                alpha=0.5,
                transform=ax.get_xaxis_transform(),
            )
        ax.set_xlabel(c["term"])
        ax.set_ylabel(f"s({c['term']},{c['edf']:.2f})")
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    if path is not None:
        fig.savefig(path, dpi=dpi)
        logger.info("wrote %s", path)
    return fig
