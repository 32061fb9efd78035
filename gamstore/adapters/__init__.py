"""Adapters between gamstore and other GAM software.

Each adapter is an optional extra and lives in its own module, imported only when used:

* :mod:`gamstore.adapters.statsmodels` - store and warm-start ``GLMGam.select_penweight``
  (needs ``statsmodels``);
* :mod:`gamstore.adapters.pygam` - store ``lam``/``coef_`` and run a local warm grid search
  (needs ``pygam``);
* :mod:`gamstore.adapters.gamcrate` - import the on-disk warm-start cache of the Rust crate
  ``gam`` into a gamstore store (pure Python, no extra needed).

This package module deliberately imports none of them, so ``import gamstore.adapters`` never
pulls in statsmodels or pyGAM.
"""

from __future__ import annotations

__all__: list[str] = []
