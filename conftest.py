"""Top-level pytest configuration: make BLAS single-threaded and hypothesis deterministic."""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

try:  # hypothesis is a dev dependency; profiles keep CI runs reproducible
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("dev", deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") or os.environ.get("GAMSTORE_CI") else "dev")
except ImportError:  # pragma: no cover
    pass
