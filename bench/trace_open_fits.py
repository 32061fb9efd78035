"""Count the Python calls and module switches of ``open_fits`` on one stored entry (issue 16).

Run: ``OPENBLAS_NUM_THREADS=1 python bench/trace_open_fits.py`` (``--repeat 3`` by default).

How long a reader walks back and forth through the package when following one ``open_fits``:
each run is a fresh interpreter that fills a new local store with one fit artifact, opens a
*second* handle on it (so the handle's in-process caches are cold, as in a new session after
the save), warms up xarray once on another store, then traces one ``open_fits(path)`` with
``sys.setprofile``:

* ``calls``: Python function calls (``"call"`` events) made inside ``open_fits``;
* ``gamstore calls``: those in ``gamstore`` modules;
* ``module switches``: consecutive calls whose functions live in different modules;
* ``gamstore module switches``: the same over the ``gamstore`` calls only (what a reader of
  the package follows; calls into numpy/xarray/zarr in between are skipped);
* ``gamstore modules``: distinct ``gamstore`` modules entered;
* ``backend list calls``: ``list`` + ``list_dir`` requests the store's backend counted.

``cold`` is the first call on the handle (markers and decoded entries not cached yet),
``warm`` a second call on the same handle.

Counts depend on the installed zarr/xarray/numpy versions; compare commits on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_CHILD = r"""
import json, sys, tempfile
from pathlib import Path
import gamstore
from gamstore.views.synthetic import populate

tmp = Path(tempfile.mkdtemp())
populate(gamstore.open_store(tmp / "warm"), 1, seed=2, keyspaces=("artifact",))
gamstore.open_fits(tmp / "warm")  # imports, xarray's first-use probes
populate(gamstore.open_store(tmp / "s"), 1, seed=1, keyspaces=("artifact",))
from gamstore.store.cache import clear_states
clear_states()  # cold per-root caches, as in a new session after the save
store = gamstore.open_store(tmp / "s", read_only=True)

def trace():
    global calls, gcalls, switches, last, mods, gswitches, glast
    calls = gcalls = switches = gswitches = 0
    last = glast = None
    mods = set()
    before = store.stats().requests
    sys.setprofile(prof)
    ds = gamstore.open_fits(store)
    sys.setprofile(None)
    assert ds.sizes["fit"] == 1
    after = store.stats().requests
    lists = (after["list"] - before["list"]) + (after["list_dir"] - before["list_dir"])
    return {"calls": calls, "gamstore calls": gcalls, "module switches": switches,
            "gamstore module switches": gswitches, "gamstore modules": len(mods),
            "backend list calls": lists}

def prof(frame, event, arg):
    global calls, gcalls, switches, last, gswitches, glast
    if event != "call":
        return
    mod = frame.f_globals.get("__name__", "?")
    calls += 1
    if mod.startswith("gamstore"):
        gcalls += 1
        mods.add(mod)
        if glast is not None and mod != glast:
            gswitches += 1
        glast = mod
    if last is not None and mod != last:
        switches += 1
    last = mod

cold = trace()
warm = trace()
print(json.dumps({**{f"cold: {k}": v for k, v in cold.items()},
                  **{f"warm: {k}": v for k, v in warm.items()}}))
"""


def run_once(root: Path) -> dict[str, int]:
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env=env,
        cwd=root,  # "-c" puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes (median)")
    parser.add_argument(
        "--root", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to trace"
    )
    args = parser.parse_args()
    runs = [run_once(args.root) for _ in range(args.repeat)]
    print(f"\n### open_fits on one entry, traced (median of {args.repeat} fresh processes)\n")
    print("| measure | count |")
    print("|---|---:|")
    for name in runs[0]:
        print(f"| {name} | {statistics.median(r[name] for r in runs):.0f} |")


if __name__ == "__main__":
    main()
