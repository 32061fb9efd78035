"""The keyspace registry: every keyspace, the record type it holds and its view layout.

This is the one list of keyspaces. The store checks keyspace names against it, the listing
walks its keyspaces, and the views (``open_fits``, the catalog, HDF5) and the CLI take their
per-keyspace layout and choices from it. The store itself never looks inside a record: the
record type is a name (``RECORD_TYPE`` of a class in :data:`gamstore.records.RECORD_TYPES`)
and the view layout is plain data the views interpret.

To add a keyspace: add one :class:`Keyspace` to :data:`REGISTRY` (name, what it holds, record
type, view layout), a view rule for its record type in ``gamstore/views/extract.py`` if the
record type is new, and the keyspace to ``docs/storage-layout.md``. Keyspace names are hashed
into every key folder, so existing keyspaces never change name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["KEYSPACES", "REGISTRY", "Keyspace", "KeyspaceLayout", "keyspace_info"]


@dataclass(frozen=True)
class KeyspaceLayout:
    """Which ragged arrays the view rows of one keyspace carry and along which dimensions.

    Parameters
    ----------
    keyspace : str
        The keyspace name (``"artifact"``, ``"block"``, ...).
    group_dim : str or None
        Name of the group dimension of the nested arrays (``"term"``, ``"block"``), or None
        when the keyspace has no nested arrays.
    nested : mapping of str to str
        Nested array name -> its inner dimension (``{"rho": "penalty", "beta": "coef"}``):
        one vector per group, each of its own length.
    flat : mapping of str to str
        Flat array name -> its dimension: one vector per fit.
    labels : tuple of str
        String variables along ``group_dim``.
    """

    keyspace: str
    group_dim: str | None
    nested: Mapping[str, str] = field(default_factory=dict)
    flat: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    @property
    def group_count(self) -> str | None:
        """Name of the per-fit group count variable (``n_term``/``n_block``), if any."""
        return None if self.group_dim is None else f"n_{self.group_dim}"


@dataclass(frozen=True)
class Keyspace:
    """One keyspace of the store.

    Parameters
    ----------
    name : str
        The keyspace name; hashed into the folder of every key, so never renamed.
    holds : str
        What its entries are, in words.
    record_type : str
        ``RECORD_TYPE`` of the records saved there.
    layout : KeyspaceLayout
        How the views tabulate its entries.
    """

    name: str
    holds: str
    record_type: str
    layout: KeyspaceLayout


_PER_FIT = {"rho": "penalty", "beta": "coef"}

#: Every keyspace, in listing order. Disjoint by construction: the keyspace name is hashed
#: into the folder of every key, so one key string lands in a different folder in each.
REGISTRY: Mapping[str, Keyspace] = MappingProxyType(
    {
        ks.name: ks
        for ks in (
            Keyspace(
                "inner",
                "record A: WarmStartRecord",
                "warm_start",
                KeyspaceLayout("inner", None, flat=_PER_FIT),
            ),
            Keyspace(
                "block",
                "record B: BlockWarmStartRecord",
                "block_warm_start",
                KeyspaceLayout(
                    "block",
                    "block",
                    nested={"block_beta": "coef"},
                    flat={"rho": "penalty"},
                    labels=("block_name",),
                ),
            ),
            Keyspace(
                "outer",
                "outer-iterate sessions: IteratePayload",
                "iterate",
                KeyspaceLayout("outer", None, flat=_PER_FIT),
            ),
            Keyspace(
                "artifact",
                "cross-fit artifacts: FitArtifact",
                "fit_artifact",
                KeyspaceLayout(
                    "artifact",
                    "term",
                    nested=_PER_FIT,
                    labels=("term_name", "term_identity", "term_role", "term_basis"),
                ),
            ),
            Keyspace(
                "from",
                "explicit warm_start_from: IteratePayload",
                "iterate",
                KeyspaceLayout("from", None, flat=_PER_FIT),
            ),
        )
    }
)

#: Keyspace name -> what it holds (the registry's names, in its order).
KEYSPACES: Mapping[str, str] = MappingProxyType({n: ks.holds for n, ks in REGISTRY.items()})


def keyspace_info(name: object) -> Keyspace:
    """Return the registry row of keyspace ``name``.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If ``name`` is not a known keyspace (the message lists them).
    """
    if not isinstance(name, str):
        raise TypeError(f"keyspace: expected a str, got {type(name).__name__}")
    ks = REGISTRY.get(name)
    if ks is None:
        raise ValueError(
            f"keyspace: unknown keyspace {name!r}; expected one of {', '.join(REGISTRY)}"
        )
    return ks
