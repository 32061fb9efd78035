"""Row-chunked products with the model matrix and a scaled Cholesky solver.

``X'WX`` and leverages are accumulated over blocks of rows so that no weighted n x p copy of
the design is ever made: the peak extra memory is one chunk, whatever n is.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.linalg as sla

CHUNK_ROWS = 16384  # ~16k x 40 floats = 5 MB per temporary: cache friendly, memory flat


def row_chunks(n: int, chunk: int = CHUNK_ROWS) -> Iterator[slice]:
    """Consecutive row slices of at most ``chunk`` rows."""
    for start in range(0, n, chunk):
        yield slice(start, min(n, start + chunk))


def xtwx(X: np.ndarray, w: np.ndarray, chunk: int = CHUNK_ROWS) -> np.ndarray:
    """``X' diag(w) X`` accumulated over row chunks, shape (p, p)."""
    p = X.shape[1]
    out = np.zeros((p, p))
    for sl in row_chunks(X.shape[0], chunk):
        xc = X[sl]
        out += xc.T @ (xc * w[sl, None])
    return (out + out.T) / 2.0


def xtwx_many(X: np.ndarray, W: np.ndarray, chunk: int = CHUNK_ROWS) -> np.ndarray:
    """``X' diag(W[:, j]) X`` for every column j of W, shape (m, p, p)."""
    p = X.shape[1]
    m = W.shape[1]
    out = np.zeros((m, p, p))
    for sl in row_chunks(X.shape[0], chunk):
        xc = X[sl]
        wc = W[sl]
        for j in range(m):
            out[j] += xc.T @ (xc * wc[:, j, None])
    return (out + out.transpose(0, 2, 1)) / 2.0


def leverages(X: np.ndarray, Hinv: np.ndarray, chunk: int = CHUNK_ROWS) -> np.ndarray:
    """``h_i = x_i' Hinv x_i`` for every row, shape (n,)."""
    h = np.empty(X.shape[0])
    for sl in row_chunks(X.shape[0], chunk):
        xc = X[sl]
        h[sl] = np.einsum("ij,ij->i", xc @ Hinv, xc)
    return h


class SPDFactor:
    """Cholesky factor of a symmetric positive definite matrix after Jacobi scaling.

    Scaling by ``diag(H)^(-1/2)`` first keeps the factor accurate when smoothing parameters
    span many orders of magnitude (the penalties are diagonal in the working basis, so the
    large entries sit on the diagonal). Falls back to a clipped eigen-decomposition when the
    scaled matrix is not numerically positive definite.
    """

    def __init__(self, H: np.ndarray) -> None:
        diag = np.diag(H).copy()
        diag[diag <= 0] = 1.0
        self.d = 1.0 / np.sqrt(diag)
        Hs = H * self.d[:, None] * self.d[None, :]
        self._chol: tuple[np.ndarray, bool] | None = None
        self._eig: tuple[np.ndarray, np.ndarray] | None = None
        try:
            self._chol = sla.cho_factor(Hs, lower=True, check_finite=False)
            logdet_s = 2.0 * float(np.sum(np.log(np.diag(self._chol[0]))))
        except np.linalg.LinAlgError:
            vals, vecs = np.linalg.eigh((Hs + Hs.T) / 2.0)
            floor = max(float(vals.max()), 1.0) * 1e-13
            vals = np.maximum(vals, floor)
            self._eig = (vals, vecs)
            logdet_s = float(np.sum(np.log(vals)))
        self.logdet = logdet_s - 2.0 * float(np.sum(np.log(self.d)))

    @property
    def positive_definite(self) -> bool:
        """False when the Cholesky factorization failed (the eigenvalue fallback was used)."""
        return self._chol is not None

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``H^{-1} b`` for a vector or matrix ``b``."""
        d = self.d if b.ndim == 1 else self.d[:, None]
        bs = b * d
        if self._chol is not None:
            xs = sla.cho_solve(self._chol, bs, check_finite=False)
        else:
            assert self._eig is not None
            vals, vecs = self._eig
            xs = vecs @ ((vecs.T @ bs) / (vals if b.ndim == 1 else vals[:, None]))
        return xs * d

    def inverse(self) -> np.ndarray:
        """``H^{-1}``, symmetric."""
        inv = self.solve(np.eye(self.d.shape[0]))
        return (inv + inv.T) / 2.0
