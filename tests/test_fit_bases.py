"""The basis interface (gamstore.fit.bases): registry, each basis's defining properties, and
fits with every ``bs`` through GAM. mgcv parity on real data: tests/test_fit_bases_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from gamstore.fit import GAM, s
from gamstore.fit.bases import basis_names, constrain, get_basis_type
from gamstore.fit.bases.cc import cwrap, place_knots
from gamstore.fit.bases.cr import r_quantile7
from gamstore.fit.bases.tp import householder_qt, lanczos_start, tp_setup
from gamstore.fit.basis import bspline_design, ps_knots

# exact float64 data (no generator): a covariate with ties and a response
X = np.array(
    [0.5, 1.25, 1.25, 2.0, 2.75, 3.5, 4.0, 4.5, 5.25, 6.0, 6.5, 7.25, 8.0, 8.75, 9.5, 10.0]
    + [10.75, 11.5, 12.0, 12.5, 13.25, 14.0, 14.5, 15.0, 15.75, 16.5, 17.0, 17.75, 18.5, 19.0]
)
Y = np.array(
    [1.2, 1.9, 1.7, 2.8, 3.1, 3.9, 3.6, 4.4, 4.1, 3.8, 3.2, 2.9, 2.1, 1.6, 1.1, 0.9]
    + [0.4, 0.7, 1.0, 1.6, 2.2, 2.9, 3.3, 3.9, 4.6, 4.8, 5.1, 4.7, 4.2, 3.8]
)


def test_registry_lists_the_builtin_bases_and_names_an_unknown_one() -> None:
    assert basis_names() == ["cc", "cp", "cr", "ps", "tp"]
    with pytest.raises(ValueError, match=r"bs must be one of .*'tp'.*got 'xx'"):
        get_basis_type("xx")
    with pytest.raises(ValueError, match=r"bs='cr'.*k must be an integer >= 3"):
        s("x", k=2, bs="cr")


@pytest.mark.parametrize("bs", ["ps", "tp", "cr", "cc", "cp"])
def test_constrained_basis_is_centred_and_its_penalty_has_the_stated_rank(bs: str) -> None:
    impl = get_basis_type(bs).construct(X, 8, None)
    B = impl.raw_design(X)
    assert B.shape == (X.size, impl.width)
    sb = constrain(impl, B)
    Xr = B @ sb.T
    # sum-to-zero: every constrained column has mean zero on the fit's rows
    assert np.abs(Xr.mean(axis=0)).max() < 1e-12 * np.abs(Xr).max()
    assert np.linalg.matrix_rank(impl.penalty, tol=1e-9 * np.abs(impl.penalty).max()) == impl.rank
    # mgcv's scaling: norm(S_raw, "O") equals norm(B, "I")^2
    assert np.abs(sb.S_raw).sum(axis=0).max() == pytest.approx(np.abs(B).sum(axis=1).max() ** 2)
    # the knots reproduce the basis
    again = get_basis_type(bs).construct(X, 8, impl.knots)
    np.testing.assert_allclose(again.raw_design(X), B, atol=1e-10 * np.abs(B).max())


def test_ps_through_the_interface_is_the_bspline_engine() -> None:
    impl = get_basis_type("ps").construct(X, 10, None)
    t = ps_knots(float(X.min()), float(X.max()), 10)
    assert np.array_equal(impl.knots, t)
    assert np.array_equal(impl.raw_design(X), bspline_design(X, t))


def test_cr_coefficients_are_values_at_the_knots_and_linear_functions_are_unpenalized() -> None:
    impl = get_basis_type("cr").construct(X, 6, None)
    # at its knots the basis is the identity (coefficients = function values)
    np.testing.assert_allclose(impl.raw_design(impl.knots), np.eye(6), atol=1e-14)
    lin = 2.0 + 0.5 * impl.knots
    assert abs(lin @ impl.penalty @ lin) < 1e-12
    # knots: R's quantile(unique(x), seq(0, 1, length = 6))
    xu = np.unique(X)
    np.testing.assert_allclose(impl.knots, np.quantile(xu, np.linspace(0, 1, 6)), rtol=1e-15)
    # beyond the knots: linear
    far = impl.raw_design(np.array([25.0, 30.0, 35.0]))
    np.testing.assert_allclose(far[2] - far[1], far[1] - far[0], atol=1e-12)


@pytest.mark.parametrize("bs", ["cc", "cp"])
def test_cyclic_bases_repeat_with_the_period(bs: str) -> None:
    impl = get_basis_type(bs).construct(X, 8, np.array([0.0, 20.0]))
    assert impl.knots[0] == 0.0 and impl.knots[-1] == 20.0
    B0, B1 = impl.raw_design(np.array([0.0, 3.3])), impl.raw_design(np.array([20.0, 23.3]))
    np.testing.assert_allclose(B0, B1, atol=1e-13)
    # constants are the penalty's null space
    one = np.ones(impl.width)
    assert abs(one @ impl.penalty @ one) < 1e-10
    assert get_basis_type(bs).periodic


def test_place_knots_and_cwrap_follow_mgcv() -> None:
    # mgcv: place.knots(1:10, 4) = c(1, 4, 7, 10); cwrap(0, 12, 13.5) = 1.5
    np.testing.assert_array_equal(place_knots(np.arange(1.0, 11.0), 4), [1.0, 4.0, 7.0, 10.0])
    np.testing.assert_array_equal(cwrap(0.0, 12.0, np.array([13.5, -0.5, 6.0])), [1.5, 11.5, 6.0])
    # R: sprintf("%.17g", quantile(0:4, 0.3)) is 1.2000000000000002 (its own rounding)
    q = r_quantile7(np.arange(5.0), np.array([0.0, 0.3, 1.0]))
    np.testing.assert_array_equal(q, [0.0, 1.2000000000000002, 4.0])


def test_householder_qt_gives_a_reverse_triangular_factor() -> None:
    A = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.25]])
    Q = householder_qt(A)
    np.testing.assert_allclose(Q.T @ Q, np.eye(4), atol=1e-15)
    AQ = A @ Q
    # A Q = [0, T] with T reverse lower triangular: the first c - r columns vanish
    assert np.abs(AQ[:, :2]).max() < 1e-14
    assert abs(AQ[0, 2]) < 1e-14


def _eigh_flipping(monkeypatch: pytest.MonkeyPatch, every: int) -> None:
    """LAPACK's eigenvectors are the build's: flip every ``every``-th one and change its
    rounding (a relative 1e-15 pattern of either sign, as another build's would be)."""
    real = np.linalg.eigh

    def eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vals, vecs = real(a)
        n, m = vecs.shape
        noise = np.sin(np.arange(n)[:, None] * (0.37 * every) + np.arange(m)[None, :])
        noise += 0.5 if every % 2 else -0.5  # a net component along 1, either sign
        vecs = vecs + 1e-15 * np.abs(vecs).max(axis=0) * noise
        vecs /= np.sqrt((vecs * vecs).sum(axis=0))
        return vals, vecs * np.where(np.arange(m) % every == 0, -1.0, 1.0)

    monkeypatch.setattr(np.linalg, "eigh", eigh)


# a regular grid (discoveries' 100 years): symmetric and antisymmetric eigenvectors, exact
# zeros in T'U and so zero Householder pivots, whose reflection LAPACK's rounding used to pick
GRID = np.arange(1860.0, 1960.0)
SURFACE = np.column_stack([X, (X * 7.3) % 5.0])


@pytest.mark.parametrize(
    ("x", "k", "identified"), [(X, 8, True), (GRID, 10, False), (SURFACE, 12, True)]
)
@pytest.mark.parametrize("every", [1, 2, 3])
def test_tp_basis_does_not_depend_on_lapacks_eigenvector_signs(
    monkeypatch: pytest.MonkeyPatch, x: np.ndarray, k: int, identified: bool, every: int
) -> None:
    """The same knots give the same tp basis whatever signs the eigensolver returns: each
    eigenvector is oriented along mgcv's Lanczos start vector, and a zero pivot of the
    constraint's Householder steps reflects one fixed way (not by its rounding noise)."""
    ref = tp_setup(x, k)
    assert ref.identified is identified
    _eigh_flipping(monkeypatch, every)
    other = tp_setup(x, k)
    np.testing.assert_allclose(other.UZ, ref.UZ, rtol=0, atol=1e-9 * np.abs(ref.UZ).max())
    np.testing.assert_allclose(other.S0, ref.S0, rtol=0, atol=1e-9 * np.abs(ref.S0).max())
    assert other.identified is identified


def test_tp_eigenvectors_are_oriented_along_mgcvs_lanczos_start() -> None:
    g = lanczos_start(5)
    # mgcv's Rlanczos: jran = (106 jran + 1283) mod 6075 from 1, element jran / 6075 - 0.5
    np.testing.assert_array_equal(
        g[:2], [1389 / 6075 - 0.5, (1389 * 106 + 1283) % 6075 / 6075 - 0.5]
    )
    from gamstore.fit.bases.tp import _largest_eigenpairs, radial

    xu = (GRID - GRID.mean())[:, None]
    _, U, determined = _largest_eigenpairs(radial(xu, xu, 2), 10)
    assert determined  # distinct eigenvalues: only the zero pivots leave the grid unidentified
    assert np.all(lanczos_start(GRID.size) @ U > 0)


def test_tp_is_centred_uses_unique_points_and_keeps_lines_unpenalized() -> None:
    impl = get_basis_type("tp").construct(X, 8, None)
    assert impl.knots.size == np.unique(X).size
    B = impl.raw_design(X)
    # rms of every raw column is 1 on the fit's rows (mgcv's W scaling)
    np.testing.assert_allclose(np.sqrt((B * B).mean(axis=0)), 1.0, rtol=1e-12)
    # the last two columns are the null space (constant and centred linear term)
    assert np.abs(impl.penalty[:, -2:]).max() == 0.0
    np.testing.assert_allclose(B[:, -1] * np.sqrt(((X - X.mean()) ** 2).mean()), X - X.mean())
    with pytest.raises(ValueError, match="unique covariate values, fewer than k"):
        get_basis_type("tp").construct(X[:6], 8, None)


@pytest.mark.parametrize("bs", ["ps", "tp", "cr", "cc", "cp"])
def test_gam_fits_every_basis_and_predicts_its_own_rows(bs: str) -> None:
    data = {"x": X, "y": Y}
    knots = {"x": (0.0, 20.0)} if bs in ("cc", "cp") else None
    res = GAM([s("x", k=8, bs=bs)]).fit(data, y="y", knots=knots)
    assert res.converged
    np.testing.assert_allclose(res.predict(data), res.fitted, rtol=1e-10, atol=1e-10)
    assert f'bs = "{bs}"' in res.formula
    # a fit with the reported knots frozen is the same fit
    again = GAM([s("x", k=8, bs=bs)]).fit(data, y="y", knots=res.knots)
    assert again.reml == pytest.approx(res.reml, rel=1e-9)
    assert res.beta_reduced["s(x)"].size == (6 if bs == "cc" else 7)


def test_r_random_numbers_match_r() -> None:
    """mgcv's tp knot subsample needs R's RNG: values printed by R 4 (default kinds):
    ``set.seed(1); sprintf("%.17g", runif(3))`` and ``set.seed(1); sample(1:5000, 10)``."""
    from gamstore.fit.bases._rrng import RRandom

    r = RRandom(1)
    assert [r.unif_rand() for _ in range(3)] == [
        0.26550866314209998,
        0.37212389963679016,
        0.57285336335189641,
    ]
    expected = [1017, 4775, 2177, 1533, 4567, 2347, 270, 4050, 3379, 4065]
    assert RRandom(1).sample(5000, 10).tolist() == expected
    assert RRandom(1).sample(70000, 5).tolist() == [24388, 59521, 43307, 69586, 11571]


def test_tp_eta_matches_the_thin_plate_formula() -> None:
    from gamstore.fit.bases.tp import eta, eta_const

    r = np.array([0.0, 0.5, 2.0])
    # 1-D, m = 2: Gamma(-3/2) / (16 sqrt(pi)) r^3 = r^3 / 12; 2-D: r^2 log(r) / (8 pi)
    assert eta_const(2, 1) == pytest.approx(1.0 / 12.0, rel=1e-15)
    np.testing.assert_allclose(eta(r, 2, 1), r**3 / 12.0, rtol=1e-15)
    two_d = np.array([0.0, 0.25 * np.log(0.5), 4 * np.log(2.0)]) / (8 * np.pi)
    np.testing.assert_allclose(eta(r, 2, 2), two_d, rtol=1e-15)


@pytest.mark.parametrize("bs", ["ps", "tp", "cr", "cc", "cp"])
def test_descriptor_is_strict_json(bs: str) -> None:
    import json

    impl = get_basis_type(bs).construct(X, 8, None)
    desc = impl.descriptor()
    assert json.loads(json.dumps(desc, allow_nan=False)) == desc
    assert desc["kind"] == bs and desc["width"] == impl.width and desc["rank"] == impl.rank
    np.testing.assert_array_equal(desc["knots"], impl.knots)


def test_surface_term_repr_and_validation() -> None:
    gam = GAM([s(("x", "z"), bs="tp")])
    assert repr(gam).startswith("GAM([s(('x', 'z'), k=30, bs='tp')]")
    with pytest.raises(ValueError, match="needs bs='tp'"):
        s(("x", "z"), bs="cr")
    with pytest.raises(ValueError, match="distinct"):
        s(("x", "x"), bs="tp")


def test_by_smooth_formula_repr_and_plot_keep_their_covariate() -> None:
    """A by-smooth's formula and repr name its covariate once (its by column only as by=),
    and it is plotted; a surface is not (no curve)."""
    from gamstore.plotting import smooth_curves

    f = np.where(np.arange(X.size) % 2 == 0, "a", "b")
    data = {"x": X, "f": f, "y": Y, "z": X[::-1].copy()}
    gam = GAM([s("x", k=6, bs="cr", by="f")], linear=["f"])
    assert "s('x', k=6, bs='cr', by='f')" in repr(gam)
    res = gam.fit(data, y="y")
    assert res.formula == 'y ~ f + s(x, bs = "cr", k = 6, by = f)'
    assert [c["label"] for c in smooth_curves(res)] == ["s(x):fa", "s(x):fb"]


def test_frozen_cr_knots_fit_a_fold_with_few_unique_values() -> None:
    """A fold whose covariate has fewer unique values than k still fits on the frozen cr
    knots (mgcv would refuse k > unique values when placing knots; here they are given)."""
    import warnings

    data = {"x": X, "y": Y}
    full = GAM([s("x", k=10, bs="cr")]).fit(data, y="y")
    sub = {"x": np.repeat(X[::4], 4)[: X.size], "y": Y}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = GAM([s("x", k=10, bs="cr")]).fit(sub, y="y", knots=full.knots)
    assert res.converged
    np.testing.assert_array_equal(res.knots["x"], full.knots["x"])


def test_r_as_character_matches_r() -> None:
    """mgcv keys the rows of a surface's covariates by R's as.character (R 4.2:
    ``cat(as.character(x), sep = "\\n")``)."""
    from gamstore.fit.bases._rrng import r_as_character

    x = [0.0001, 1e-5, 0.00012, 123456.7, 1e15, 1e5, 100000.5, -0.001046, 0.0507596, 1 / 3,
         2 / 3 * 1e-4, 0.1 + 0.2, 1234567890123456.0]  # fmt: skip
    r = ["1e-04", "1e-05", "0.00012", "123456.7", "1e+15", "1e+05", "100000.5", "-0.001046",
         "0.0507596", "0.333333333333333", "6.66666666666667e-05", "0.3", "1234567890123456"]  # fmt: skip
    assert [r_as_character(v) for v in x] == r
