"""R's default random numbers, as far as mgcv's ``tp`` knot subsampling needs them.

mgcv's ``smooth.construct.tp.smooth.spec`` draws ``max.knots`` (2000) of the unique covariate
values with ``temp.seed(1)`` (``RNGkind("default", "default"); set.seed(1)``) and
``sample(1:nu, 2000, replace = FALSE)``. Matching its basis on more than 2000 unique values
therefore needs R's generator: Mersenne-Twister seeded by ``set.seed`` (R's initial LCG
scrambling), ``unif_rand`` with its ``fixup``, and ``sample``'s rejection sampling
(``R_unif_index``, R >= 3.6) with the swap-with-last draw without replacement.
"""

from __future__ import annotations

import math

import numpy as np

_N, _M = 624, 397
_MASK32 = 0xFFFFFFFF
_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1)


class RRandom:
    """R's Mersenne-Twister after ``set.seed(seed)`` (default kinds)."""

    def __init__(self, seed: int) -> None:
        s = seed & _MASK32
        for _ in range(50):  # initial scrambling
            s = (69069 * s + 1) & _MASK32
        seeds = []
        for _ in range(_N + 1):
            s = (69069 * s + 1) & _MASK32
            seeds.append(s)
        self.mt = seeds[1:]  # seeds[0] is the position, reset to N by FixupSeeds
        self.mti = _N

    def _genrand(self) -> float:
        mt = self.mt
        if self.mti >= _N:
            for kk in range(_N):
                y = (mt[kk] & 0x80000000) | (mt[(kk + 1) % _N] & 0x7FFFFFFF)
                mt[kk] = mt[(kk + _M) % _N] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
            self.mti = 0
        y = mt[self.mti]
        self.mti += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return (y & _MASK32) * 2.3283064365386963e-10

    def unif_rand(self) -> float:
        """R's ``unif_rand()``: in (0, 1)."""
        v = self._genrand()
        if v <= 0.0:
            return 0.5 * _I2_32M1
        if 1.0 - v <= 0.0:
            return 1.0 - 0.5 * _I2_32M1
        return v

    def _rbits(self, bits: int) -> int:
        v = 0
        for _ in range(0, bits + 1, 16):
            v1 = int(math.floor(self.unif_rand() * 65536))
            v = 65536 * v + v1
        return v & ((1 << bits) - 1)

    def unif_index(self, dn: int) -> int:
        """R's ``R_unif_index(dn)`` (rejection sampling, R >= 3.6)."""
        if dn <= 0:
            return 0
        bits = int(math.ceil(math.log2(dn)))
        while True:
            dv = self._rbits(bits)
            if dn > dv:
                return dv

    def sample(self, n: int, size: int) -> np.ndarray:
        """R's ``sample.int(n, size)`` without replacement (1-based values)."""
        x = list(range(n))
        out = np.empty(size, dtype=np.int64)
        for i in range(size):
            j = self.unif_index(n)
            out[i] = x[j] + 1
            n -= 1
            x[j] = x[n]
        return out


def r_as_character(v: float) -> str:
    """R's ``as.character`` of a double (R < 4.3: 15 significant digits, trailing zeros
    dropped, fixed notation unless scientific is shorter), as mgcv's ``uniquecombs`` keys use.
    """
    if v == 0.0:
        return "0"
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Inf" if v > 0 else "-Inf")
    mant, _, ex = (f"{v:.14e}").partition("e")
    exp = int(ex)
    digits = mant.replace("-", "").replace(".", "").rstrip("0")
    nsig = max(1, len(digits))
    sci = f"{v:.{nsig - 1}e}"
    dec = max(0, nsig - 1 - exp)
    fixed = f"{v:.{dec}f}"
    return fixed if len(fixed) <= len(sci) else sci
