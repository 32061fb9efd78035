"""Cost of the local backend's symlink-safe walk (issue 14) against a path-based baseline.

Since issue 14 the local backend opens every folder below the root with
``openat(O_DIRECTORY | O_NOFOLLOW)`` and every file with ``O_NOFOLLOW | O_NONBLOCK`` + ``fstat``
(see ``gamstore/store/local.py``). The baseline, ``PathReads``, is the same backend with the
read path of before (plain ``open``/``stat``/``scandir`` of full paths: follows symlinks,
blocks on FIFOs); its writes are the current ones. Both run interleaved in one process on the
same kind of store: a save of a fold-sized block record under a new key, a lookup with the
decoded-entry cache cleared (markers cached: a fold reading its warm start), and a repeated
lookup. Prints medians in µs and the ratio safe / baseline.
"""

from __future__ import annotations

import argparse
import builtins
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamstore.store.backend import ObjectInfo, check_path  # noqa: E402
from gamstore.store.core import Store  # noqa: E402
from gamstore.store.local import LocalBackend  # noqa: E402
from gamstore.store.testing import block_record  # noqa: E402


class PathReads(LocalBackend):
    """Reads through full paths, as before issue 14 (the unsafe baseline)."""

    def _path(self, path: str) -> str:
        check_path(path)
        return os.path.join(self.root, path) if path else self.root

    def get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        self.requests["get"] += 1
        try:
            with open(self._path(path), "rb", buffering=0) as f:
                return f.read(max_bytes + 1) if max_bytes is not None else f.readall()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def get_many(
        self, paths: Sequence[str], max_bytes: Sequence[int | None] | None = None
    ) -> builtins.list[bytes | None]:
        caps = max_bytes if max_bytes is not None else [None] * len(paths)
        return [self.get(p, c) for p, c in zip(paths, caps, strict=True)]

    def mtime(self, path: str) -> int | None:
        self.requests["head"] += 1
        try:
            return os.stat(self._path(path)).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list_dir(self, prefix: str) -> builtins.list[str]:
        self.requests["list"] += 1
        try:
            return os.listdir(self._path(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        self.requests["list"] += 1
        out: list[ObjectInfo] = []
        stack = [(self._path(prefix), prefix)]
        while stack:
            d, rel = stack.pop()
            try:
                it = os.scandir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with it:
                for e in it:
                    r = f"{rel}/{e.name}" if rel else e.name
                    if e.is_dir(follow_symlinks=False):
                        stack.append((e.path, r))
                    else:
                        st = e.stat(follow_symlinks=False)
                        out.append(ObjectInfo(r, st.st_size, st.st_mtime_ns))
        return out


def _medians(ops: dict[str, Callable[[int], object]], n: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in ops}
    for i in range(n):
        for name, fn in ops.items():  # round-robin: load drift hits both alike
            t = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="operations per kind (default 300)")
    parser.add_argument("--quick", action="store_true", help="60 operations per kind")
    args = parser.parse_args()
    n = 60 if args.quick else args.n
    base = Path(tempfile.mkdtemp(prefix="bench-local-safety-"))
    try:
        stores = {
            "safe": Store(LocalBackend(base / "safe"), sweep_every=10**9),
            "path": Store(PathReads(base / "path"), sweep_every=10**9),
        }
        recs = [block_record(f"k{i}", i, n_blocks=5, width=50) for i in range(n)]

        def saver(s: Store) -> Callable[[int], object]:
            return lambda i: s.save("block", f"k{i}", recs[i])

        def cold(s: Store) -> Callable[[int], object]:
            def op(i: int) -> object:
                s._state.decoded.clear()  # noqa: SLF001 - read the arrays again
                return s.lookup("block", f"k{i}")

            return op

        def warm(s: Store) -> Callable[[int], object]:
            return lambda i: s.lookup("block", f"k{i}")

        rows = []
        for label, make in (
            ("save, new key", saver),
            ("lookup, arrays read", cold),
            ("lookup, repeated", warm),
        ):
            med = _medians({k: make(s) for k, s in stores.items()}, n)
            rows.append((label, med["safe"], med["path"]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n### Local backend: symlink-safe walk vs path-based reads, median of {n}, µs\n")
    print("| operation | safe (openat walk) | path-based | safe / path |")
    print("|---|---|---|---|")
    for label, safe, path in rows:
        print(f"| {label} | {safe:.0f} | {path:.0f} | {safe / path:.2f} |")


if __name__ == "__main__":
    main()
