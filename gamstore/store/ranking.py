"""Which entry a lookup returns (seed semantics with the later fixes, DESIGN §5).

Best mode:

* a ``final`` beats any ``checkpoint``; of two finals the newer wins;
* of two checkpoints the lower objective wins, except that objectives within
  :data:`OBJECTIVE_TIE` count as equal and then the newer wins; an objective beats none;
  with no objectives the newer wins.

Latest mode: the newer wins. "Newer" compares (creation ns, kind rank, entry id), so equal
stamps are broken deterministically (final over checkpoint, then the id).

Kinds here are the *effective* kinds: a final written by another producer has already been
downgraded to a checkpoint by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OBJECTIVE_TIE", "Candidate", "better", "rank"]

OBJECTIVE_TIE = 1e-12


@dataclass(frozen=True, slots=True)
class Candidate:
    """What ranking needs to know about one committed entry."""

    path: str
    entry_id: str
    created: int
    kind: str  # effective kind
    objective: float | None

    def newer_key(self) -> tuple[int, int, str]:
        return (self.created, 1 if self.kind == "final" else 0, self.entry_id)


def better(a: Candidate, b: Candidate, mode: str = "best") -> bool:
    """True when ``a`` should be returned rather than ``b``."""
    newer = a.newer_key() > b.newer_key()
    if mode == "latest":
        return newer
    a_final, b_final = a.kind == "final", b.kind == "final"
    if a_final != b_final:
        return a_final
    if a_final:
        return newer
    if a.objective is not None and b.objective is not None:
        if abs(a.objective - b.objective) < OBJECTIVE_TIE:
            return newer
        return a.objective < b.objective
    if (a.objective is None) != (b.objective is None):
        return a.objective is not None
    return newer


def rank(cands: list[Candidate], mode: str = "best") -> list[Candidate]:
    """Order candidates best first (repeated selection: the tie rule is not transitive)."""
    if mode not in ("best", "latest"):
        raise ValueError(f"mode: expected 'best' or 'latest', got {mode!r}")
    rest = list(cands)
    out: list[Candidate] = []
    while rest:
        win = 0
        for i in range(1, len(rest)):
            if better(rest[i], rest[win], mode):
                win = i
        out.append(rest.pop(win))
    return out
