"""gamstore: persistent warm starts for penalized-likelihood (GAM) fits.

Optimizer state (per-block coefficients, log smoothing parameters, outer iterates, REML
objectives) is stored as immutable Zarr v3 groups under content-hash keys, on a local
directory, in memory, or on object storage through fsspec/s3fs.

The public names below are imported lazily so that ``import gamstore`` stays cheap and the
optional layers (xarray views, the fitter) load only when used.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from gamstore._version import __version__

logging.getLogger("gamstore").addHandler(logging.NullHandler())

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # keys
    "Fingerprint": "gamstore.fingerprint",
    "Fingerprinter": "gamstore.fingerprint",
    "hash_array": "gamstore.fingerprint",
    # model
    "WarmStartRecord": "gamstore.records",
    "BlockWarmStartRecord": "gamstore.records",
    "InnerSummary": "gamstore.records",
    "IteratePayload": "gamstore.records",
    "SCHEMA_TAG": "gamstore.records",
    "FitArtifact": "gamstore.artifact",
    "FitDescriptor": "gamstore.artifact",
    "TermArtifact": "gamstore.artifact",
    "TermRole": "gamstore.artifact",
    "BasisMeta": "gamstore.artifact",
    "GlobalFitSummary": "gamstore.artifact",
    "ResponseSig": "gamstore.artifact",
    "RowPopulationTag": "gamstore.artifact",
    "TermIdentity": "gamstore.artifact",
    "term_identity_from_block": "gamstore.artifact",
    "Gauge": "gamstore.gauge",
    "build_warm_start": "gamstore.transfer",
    "Provenance": "gamstore.transfer",
    "TransferConfig": "gamstore.transfer",
    "TermBuildContext": "gamstore.transfer",
    "ParentUnusable": "gamstore.transfer",
    "DescriptorMismatch": "gamstore.transfer",
    # storage
    "open_store": "gamstore.store",
    "Store": "gamstore.store",
    "Entry": "gamstore.store",
    "EntryInfo": "gamstore.store",
    "Session": "gamstore.store",
    # views
    "open_fits": "gamstore.views",
    "open_entry": "gamstore.views",
}

__all__ = [
    "__version__",
    "BasisMeta",
    "BlockWarmStartRecord",
    "DescriptorMismatch",
    "Entry",
    "EntryInfo",
    "Fingerprint",
    "Fingerprinter",
    "FitArtifact",
    "FitDescriptor",
    "Gauge",
    "GlobalFitSummary",
    "InnerSummary",
    "IteratePayload",
    "ParentUnusable",
    "Provenance",
    "ResponseSig",
    "RowPopulationTag",
    "SCHEMA_TAG",
    "Session",
    "Store",
    "TermArtifact",
    "TermBuildContext",
    "TermIdentity",
    "TermRole",
    "TransferConfig",
    "WarmStartRecord",
    "build_warm_start",
    "hash_array",
    "open_entry",
    "open_fits",
    "open_store",
    "term_identity_from_block",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gamstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from gamstore.artifact import (
        BasisMeta,
        FitArtifact,
        FitDescriptor,
        GlobalFitSummary,
        ResponseSig,
        RowPopulationTag,
        TermArtifact,
        TermIdentity,
        TermRole,
        term_identity_from_block,
    )
    from gamstore.fingerprint import Fingerprint, Fingerprinter, hash_array
    from gamstore.gauge import Gauge
    from gamstore.records import (
        SCHEMA_TAG,
        BlockWarmStartRecord,
        InnerSummary,
        IteratePayload,
        WarmStartRecord,
    )
    from gamstore.store import Entry, EntryInfo, Session, Store, open_store
    from gamstore.transfer import (
        DescriptorMismatch,
        ParentUnusable,
        Provenance,
        TermBuildContext,
        TransferConfig,
        build_warm_start,
    )
    from gamstore.views import open_entry, open_fits
