"""``bs="tp"``: mgcv's thin-plate regression spline (its default ``s(x)``).

mgcv's ``smooth.construct.tp.smooth.spec`` / ``tprs_setup`` (Wood 2003): the covariate is
centred on its mean; the thin-plate radial matrix ``E`` on the unique covariate values is
truncated to its ``k`` largest-magnitude eigenvalues ``D`` (eigenvectors ``U``, ordered by
decreasing eigenvalue), the polynomial null space constraint ``T'U delta = 0`` is absorbed
by the Householder ``QT`` factorisation ``T'U Q = [0, R]`` (``Z`` = the first ``k - M``
columns of ``Q``), and the design ``[U D Z, T]`` has every column scaled to unit root mean
square over the rows. Prediction evaluates ``[eta(|x - x_u|), T(x)] UZ``.

The basis is a function of the knots alone, whatever LAPACK computed the eigenvectors:

* **eigenvector signs**: each eigenvector is oriented to a positive component along mgcv's
  Lanczos start vector (:func:`lanczos_start`; a vector orthogonal to it, to rounding, takes
  the sign of its first largest-magnitude element). LAPACK's (or ARPACK's) signs depend on
  the build; mgcv's come from its Lanczos iteration and its LAPACK's tridiagonal solver and
  follow no rule, so a column may still have the opposite sign of mgcv's. Away from the case
  below, a sign flip of an eigenvector only flips the sign of basis columns (the Householder
  steps are sign-equivariant): REML, fitted values, edf and the penalty scaling do not
  depend on it.
* **zero pivots**: on a regular grid the eigenvectors are symmetric or antisymmetric, so
  ``T'U`` has exact zeros (``1'u = 0``, ``x'u = 0``). A Householder step whose pivot is such a
  zero (rounding noise, ``<= 1e-10`` of its row) reflects as mgcv's rule does for an exact
  zero (``+||p||``), instead of by the sign of the noise. mgcv itself decides by the sign of
  its own rounding noise there, so the constrained columns of such a basis are only
  identified as a space (the other choice rotates them): :attr:`TPBasis.identified` is then
  False, and so it is when two kept eigenvalues (or the last kept and the first dropped)
  coincide to 1e-8 of the largest, where the eigenvectors are not determined at all. The
  fitted model (each smooth's fitted contribution, REML, edf) does not depend on the choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from gamstore.fit.bases import Basis, as_vector, register

MAX_KNOTS = 2000  # mgcv's xt$max.knots


def default_order(d: int) -> int:
    """mgcv's default penalty order: the smallest m with 2m > d + 1."""
    m = 0
    while 2 * m < d + 2:
        m += 1
    return m


def null_space_dim(d: int, m: int) -> int:
    """M = (m + d - 1)! / (d! (m - 1)!): polynomials of degree < m in d variables."""
    return math.comb(m + d - 1, d)


