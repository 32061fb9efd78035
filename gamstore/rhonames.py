"""Names of smoothing parameters (ρ): one convention for fits, LOSO results and the views.

A block with one ρ is named by its label (``s(x)``, ``s(x):fA``); a block with several (a
tensor product ``te()``/``ti()``, one ρ per margin) by its label then the margin in brackets
(``te(x,z)[x]``, ``te(x,z):fA[z]``), or the margin's position from 1 (``te(x,z)[2]``) when
the margins are not known. :meth:`gamstore.fit.design.Design.rho_labels` (hence
``FitResult.rho_names``), :mod:`gamstore.loso.results` and the ``open_fits`` views all name
ρ with :func:`block_rho_labels`; stored records that carry only block labels and ρ counts
(or only block labels and the length of ρ) are named with :func:`rho_labels_for_blocks`,
which reads the margins back from a tensor label.

This module is pure (no numpy, no I/O): the views import it without the fitter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "PARAMETRIC",
    "block_label",
    "block_rho_labels",
    "is_parametric",
    "penalty_block",
    "rho_labels_for_blocks",
    "tensor_margins",
]

#: Name of the unpenalized (parametric) block of a gamstore fit.
PARAMETRIC = "(parametric)"

# mgcv's tensor label: te(x,z) / ti(x,z), optionally followed by ":<by>" (a by column or a
# factor level); the margins are the comma-separated names between the parentheses
_TENSOR = re.compile(r"^(?:te|ti)\(([^()]*)\)(?::.*)?$")
# a warm-start block spec names a basis other than the P-spline: "te(x,z)[bs=cr]"
_BASIS_SUFFIX = re.compile(r"\[bs=[^\[\]]*\]$")


def tensor_margins(label: str) -> tuple[str, ...]:
    """The margins named by a tensor product's label (``te(x,z):fA`` -> ``("x", "z")``).

    Returns ``()`` for a label that is not a ``te()``/``ti()`` of two or more margins.
    """
    m = _TENSOR.match(label)
    if m is None:
        return ()
    margins = tuple(m.group(1).split(","))
    return margins if len(margins) >= 2 and all(margins) else ()


def block_label(name: str) -> str:
    """A block's label without the basis tag a warm-start block spec adds (``[bs=cr]``)."""
    return _BASIS_SUFFIX.sub("", name)


def is_parametric(name: str) -> bool:
    """Whether ``name`` is the unpenalized block (``(parametric)``, or with its columns
    ``(parametric)[(Intercept),fB]`` as a warm-start block spec names it)."""
    return name == PARAMETRIC or name.startswith(PARAMETRIC + "[")


def block_rho_labels(label: str, n_rho: int, margins: Sequence[str] | None = None) -> list[str]:
    """The names of one block's ``n_rho`` smoothing parameters.

    Parameters
    ----------
    label : str
        The block's label (``s(x)``, ``te(x,z)``, ``te(x,z):fA``).
    n_rho : int
        How many ρ the block has (0 for an unpenalized block).
    margins : sequence of str, optional
        The tensor product's margins. Without it they are read from ``label``
        (:func:`tensor_margins`).

    Returns
    -------
    list of str
        ``[]`` for ``n_rho <= 0``; ``[label]`` for one ρ; ``label[margin]`` per margin when
        there are ``n_rho`` margins, else ``label[1]``, ``label[2]``, ...
    """
    if n_rho <= 0:
        return []
    if n_rho == 1:
        return [label]
    names = tuple(margins) if margins is not None else tensor_margins(label)
    if len(names) == n_rho:
        return [f"{label}[{m}]" for m in names]
    return [f"{label}[{i + 1}]" for i in range(n_rho)]


def rho_labels_for_blocks(blocks: Sequence[str], n_rho: int) -> list[str] | None:
    """Names for a ρ vector of length ``n_rho`` known only by its blocks' labels.

    The parametric block has no ρ, a tensor label (``te(x,z)``) one per margin, any other
    block one. When those counts do not add up to ``n_rho`` but the penalized blocks are
    ``n_rho`` (a fitter with one ρ per block), each block names one ρ.

    Parameters
    ----------
    blocks : sequence of str
        Block labels in model (ρ) order; a ``[bs=...]`` tag is dropped (:func:`block_label`).
    n_rho : int
        Length of ρ.

    Returns
    -------
    list of str or None
        One distinct name per ρ, or None when the labels do not determine them.
    """
    smooth = [block_label(b) for b in blocks if not is_parametric(b)]
    if n_rho <= 0 or not smooth or not all(smooth):
        return None
    counts = [max(1, len(tensor_margins(b))) for b in smooth]
    if sum(counts) == n_rho:
        out = [name for b, c in zip(smooth, counts, strict=True) for name in block_rho_labels(b, c)]
    elif len(smooth) == n_rho:
        out = smooth
    else:
        return None
    return out if len(set(out)) == len(out) else None


def penalty_block(name: str, blocks: Sequence[str]) -> str:
    """The block a smoothing parameter belongs to: itself, or for a tensor margin's
    ``te(x,z)[x]`` the block ``te(x,z)``; ``""`` when none is known (``sp0``)."""
    if name in blocks:
        return name
    head = name.rsplit("[", 1)[0]
    return head if name.endswith("]") and head in blocks else ""
