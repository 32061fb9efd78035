"""LOSO result labels for blocks with more than one smoothing parameter (te/ti, one ρ per
margin; a factor ``by`` on a tensor, one per margin and level).

The Dataset's ``edf(term)`` is per smooth block (the sum over the block's coefficients, as
``FitResult.edf``), and ``rho(penalty)`` is named as ``FitResult.rho_names``
(``te(x,z)[x]``, ``te(x,z):fA[z]``; the ``knots`` keys' convention), with ``penalty_term``
naming each ρ's block. Before, such a model gave ``sp0, sp1, ...`` and an all-NaN ``edf``.
Real data: the mgcv parity cases of tests/fixtures/terms/terms.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import parity

import gamstore
from gamstore.fit import GAM, s, te
from gamstore.loso import run_loso
from gamstore.loso.folds import FoldOutcome
from gamstore.loso.results import build_dataset

sup = parity.suite("terms")
TE = "te(Temp,Wind)"


def _fold_fit(gam: GAM, data, y: str, subject: str, fold, knots):  # type: ignore[no-untyped-def]
    train = data[data[subject] != fold].reset_index(drop=True)
    return gam.fit(train, y=y, knots=knots)


def test_loso_te_labels_rho_by_margin_and_edf_per_block(tmp_path: Path) -> None:
    """airquality, te(Temp, Wind) + s(Month, bs="re"), LOSO by month (mgcv case
    ``airquality_te_re_Month``)."""
    case = sup.cases()["airquality_te_re_Month"]
    data = sup.frame(case)
    gam = GAM([te("Temp", "Wind", k=5), s("Month", bs="re")])
    store = gamstore.open_store(str(tmp_path))
    ds = run_loso(data, gam, subject="Month", y="Ozone", store=store, progress=False)
    full = gam.fit(data, y="Ozone")
    names = [f"{TE}[Temp]", f"{TE}[Wind]", "s(Month)"]
    assert full.rho_names == names
    assert list(ds["penalty"].values) == names
    assert list(ds["penalty_term"].values) == [TE, TE, "s(Month)"]
    assert list(ds["term"].values) == [TE, "s(Month)"] == full.block_names[1:]
    assert ds["rho"].dims == ("fold", "start", "penalty")
    assert ds["edf"].dims == ("fold", "start", "term")
    np.testing.assert_allclose(ds["full_rho"].values, full.rho, rtol=1e-6, atol=1e-6)
    # per block, as FitResult.edf, and as mgcv's (the te's edf sums its 24 coefficients)
    np.testing.assert_allclose(
        ds["full_edf"].values, [full.edf[TE], full.edf["s(Month)"]], rtol=1e-6
    )
    np.testing.assert_allclose(ds["full_edf"].values, case["mgcv"]["edf"], rtol=5e-3)
    np.testing.assert_allclose(
        float(ds["full_edf"].sel(term=TE)), full.edf_coef[1:25].sum(), rtol=1e-6
    )
    assert int(ds.attrs["n_failed"]) == 0
    assert np.isfinite(ds["edf"].values).all() and np.isfinite(ds["rho"].values).all()
    # each fold's edf and ρ per name, as the fold's own fit (cold, at the full data's knots)
    for fold in ds["fold"].values[:2]:
        own = _fold_fit(gam, data, "Ozone", "Month", fold, full.knots)
        got = ds.sel(fold=fold, start="warm")
        np.testing.assert_allclose(
            got["edf"].values, [own.edf[t] for t in got["term"].values], rtol=1e-3
        )
        np.testing.assert_allclose(got["edf_total"].item(), own.edf_total, rtol=1e-3)
        by_name = dict(zip(own.rho_names, own.rho, strict=True))
        np.testing.assert_allclose(
            got["rho"].values, [by_name[p] for p in got["penalty"].values], atol=1e-2
        )


def test_loso_factor_by_tensor_labels_each_level_and_margin(tmp_path: Path) -> None:
    """quakes, Poisson, te(lat, long, by = deep) (mgcv case ``quakes_te_by_deep_poisson``),
    LOSO over 5 interleaved groups of events: one block per level, two ρ each."""
    qk = sup.frame(sup.cases()["quakes_te_by_deep_poisson"])
    data = qk.assign(group=np.arange(len(qk)) % 5)
    gam = GAM([te("lat", "long", k=4, by="deep")], family="poisson", linear=["deep"])
    ds = run_loso(data, gam, subject="group", y="stations", store=str(tmp_path), progress=False)
    full = gam.fit(data, y="stations")
    blocks = full.block_names[1:]
    assert len(blocks) == 2 and all(b.startswith("te(lat,long):deep") for b in blocks)
    names = [f"{b}[{m}]" for b in blocks for m in ("lat", "long")]
    assert full.rho_names == names == list(ds["penalty"].values)
    assert list(ds["penalty_term"].values) == [b for b in blocks for _ in range(2)]
    assert list(ds["term"].values) == blocks
    np.testing.assert_allclose(ds["full_edf"].values, [full.edf[b] for b in blocks], rtol=1e-6)
    assert int(ds.attrs["n_failed"]) == 0
    assert np.isfinite(ds["edf"].values).all() and np.isfinite(ds["rho"].values).all()
    own = _fold_fit(gam, data, "stations", "group", 0, full.knots)
    got = ds.sel(fold=0, start="warm")
    np.testing.assert_allclose(got["edf"].values, [own.edf[b] for b in blocks], rtol=1e-3)


def _outcome(subject: int, rho: list[float], names: list[str]) -> FoldOutcome:
    out = FoldOutcome(subject=subject, mode="warm", status="ok")
    out.rho, out.rho_names = np.asarray(rho), names
    out.edf = {"(parametric)": 1.0, TE: 9.0 + subject, "s(Month)": 2.0}
    return out


def test_build_dataset_places_fold_rho_by_name_and_edf_by_block() -> None:
    """A fold's ρ goes to the full fit's penalty of the same name (a fold whose fit has a
    ρ fewer leaves it NaN); a fitter without ``rho_names`` keeps per-block edf and numbers
    its ρ ``sp0, sp1, ...``."""
    names = [f"{TE}[Temp]", f"{TE}[Wind]", "s(Month)"]
    full = {
        "rho": np.array([1.0, 2.0, 3.0]),
        "rho_names": names,
        "edf": {"(parametric)": 1.0, TE: 10.0, "s(Month)": 2.0},
        "reml": 1.0, "scale": 1.0, "n_outer": 1, "n_pirls_calls": 1, "n_pirls_iters": 1,
        "wall_time": 0.0, "warm_source": "cold",
    }  # fmt: skip
    outs = [_outcome(0, [5.0, 4.0, 6.0], names), _outcome(1, [7.0, 8.0], names[:2])]
    ds = build_dataset([0, 1], ["warm"], outs, full, {"family": "gaussian"})
    np.testing.assert_array_equal(ds["rho"].sel(fold=0, start="warm").values, [5.0, 4.0, 6.0])
    got = ds["rho"].sel(fold=1, start="warm").values
    np.testing.assert_array_equal(got[:2], [7.0, 8.0])
    assert np.isnan(got[2])
    np.testing.assert_array_equal(ds["edf"].sel(start="warm").values, [[9.0, 2.0], [10.0, 2.0]])
    np.testing.assert_array_equal(ds["full_edf"].values, [10.0, 2.0])
    bare = {k: v for k, v in full.items() if k != "rho_names"}
    for out in outs:
        out.rho_names = []
    ds = build_dataset([0, 1], ["warm"], outs[:1], bare, {"family": "gaussian"})
    assert list(ds["penalty"].values) == ["sp0", "sp1", "sp2"]
    assert list(ds["penalty_term"].values) == ["", "", ""]
    np.testing.assert_array_equal(ds["edf"].sel(fold=0, start="warm").values, [9.0, 2.0])
    np.testing.assert_array_equal(ds["rho"].sel(fold=0, start="warm").values, [5.0, 4.0, 6.0])