def eta_const(m: int, d: int) -> float:
    """The constant of mgcv's ``eta(m, d, r)`` (``eta_const`` in tprs.c: only S.scale sees it)."""
    pi = math.pi
    if d % 2 == 0:
        f = -1.0 if (m + 1 + d // 2) % 2 else 1.0
        f /= 2.0 ** (2 * m - 1)
        f /= pi ** (d // 2)
        for i in range(2, m):
            f /= i
        for i in range(2, m - d // 2 + 1):
            f /= i
        return f
    f = math.sqrt(pi)
    kk = m - (d - 1) // 2
    for i in range(kk):
        f /= -0.5 - i
    f /= 4.0**m
    f /= pi ** (d // 2)
    f /= math.sqrt(pi)
    for i in range(2, m):
        f /= i
    return f


def eta(r: np.ndarray, m: int, d: int) -> np.ndarray:
    """Thin-plate radial basis ``eta(r)`` (zero at r = 0)."""
    r = np.asarray(r, dtype=np.float64)
    return eta_sq(r * r, m, d)


def eta_sq(r2: np.ndarray, m: int, d: int) -> np.ndarray:
    """``eta`` of the squared distances ``r2`` (zero at 0), without masking: for odd d
    ``c r^(2m-d)``, for even d ``c/2 log(r^2) r^(2m-d)`` (mgcv's ``fast_eta``)."""
    c = eta_const(m, d)
    if d % 2:
        p = 2 * m - d  # odd
        out = np.sqrt(r2)
        if p > 1:
            out *= r2 ** ((p - 1) // 2) if p > 3 else r2
        out *= c
        return out
    safe = np.where(r2 > 0.0, r2, 1.0)  # log(1) = 0: eta(0) = 0
    out = np.log(safe)
    out *= 0.5 * c
    half = m - d // 2
    for _ in range(half):
        out *= r2
    return out


def poly_powers(d: int, m: int) -> list[list[int]]:
    """Exponents of the M null-space monomials in mgcv's order (``gen_tps_poly_powers``)."""
    M = null_space_dim(d, m)
    index = [0] * d
    out = []
    for _ in range(M):
        out.append(list(index))
        total = sum(index)
        if total < m - 1:
            index[0] += 1
        else:
            total -= index[0]
            index[0] = 0
            for j in range(1, d):
                index[j] += 1
                total += 1
                if total == m:
                    total -= index[j]
                    index[j] = 0
                else:
                    break
    return out


def poly_matrix(x: np.ndarray, powers: list[list[int]]) -> np.ndarray:
    """``T_ij = phi_j(x_i)``: the null-space monomials at the rows of x (n, d)."""
    T = np.ones((x.shape[0], len(powers)))
    for j, pw in enumerate(powers):
        for c, e in enumerate(pw):
            for _ in range(e):
                T[:, j] *= x[:, c]
    return T


def radial(x: np.ndarray, xu: np.ndarray, m: int) -> np.ndarray:
    """``eta(|x_i - xu_j|)``, shape (n, nu)."""
    d = x.shape[1]
    r2 = np.subtract(x[:, :1], xu[None, :, 0])
    r2 *= r2
    for c in range(1, d):
        diff = x[:, c : c + 1] - xu[None, :, c]
        diff *= diff
        r2 += diff
    return eta_sq(r2, m, d)


#: a Householder pivot at most this fraction of its row's norm is a structural zero (rounding
#: noise, ~1e-16 of the row): its reflection's sign is then fixed, not the noise's
ZERO_PIVOT = 1e-10


def householder_qt(A: np.ndarray) -> np.ndarray:
    """Q of mgcv's ``QT``: ``A Q = [0, T]`` for A (r, c), r <= c, from r Householder steps.

    Step i reflects elements ``0 .. c-i-1`` of row i into element ``c-i-1`` (sign chosen
    to avoid cancellation; a zero pivot, to :data:`ZERO_PIVOT` of the row, counts as
    ``+0``); Q is the product of the reflections in order.
    """
    return _householder_qt(A)[0]


def _householder_qt(
    A: np.ndarray, negative: frozenset[int] = frozenset()
) -> tuple[np.ndarray, list[int]]:
    """:func:`householder_qt` and the steps whose pivot was a zero; the steps in
    ``negative`` reflect a zero pivot the other way (the alternative basis)."""
    A = np.array(A, dtype=np.float64)
    r, c = A.shape
    Q = np.eye(c)
    zero_steps = []
    for i in range(r):
        n_i = c - i
        p = A[i, :n_i].copy()
        scale = float(np.abs(p).max())
        if scale:
            p /= scale
        lsq = float(np.sqrt(p @ p))
        if abs(p[-1]) <= ZERO_PIVOT * lsq:
            zero_steps.append(i)
            if i in negative:
                lsq = -lsq
        elif p[-1] < 0.0:
            lsq = -lsq
        p[-1] += lsq
        g = 1.0 / (lsq * p[-1]) if lsq else 0.0
        u = np.zeros(c)
        u[:n_i] = p * np.sqrt(g)
        A -= np.outer(A @ u, u)  # rows below (and row i itself, unused afterwards)
        Q -= np.outer(Q @ u, u)
    return Q, zero_steps


@dataclass(frozen=True)
class TPBasis(Basis):
    """A constructed thin-plate regression spline (1-D or d-D)."""

    kind: ClassVar[str] = "tp"
    xu: np.ndarray  # unique knot points, centred (nu, d)
    shift: np.ndarray  # covariate means subtracted first (d,)
    UZ: np.ndarray  # (nu + M, k): [radial, polynomial] -> basis columns, column-scaled
    S0: np.ndarray  # unscaled penalty in basis coordinates (k, k)
    m: int
    n_null: int
    knot_points: np.ndarray  # the knots as given / found (uncentred), flattened
    #: False when the knots determine the basis only as a space, not up to column signs
    #: (a zero Householder pivot or coinciding eigenvalues: see the module docstring)
    identified: bool = True

    @property
    def width(self) -> int:
        return int(self.UZ.shape[1])

    @property
    def penalty(self) -> np.ndarray:
        return self.S0

    @property
    def rank(self) -> int:
        return self.width - self.n_null

    @property
    def knots(self) -> np.ndarray:
        return self.knot_points

    @property
    def same_coordinates_as_knots(self) -> bool:
        return False  # centred and column-scaled on the fit's own rows

    def raw_design(self, x: np.ndarray) -> np.ndarray:
        xc = _as_points(x, self.shift.size) - self.shift[None, :]
        return _tp_design(xc, self.xu, self.UZ, self.m)

    def extrapolation_range(self, fitted: np.ndarray | None = None) -> tuple[float, float] | None:
        if self.shift.size != 1:
            return None  # no single range for a surface; mgcv's formula applies anywhere
        return super().extrapolation_range(fitted)

    def descriptor(self) -> dict[str, object]:
        out = super().descriptor()
        out.update({"dim": int(self.shift.size), "penalty_order": self.m})
        return out


def _as_points(x: np.ndarray, d: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if d is not None and x.shape[1] != d:
        raise ValueError(f"s(bs='tp'): expected {d} covariate column(s), got {x.shape[1]}")
    return x


# above this many knots the k eigenpairs come from Lanczos (ARPACK), as mgcv's do, instead of
# a full eigendecomposition (2000 knots: 0.2 s instead of 9 s)
_FULL_EIGEN_MAX = 400


def _largest_eigenpairs(E: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The k largest-magnitude eigenvalues of symmetric E and their eigenvectors, ordered by
    decreasing value (mgcv's ``Rlanczos`` order) and oriented by :func:`orient`; and whether
    they are determined (no two of them, nor the last and the next one, within
    :data:`_EIGEN_TIE` of the largest)."""
    nu = E.shape[0]
    if nu <= _FULL_EIGEN_MAX or k >= nu - 1:
        vals, vecs = np.linalg.eigh(E)
    else:
        from scipy.sparse.linalg import eigsh

        # a fixed start vector: the same knots give the same basis in every process; one
        # eigenpair more than kept, to see whether the truncation splits a repeated value
        v0 = np.cos(np.arange(nu, dtype=np.float64) * 0.7071067811865476) + 1.5
        vals, vecs = eigsh(E, k=k + 1, which="LM", v0=v0, tol=0.0, ncv=min(nu, 2 * k + 1))
    by_size = np.argsort(-np.abs(vals), kind="stable")
    pick = by_size[:k]
    pick = pick[np.argsort(-vals[pick], kind="stable")]  # decreasing value, as Lanczos
    v = vals[pick]
    tie = _EIGEN_TIE * float(np.abs(v).max())
    determined = bool(np.all(np.diff(v) < -tie))
    if by_size.size > k:  # the first dropped eigenvalue is not (minus) a kept one's twin
        nxt = float(np.abs(vals[by_size[k]]))
        determined &= bool(np.all(np.abs(np.abs(v) - nxt) > tie))
    return v, orient(np.ascontiguousarray(vecs[:, pick])), determined


#: eigenvalues this close (relative to the largest magnitude kept) count as one repeated value
_EIGEN_TIE = 1e-8


@lru_cache(maxsize=4)
def lanczos_start(nu: int) -> np.ndarray:
    """mgcv's ``Rlanczos`` start vector for an ``nu x nu`` matrix (its generator
    ``j = (106 j + 1283) mod 6075`` from j = 1, each element ``j / 6075 - 0.5``; unnormalised),
    read-only. Used to orient eigenvectors (:func:`orient`)."""
    out = np.empty(nu)
    j = 1
    for i in range(nu):
        j = (j * 106 + 1283) % 6075
        out[i] = j / 6075 - 0.5
    out.setflags(write=False)
    return out


def orient(U: np.ndarray) -> np.ndarray:
    """The unit columns of U with the sign that makes their component along
    :func:`lanczos_start` positive (a column orthogonal to it, to 1e-8: its first element
    within 1e-6 of its largest magnitude positive); in place, returned."""
    g = lanczos_start(U.shape[0])
    proj = g @ U
    for j in np.flatnonzero(np.abs(proj) <= 1e-8 * float(np.sqrt(g @ g))):
        col = np.abs(U[:, j])
        first = int(np.flatnonzero(col >= (1.0 - 1e-6) * col.max())[0])
        proj[j] = U[first, j]
    U *= np.where(proj < 0.0, -1.0, 1.0)[None, :]
    return U


def _tp_design(xc: np.ndarray, xu: np.ndarray, UZ: np.ndarray, m: int) -> np.ndarray:
    """``[eta(|x - x_u|), T(x)] UZ`` for centred points xc (n, d), in row blocks so the
    (rows, n_knots) radial matrix stays small (n = 100 000 rows and 2000 knots would be
    1.6 GB at once)."""
    n, d = xc.shape
    powers = poly_powers(d, m)
    out = np.empty((n, UZ.shape[1]))
    step = max(1, _BLOCK_ELEMENTS // max(1, xu.shape[0]))
    for a in range(0, n, step):
        b = min(n, a + step)
        rows = xc[a:b]
        full = np.concatenate([radial(rows, xu, m), poly_matrix(rows, powers)], axis=1)
        np.matmul(full, UZ, out=out[a:b])
    return out


_BLOCK_ELEMENTS = 1 << 21  # radial matrix entries per row block (16 MiB)


def r_subsample_knots(
    xc: np.ndarray, max_knots: int = MAX_KNOTS, seed: int = 1
) -> np.ndarray | None:
    """mgcv's knots for more than ``max_knots`` rows: ``max_knots`` of the unique (sorted)
    centred points drawn by R's ``sample`` after ``set.seed(seed)``; None when there are
    no more unique points than that (all are knots).

    The unique points are ordered as mgcv's ``uniquecombs(x, TRUE)`` orders them: sorted
    values for one covariate; for several, by the C-locale order of R's text keys
    ``paste0(x1, "*", x2)`` (:func:`gamstore.fit.bases._rrng.r_as_character`).
    """
    from gamstore.fit.bases._rrng import RRandom, r_as_character

    if xc.shape[1] == 1:
        xu = np.unique(xc, axis=0)  # sort(unique(x))
    else:
        # uniquecombs(x, ordered = TRUE) of a matrix: rows keyed by paste0(x1, "*", x2, ...)
        # with R's as.character (15 significant digits), first occurrence kept, keys sorted
        # in the C locale
        first: dict[str, int] = {}
        for i, row in enumerate(xc.tolist()):
            first.setdefault("*".join(r_as_character(v) for v in row), i)
        xu = xc[[first[key] for key in sorted(first)]]
    if xu.shape[0] <= max_knots:
        return None
    ind = RRandom(seed).sample(xu.shape[0], max_knots) - 1
    return np.asarray(xu[ind])


def _check_unique(nu: int, k: int) -> None:
    if nu < k:
        raise ValueError(f"s(bs='tp'): {nu} unique covariate values, fewer than k = {k}: reduce k")


def _truncated(xu: np.ndarray, k: int, m: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(U Z, Z' D Z, identified)`` of the truncated eigen-basis on centred unique knots xu
    (nu, d): the radial part of UZ (nu, k - M), the penalty block (k - M, k - M), and whether
    the knots determine it up to column signs (module docstring)."""
    d = xu.shape[1]
    M = null_space_dim(d, m)
    E = radial(xu, xu, m)
    T = poly_matrix(xu, poly_powers(d, m))
    if xu.shape[0] == k:  # mgcv's pure knot basis: no eigen step
        Q, zero_steps = _householder_qt(T.T)
        Z = Q[:, : k - M]
        return Z, Z.T @ E @ Z, not zero_steps
    v, U, determined = _largest_eigenpairs(E, k)
    Q, zero_steps = _householder_qt(T.T @ U)
    Z = Q[:, : k - M]
    return U @ Z, Z.T @ (v[:, None] * Z), determined and not zero_steps


@lru_cache(maxsize=8)
def _knot_eigen(ku_bytes: bytes, d: int, k: int, m: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`_truncated` of sorted unique knot points (their bytes), centred on their mean;
    cached: every fold of a LOSO run with frozen knots shares one eigendecomposition."""
    ku = np.frombuffer(ku_bytes, dtype=np.float64).reshape(-1, d)
    UZ_top, S_top, identified = _truncated(ku - ku.mean(axis=0), k, m)
    UZ_top.setflags(write=False)
    S_top.setflags(write=False)
    return UZ_top, S_top, identified


def tp_setup(x: np.ndarray, k: int, knots: np.ndarray | None = None, m: int = 0) -> TPBasis:
    """mgcv's ``tprs_setup`` on covariate points x (n, d) (see the module docstring).

    ``knots``: None (the unique covariate points are the knots; with more than 2000 rows
    and unique points, 2000 of them drawn as mgcv draws them), or knot points (n_knots, d)
    when ``n_knots >= k``.
    """
    x = _as_points(x)
    n, d = x.shape
    if 2 * m <= d:
        m = default_order(d)
    M = null_space_dim(d, m)
    if k < M + 1:
        raise ValueError(f"s(bs='tp'): k must be at least {M + 1} for {d} covariate(s), got {k}")
    shift = x.mean(axis=0)
    xc = x - shift
    knot_points: np.ndarray | None = None
    if knots is not None and knots.shape[0] >= k:
        knot_points = knots
    elif n > MAX_KNOTS:
        # mgcv: more rows than max.knots and more unique points too: a random subset of the
        # unique points (R's RNG, seed 1) are the knots
        sub = r_subsample_knots(xc)
        if sub is not None:
            knot_points = sub + shift
    if knot_points is None:
        xu = np.unique(xc, axis=0)  # sorted rows, as mgcv's msort + strip
        _check_unique(xu.shape[0], k)
        UZ_top, S_top, identified = _truncated(xu, k, m)
    else:
        # knots given (a frozen basis, e.g. a LOSO fold) or drawn: the eigen step depends on
        # the knots alone (E on their differences; Z is the same for any centring), so it is
        # computed once per knot set, centred on the knots' own mean, and shared by the folds
        ku = np.unique(np.ascontiguousarray(knot_points, dtype=np.float64), axis=0)
        _check_unique(ku.shape[0], k)
        UZ_top, S_top, identified = _knot_eigen(ku.tobytes(), d, k, m)
        xu = ku - shift
        if np.unique(xu, axis=0).shape[0] != ku.shape[0]:  # centring merged two knots
            xu = np.unique(xu, axis=0)
            UZ_top, S_top, identified = _truncated(xu, k, m)
    nu = xu.shape[0]
    UZ = np.zeros((nu + M, k))
    UZ[:nu, : k - M] = UZ_top
    UZ[nu:, k - M :] = np.eye(M)
    S = np.zeros((k, k))
    S[: k - M, : k - M] = S_top
    # the design on the data rows, then every column scaled to unit rms (tprs_setup's W)
    X = _tp_design(xc, xu, UZ, m)
    w = np.sqrt((X * X).sum(axis=0) / n)
    w[w == 0] = 1.0
    UZ /= w[None, :]
    S = S / w[:, None] / w[None, :]
    S = (S + S.T) / 2.0
    kp = (xu + shift) if knot_points is None else knot_points
    return TPBasis(
        xu=xu,
        shift=shift,
        UZ=UZ,
        S0=S,
        m=m,
        n_null=M,
        knot_points=np.ascontiguousarray(kp, dtype=np.float64).ravel(),
        identified=identified,
    )


class TPType:
    """``bs="tp"``: k >= M + 1 (3 in 1-D); knots None (unique values) or >= k knot points."""

    name = "tp"
    min_k = 3
    periodic = False

    def raw_width(self, k: int) -> int:
        return k

    def construct(self, x: np.ndarray, k: int, knots: np.ndarray | None) -> TPBasis:
        pts = _as_points(x)
        kn = as_vector(knots, "s(bs='tp')")
        kp = None
        if kn is not None:
            d = pts.shape[1]
            if kn.size % d:
                raise ValueError(
                    f"s(bs='tp'): knots must hold a whole number of {d}-D points, got {kn.size} values"
                )
            kp = kn.reshape(-1, d)
            if kp.shape[0] < k:
                kp = None  # mgcv: fewer knots than k are ignored (the data are the knots)
        return tp_setup(pts, k, kp)


register(TPType())
