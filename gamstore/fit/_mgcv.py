"""Run R's mgcv on the same data and model, for parity fixtures, live tests and benchmarks.

The data travel to R as raw little-endian float64 (exact, no decimal round trip); R writes
its results as strict JSON built with ``sprintf("%.17g")`` (no R packages beyond mgcv).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gamstore.fit.data import get_column, n_rows

logger = logging.getLogger("gamstore.fit.mgcv")

R_SCRIPT = r"""# Fit a P-spline GAM with mgcv by REML and print the results as JSON.
# Usage: Rscript mgcv_fit.R <spec.json-free args file>
# The arguments file holds one "key=value" per line: bin, n, columns, y, family, smooths
# (term:k,...), linear (a,b or empty), weights (column or empty), offset (column or empty),
# reps (timed refits, 0 = none), out (JSON path).
suppressMessages(library(mgcv))
a <- commandArgs(trailingOnly = TRUE)
kv <- readLines(a[1])
arg <- function(key) {
  line <- kv[startsWith(kv, paste0(key, "="))]
  if (length(line) != 1) stop(paste("missing argument", key))
  substring(line, nchar(key) + 2)
}
cols <- strsplit(arg("columns"), ",")[[1]]
n <- as.integer(arg("n"))
con <- file(arg("bin"), "rb")
v <- readBin(con, "double", n = n * length(cols), size = 8, endian = "little")
close(con)
d <- as.data.frame(matrix(v, nrow = n, ncol = length(cols)))
names(d) <- cols
fam <- switch(arg("family"), gaussian = gaussian(), poisson = poisson(), binomial = binomial())
sm <- lapply(strsplit(strsplit(arg("smooths"), ",")[[1]], ":"), identity)
terms <- vapply(sm, function(p) sprintf('s(%s, bs = "ps", k = %s)', p[1], p[2]), "")
lin <- if (nzchar(arg("linear"))) strsplit(arg("linear"), ",")[[1]] else character(0)
rhs <- paste(c(lin, terms), collapse = " + ")
if (nzchar(arg("offset"))) rhs <- paste0(rhs, " + offset(", arg("offset"), ")")
form <- as.formula(paste(arg("y"), "~", rhs))
wcol <- arg("weights")
d$.w <- if (nzchar(wcol)) d[[wcol]] else rep(1, n)
fit_once <- function() gam(form, data = d, family = fam, method = "REML", weights = .w)
b <- fit_once()
reps <- as.integer(arg("reps"))
per_fit <- NA
cpu_per_fit <- NA
if (reps > 0) {
  t0 <- proc.time()
  for (r in seq_len(reps)) bb <- fit_once()
  dt <- proc.time() - t0
  per_fit <- dt[["elapsed"]] / reps
  cpu_per_fit <- (dt[["user.self"]] + dt[["sys.self"]]) / reps
}
num <- function(x) {
  x <- as.numeric(x)
  s <- ifelse(is.finite(x), sprintf("%.17g", x), "null")
  paste0("[", paste(s, collapse = ","), "]")
}
edf <- vapply(b$smooth, function(s) sum(b$edf[s$first.para:s$last.para]), 0)
labels <- vapply(b$smooth, function(s) s$label, "")
sscale <- vapply(b$smooth, function(s) s$S.scale[1], 0)
p1 <- b$smooth[[1]]$first.para - 1
out <- c(
  sprintf('"mgcv_version": "%s"', as.character(packageVersion("mgcv"))),
  sprintf('"labels": [%s]', paste0('"', labels, '"', collapse = ",")),
  sprintf('"log_sp": %s', num(log(b$sp))),
  sprintf('"reml": %s', num(b$gcv.ubre)),
  sprintf('"scale": %s', num(b$sig2)),
  sprintf('"edf": %s', num(edf)),
  sprintf('"edf_parametric": %s', num(sum(b$edf[seq_len(p1)]))),
  sprintf('"S_scale": %s', num(sscale)),
  sprintf('"coefficients": %s', num(coef(b))),
  sprintf('"fitted": %s', num(fitted(b))),
  sprintf('"outer_iter": %s', num(b$outer.info$iter)),
  sprintf('"outer_conv": "%s"', as.character(b$outer.info$conv)),
  sprintf('"seconds_per_fit": %s', num(per_fit)),
  sprintf('"cpu_seconds_per_fit": %s', num(cpu_per_fit)),
  sprintf('"reps": %d', reps)
)
writeLines(paste0("{", paste(out, collapse = ",\n"), "}"), arg("out"))
"""


@lru_cache(maxsize=1)
def mgcv_available() -> bool:
    """True when ``Rscript`` is on PATH and ``library(mgcv)`` loads."""
    exe = shutil.which("Rscript")
    if exe is None:
        return False
    try:
        proc = subprocess.run(
            [exe, "-e", "suppressMessages(library(mgcv))"],
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def run_mgcv(
    data: Any,
    *,
    y: str,
    smooths: list[tuple[str, int]],
    family: str,
    linear: list[str] | None = None,
    weights: str | None = None,
    offset: str | None = None,
    reps: int = 0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Fit ``y ~ linear + s(x, bs="ps", k) ... [+ offset]`` with mgcv REML and return results.

    Parameters
    ----------
    data : pandas.DataFrame or Mapping[str, array-like]
        Data holding every named column.
    y : str
        Response column.
    smooths : list of (str, int)
        Smooth covariates with their basis dimensions.
    family : {"gaussian", "poisson", "binomial"}
        Family (canonical link).
    linear : list of str or None
        Linear covariates.
    weights, offset : str or None
        Column names of prior weights and of an offset.
    reps : int
        Extra timed fits inside R (``seconds_per_fit`` in the result; 0 = no timing).
    timeout : float
        Seconds before the R process is abandoned.

    Returns
    -------
    dict
        ``log_sp``, ``reml`` (gcv.ubre), ``scale``, ``edf`` (per smooth), ``fitted``,
        ``coefficients``, ``outer_iter``, ``S_scale``, ``seconds_per_fit`` (wall) and
        ``cpu_seconds_per_fit`` (user + system), ...
    """
    exe = shutil.which("Rscript")
    if exe is None:
        raise RuntimeError("Rscript is not on PATH")
    linear = list(linear or [])
    names = [y, *linear, *(t for t, _ in smooths)]
    names += [c for c in (weights, offset) if c is not None]
    names = list(dict.fromkeys(names))
    for c in names:
        if not c.isidentifier():
            raise ValueError(f"column {c!r}: only identifier-like names can be passed to R")
    n = n_rows(data)
    mat = np.column_stack([get_column(data, c) for c in names]).astype("<f8")
    with tempfile.TemporaryDirectory(prefix="gamstore-mgcv-") as tmp:
        tdir = Path(tmp)
        (tdir / "data.bin").write_bytes(np.asfortranarray(mat).tobytes(order="F"))
        (tdir / "fit.R").write_text(R_SCRIPT)
        args = {
            "bin": str(tdir / "data.bin"),
            "n": str(n),
            "columns": ",".join(names),
            "y": y,
            "family": family,
            "smooths": ",".join(f"{t}:{int(k)}" for t, k in smooths),
            "linear": ",".join(linear),
            "weights": weights or "",
            "offset": offset or "",
            "reps": str(int(reps)),
            "out": str(tdir / "out.json"),
        }
        (tdir / "args.txt").write_text("".join(f"{k}={v}\n" for k, v in args.items()))
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        proc = subprocess.run(
            [exe, "--vanilla", str(tdir / "fit.R"), str(tdir / "args.txt")],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mgcv fit failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        result: dict[str, Any] = json.loads((tdir / "out.json").read_text())
    logger.debug("mgcv fit done: %s", result.get("labels"))
    return result
