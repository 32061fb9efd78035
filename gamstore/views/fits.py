"""``open_fits``: every stored entry of one keyspace as one :class:`xarray.Dataset`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import xarray as xr

from gamstore.views.assemble import DEFAULT_MAX_BYTES, assemble_fits, dataset_rows
from gamstore.views.catalog import load_catalog
from gamstore.views.listing import listing_state, read_rows
from gamstore.views.rows import layout_for
from gamstore.views.source import resolve_store

__all__ = ["open_fits"]

log = logging.getLogger("gamstore.views")

_CATALOG_MODES = ("auto", "never", "require")


def open_fits(
    url_or_store: Any,
    keyspace: str = "artifact",
    *,
    storage_options: Mapping[str, Any] | None = None,
    catalog: str = "auto",
    progress: Callable[[int], None] | None = None,
    ragged: bool = False,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> xr.Dataset:
    """Open every stored entry of ``keyspace`` as one Dataset (one row per entry).

    Parameters
    ----------
    url_or_store : str, os.PathLike or Store
        Store URL (``"path"``, ``"file://..."``, ``"memory://name"``, ``"s3://bucket/prefix"``)
        or an open store.
    keyspace : {"artifact", "block", "outer", "inner", "from"}
        Which entries to tabulate.
    storage_options : mapping, optional
        fsspec options for remote URLs (e.g. ``{"endpoint_url": ...}``).
    catalog : {"auto", "never", "require"}
        ``"auto"`` uses the catalog written by ``gamstore catalog`` when it is current
        (same listing signature) and walks the entries otherwise; ``"never"`` always walks;
        ``"require"`` raises if no current catalog exists.
    progress : callable, optional
        Called with 1 per entry read while walking (for progress bars).
    ragged : bool, default False
        Return the ragged vectors as CF contiguous ragged arrays (all rows concatenated
        along ``coef``/``penalty``, counts ``n_coef``/``n_penalty`` with a
        ``sample_dimension`` attribute; terms/blocks concatenated along ``term``/``block``
        with ``n_term``/``n_block`` per fit) instead of NaN-padded ones: memory proportional
        to the stored values however unequal their lengths.
        :func:`gamstore.views.ragged_row` gives one row's vectors.
    max_bytes : int or None, default 1 GiB
        Refuse, before allocating it, a Dataset larger than this
        (:class:`gamstore.views.ViewTooLargeError`, a ``ValueError`` saying how
        large the view would be and how to get a smaller one); None for no cap.

    Returns
    -------
    xarray.Dataset
        Dimension ``fit`` indexed by entry id, with coordinates ``key``, ``keyspace``,
        ``created`` (datetime64), ``family``, ``descriptor_key``, ``kind``, ``producer``,
        scalar variables ``objective``, ``n_rows``, ``converged``, ``iterations``, ``nbytes``
        and the keyspace's ragged arrays NaN-padded with a ``<name>_mask`` and counts:

        * ``artifact``: ``rho(fit, term, penalty)``, ``beta(fit, term, coef)``, ``n_term``,
          ``term_name``/``term_identity``/``term_role``/``term_basis(fit, term)``;
        * ``block``: ``rho(fit, penalty)``, ``block_beta(fit, block, coef)``, ``block_name``;
        * ``outer``, ``from``, ``inner``: ``rho(fit, penalty)``, ``beta(fit, coef)``.

        The ``term``/``block`` dimension is labelled with the term names (``"s(x0)"``) when
        every fit in the view has the same ones; otherwise it is a plain index and the names
        are per fit in ``term_name``/``block_name``. The smoothing parameters are named as
        ``FitResult.rho_names`` does (``te(x,z)[x]``, see :mod:`gamstore.rhonames`) in the
        coordinate ``penalty_name(fit, term, penalty)`` (``artifact``) /
        ``penalty_name(fit, penalty)`` (``""`` for padding or unknown: from the term or block
        names, or the fit's terms in the provenance); the ``penalty`` dimension of a flat
        ``rho`` is labelled with them when every fit has the same ones. Provenance coordinates say which fit
        wrote each entry: ``response``, ``covariates`` (comma-separated),
        ``subject_column``, ``held_out`` (``""`` for a LOSO run's full-data fit),
        ``run_id``, ``gamstore_version`` (all ``""`` for entries written before gamstore
        stored provenance).

        ``kind`` is the kind as stored (a store reads another process's ``final`` as a
        ``checkpoint`` for warm starts; a view shows what was written).
        ``attrs["gamstore"]["source"]`` says whether it came from the ``"catalog"`` or the
        ``"listing"``.

    Raises
    ------
    ValueError
        Unknown keyspace or catalog mode, empty URL, missing local store directory, or
        ``catalog="require"`` without a current catalog.
    ViewTooLargeError
        If the Dataset would be larger than ``max_bytes`` (a ``ValueError``).
    TypeError
        If ``url_or_store`` is neither a URL nor a store.

    Examples
    --------
    >>> ds = gamstore.open_fits("s3://bucket/cache", storage_options={"anon": False})  # doctest: +SKIP
    >>> ds.rho.where(ds.rho_mask).mean("fit")  # doctest: +SKIP
    """
    layout_for(keyspace)
    if catalog not in _CATALOG_MODES:
        raise ValueError(f"catalog: expected one of {', '.join(_CATALOG_MODES)}, got {catalog!r}")
    if not isinstance(ragged, bool):
        raise TypeError(f"ragged: expected True or False, got {type(ragged).__name__}")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0
    ):
        raise ValueError(f"max_bytes: expected an int > 0 or None, got {max_bytes!r:.40}")
    store = resolve_store(url_or_store, storage_options=storage_options)
    state = listing_state(store, keyspace)
    meta: dict[str, Any] = {"store_url": store.url, "listing_signature": state.signature}
    if catalog != "never":
        # the catalog holds the padded Dataset: read only when that fits max_bytes
        ds = load_catalog(store, keyspace, state=state, max_bytes=max_bytes)
        if ds is not None:
            if ragged:
                ds = assemble_fits(
                    dataset_rows(ds, keyspace), keyspace, ragged=True, max_bytes=max_bytes
                )
            ds.attrs.setdefault("gamstore", {}).update(meta, source="catalog")
            return ds
        if catalog == "require":
            raise ValueError(
                f"catalog: no current catalog for keyspace {keyspace!r} in {store.url} "
                "(run `gamstore catalog URL`)"
            )
    infos = state.infos()  # from the same walk as the signature
    rows, skipped = read_rows(store, infos, progress=progress)
    if skipped:
        log.info("gamstore.views: %d of %d %s entries skipped", skipped, len(infos), keyspace)
    meta.update(source="listing", skipped=skipped)
    return assemble_fits(rows, keyspace, attrs=meta, ragged=ragged, max_bytes=max_bytes)
