"""Store benchmarks: local latency beside peers, S3 request counts, scaling with store size.

Run ``OPENBLAS_NUM_THREADS=1 python bench/bench_store.py [--quick] [--dir DIR] [--skip-s3]
[--skip-scaling]``. Prints markdown tables (medians, ratios from one run in one process).

* local: a 5-block record of 50 coefficients each (+ rho) saved/read by gamstore, one ``.npz``
  file, diskcache, a joblib-style pickle file per key, and zarr's high-level API;
* s3: S3 API calls per save / hit / miss on a moto server on loopback, counted by wrapping
  ``S3FileSystem._call_s3`` (every call s3fs makes), beside zarr's high-level API on the same
  server;
* object stores (``--only-objectstores``, also part of the default run unless
  ``--skip-objectstores``): the same save / first hit / repeated hit / miss on the one fsspec
  backend over S3 (moto), GCS (fake-gcs-server) and Azure Blob (Azurite), all on loopback:
  backend calls per operation (``store.backend.requests``: one fsspec call each) and median ms;
* scaling: hit and save latency at 10, 1 000 and 100 000 entries (``--quick``: 10 000) and the
  eviction-sweep cost per save;
* small-entry save: a LOSO fold's block record (4 blocks of 1/9/9/9 coefficients + 3 rho) saved
  under a new key, on the system temp dir and on /dev/shm: file-system calls per save (counted
  by wrapping the ``os`` functions) and time, beside the previous write path (kept below as
  ``LegacyLocalBackend`` plus the previous codec steps, so before/after run in one process),
  ``np.savez`` of the same arrays into one file, the same folders and files written with bare
  ``os`` calls, and the same number of files in one folder. ``--only-small-save`` runs just
  this table;
* packed entries (``--pack``): a 5-block record (5 x 50 coefficients + 4 rho, entry format 2:
  ``values`` + ``offsets`` + marker) saved by gamstore under a new key (in a fresh store, and
  in a known shard) and under a known key, in layout 2 and in layout 1 (a store whose root
  says 1: the write path before layout 2) side by side, beside ``np.savez`` of the same arrays
  into one file on the same disk (system temp dir and /dev/shm), with file-system calls per
  save; then S3 requests per save (both layouts) / first hit on moto (unless ``--skip-s3``);
* level docs (``--only-levels``): what the Zarr level docs (keyspace and shard folders; key
  folders in layout 1) cost per save: first save under a new key in a new or known shard vs
  a repeat save, with them vs without (a ``Store`` that makes no level docs), local fs calls
  and time, S3 requests on moto;
* lookup against the size of the keyspace (``--only-lookup-scaling``): layout 2 lists a key's
  shard where layout 1 listed its key folder; first hit and miss at 1 000 / 20 000 / 100 000
  entries in the probed keyspace, both layouts interleaved.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gamstore  # noqa: E402
from gamstore.records import ArrayPart, BlockWarmStartRecord, InnerSummary, RecordParts  # noqa: E402
from gamstore.store.backend import check_path  # noqa: E402
from gamstore.store.local import LocalBackend  # noqa: E402
from gamstore.store.testing import block_record  # noqa: E402


def median_us(fn: Callable[[int], Any], n: int, warmup: int = 5) -> float:
    for i in range(warmup):
        fn(-1 - i)
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def arrays_of(rec: Any) -> dict[str, np.ndarray]:
    return {n: p.data for n, p in rec.to_parts().arrays.items()}


# ------------------------------------------------------------------------------ local
def interleaved(ops: dict[str, Callable[[int], Any]], n: int, warmup: int = 3) -> dict[str, float]:
    """Median µs per op; the ops run round-robin so load drift hits all of them alike."""
    for i in range(warmup):
        for fn in ops.values():
            fn(-1 - i)
    times: dict[str, list[float]] = {k: [] for k in ops}
    for i in range(n):
        for name, fn in ops.items():
            t = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


def bench_local(base: Path, n: int) -> list[tuple[str, float, float, float, float]]:
    import diskcache
    import zarr
    from zarr.storage import LocalStore

    base.mkdir(parents=True, exist_ok=True)
    recs = [block_record(f"key-{i}", i % 7) for i in range(n + 10)]
    arrs = [arrays_of(r) for r in recs]
    attrs = {"key": "k", "objective": 1.0}

    store = gamstore.open_store(base / "gamstore")
    reader = gamstore.open_store(base / "gamstore", sweep_every=10**9)

    def g_hit(i: int) -> None:
        reader._state.decoded.clear()
        reader._state.markers.clear()
        assert reader.lookup("block", f"key-{i}") is not None

    d = base / "npz"
    d.mkdir()

    def npz_save(i: int) -> None:
        flat = {k.replace("/", "_"): v for k, v in arrs[i % len(arrs)].items()}
        np.savez(d / f"k{i}.npz", attrs=np.array(repr(attrs)), **flat)

    def npz_load(i: int) -> None:
        with np.load(d / f"k{i}.npz") as z:
            for k in z.files:
                z[k]

    def npz_miss(i: int) -> None:
        try:
            np.load(d / f"absent{i}.npz")
        except FileNotFoundError:
            pass

    cache = diskcache.Cache(str(base / "diskcache"))
    pdir = base / "pickle"
    pdir.mkdir()

    def pk_save(i: int) -> None:
        folder = pdir / f"{i & 0xFFFFFFFF:08x}"
        folder.mkdir(exist_ok=True)
        tmp = folder / f"output.pkl.{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            pickle.dump(arrs[i % len(arrs)], f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / "output.pkl")

    def pk_load(i: int) -> None:
        with open(pdir / f"{i & 0xFFFFFFFF:08x}" / "output.pkl", "rb") as f:
            pickle.load(f)

    def pk_miss(i: int) -> None:
        try:
            open(pdir / f"absent{i}" / "output.pkl", "rb")
        except FileNotFoundError:
            pass

    zs = LocalStore(str(base / "zarr"))

    def z_save(i: int) -> None:
        g = zarr.create_group(zs, path=f"e{i}", attributes=attrs, zarr_format=3, overwrite=True)
        for name, a in arrs[i % len(arrs)].items():
            g.create_array(name.replace("/", "_"), data=a, chunks=a.shape, compressors=None)

    def z_load(i: int) -> None:
        g = zarr.open_group(zs, path=f"e{i}", mode="r", zarr_format=3)
        g.attrs.asdict()
        for name in arrs[0]:
            g[name.replace("/", "_")][...]  # type: ignore[index]

    def z_miss(i: int) -> None:
        try:
            zarr.open_group(zs, path=f"absent{i}", mode="r", zarr_format=3)
        except FileNotFoundError:
            pass

    saves = interleaved(
        {
            "gamstore": lambda i: store.save("block", f"key-{i}", recs[i % len(recs)]),
            "npz file": npz_save,
            "diskcache": lambda i: cache.set(f"k{i}", arrs[i % len(arrs)]),
            "pickle file (joblib-style)": pk_save,
            "zarr high-level API": z_save,
        },
        n,
    )
    hits = interleaved(
        {
            "gamstore": g_hit,
            "npz file": npz_load,
            "diskcache": lambda i: cache.get(f"k{i}"),
            "pickle file (joblib-style)": pk_load,
            "zarr high-level API": z_load,
        },
        n,
    )
    reader.lookup("block", "key-3")
    repeated = interleaved(
        {
            "gamstore": lambda i: reader.lookup("block", "key-3"),
            "npz file": lambda i: npz_load(3),
            "diskcache": lambda i: cache.get("k3"),
            "pickle file (joblib-style)": lambda i: pk_load(3),
            "zarr high-level API": lambda i: z_load(3),
        },
        n,
    )
    misses = interleaved(
        {
            "gamstore": lambda i: reader.lookup("block", f"absent-{i}"),
            "npz file": npz_miss,
            "diskcache": lambda i: cache.get(f"absent{i}"),
            "pickle file (joblib-style)": pk_miss,
            "zarr high-level API": z_miss,
        },
        n,
    )
    cache.close()
    return [(k, saves[k], hits[k], repeated[k], misses[k]) for k in saves]


def print_local(rows: list[tuple[str, float, float, float, float]], where: str) -> None:
    npz = next(r for r in rows if r[0] == "npz file")
    print(f"\n### Local store ({where}): 5 blocks x 50 coefficients + rho, medians in µs\n")
    print("| backend | save | first hit | repeated hit | miss | save / npz | first hit / npz |")
    print("|---|---|---|---|---|---|---|")
    for name, s, h, c, m in rows:
        print(
            f"| {name} | {s:.0f} | {h:.0f} | {c:.1f} | {m:.1f} | {s / npz[1]:.2f} | {h / npz[2]:.2f} |"
        )
    g = rows[0]
    print(
        f"\nTargets: first hit ≤ 2.5× npz → {g[2] / npz[2]:.2f}×; save ≤ 4× npz → "
        f"{g[1] / npz[1]:.2f}×; miss ≤ 100 µs → {g[4]:.1f} µs; repeated hit vs diskcache get "
        f"→ {g[3] / rows[2][2]:.2f}×."
    )


# ------------------------------------------------------------------------------ object stores
def _objectstore_rows(
    label: str, url: str, opts: dict[str, Any], n: int
) -> list[tuple[str, str, Counter[str], float]]:
    store = gamstore.open_store(url, storage_options=opts, sweep_every=10**9)
    recs = [block_record(f"key-{i}", i % 7) for i in range(n)]
    store.save("block", "warm", recs[0])
    reqs = store.backend.requests
    rows: list[tuple[str, str, Counter[str], float]] = []

    def measure(op: str, fn: Callable[[int], Any]) -> None:
        before = Counter(reqs)
        t = median_us(fn, n, warmup=0)
        delta = Counter({k: (v - before[k]) / n for k, v in reqs.items()})
        rows.append((label, op, +delta, t))

    measure("save", lambda i: store.save("block", f"key-{i}", recs[i]))

    def first_hit(i: int) -> None:
        store._state.decoded.clear()
        store._state.markers.clear()
        assert store.lookup("block", f"key-{i}") is not None

    measure("first hit", first_hit)
    store.lookup("block", "key-0")
    measure("repeated hit", lambda i: store.lookup("block", "key-0"))
    measure("miss", lambda i: store.lookup("block", f"absent-{i}"))
    store.close()
    return rows


def bench_objectstores(n: int) -> None:
    """Backend calls and median ms per operation on S3, GCS and Azure emulators (loopback)."""
    import logging

    import botocore.session
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import emulators

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    rows: list[tuple[str, str, Counter[str], float]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-objectstores-"))
    procs: list[Any] = []
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        moto.start()
        host, port = moto.get_host_and_port()
        s3_ep = f"http://{host}:{port}"
        s3_opts = {"endpoint_url": s3_ep, "key": "bench-key", "secret": "bench-secret"}
        botocore.session.Session().create_client(
            "s3",
            endpoint_url=s3_ep,
            region_name="us-east-1",
            aws_access_key_id="bench-key",
            aws_secret_access_key="bench-secret",
        ).create_bucket(Bucket="bench")
        targets: list[tuple[str, str, dict[str, Any]]] = [("S3 (moto)", "s3://bench/g", s3_opts)]
        binary = emulators.fake_gcs_binary()
        if binary is not None:
            gcs_ep, proc = emulators.start_fake_gcs(binary)
            procs.append(proc)
            emulators.create_gcs_bucket(gcs_ep, "bench")
            targets.append(("GCS (fake-gcs-server)", "gs://bench/g", emulators.gcs_options(gcs_ep)))
        command = emulators.azurite_command()
        if command is not None:
            az_ep, proc = emulators.start_azurite(command, work)
            procs.append(proc)
            az_opts = emulators.azure_options(az_ep)
            emulators.create_azure_container(az_opts, "bench")
            targets.append(("Azure Blob (Azurite)", "az://bench/g", az_opts))
        for label, url, opts in targets:
            rows += _objectstore_rows(label, url, opts, n)
    finally:
        for proc in procs:
            emulators.stop(proc)
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)

    def fmt(c: Counter[str]) -> str:
        return ", ".join(f"{v:g} {k}" for k, v in sorted(c.items())) or "–"

    print(f"\n### Object stores on loopback emulators: backend calls per operation (mean of {n})\n")
    print("| service | operation | backend calls | median ms |")
    print("|---|---|---|---|")
    for label, op, c, t in rows:
        print(f"| {label} | {op} | {fmt(c)} | {t / 1e3:.1f} |")


# ------------------------------------------------------------------------------ S3
def bench_s3(n: int) -> None:
    import logging

    import botocore.session
    import zarr
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from zarr.storage import FsspecStore

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    opts = {"endpoint_url": endpoint, "key": "bench-key", "secret": "bench-secret"}
    client = botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench-key",
        aws_secret_access_key="bench-secret",
    )
    client.create_bucket(Bucket="bench")
    try:
        store = gamstore.open_store("s3://bench/g", storage_options=opts, sweep_every=10**9)
        fs = store.backend.fs  # type: ignore[attr-defined]
        calls: Counter[str] = Counter()
        orig = fs._call_s3

        async def counting(method: str, *a: Any, **kw: Any) -> Any:
            calls[method + ("(If-None-Match)" if kw.get("IfNoneMatch") else "")] += 1
            return await orig(method, *a, **kw)

        fs._call_s3 = counting
        recs = [block_record(f"key-{i}", i % 7) for i in range(n)]
        store.save("block", "warm", recs[0])
        per: dict[str, tuple[Counter[str], float]] = {}

        def measure(label: str, fn: Callable[[int], Any]) -> None:
            calls.clear()
            t = median_us(fn, n, warmup=0)
            per[label] = (Counter({k: v / n for k, v in calls.items()}), t)

        measure("save, new key (fresh store: mostly new shards)",
                lambda i: store.save("block", f"key-{i}", recs[i]))  # fmt: skip
        from gamstore.store.core import Store
        from gamstore.store.layout import key_folder
        from gamstore.store.registry import open_backend

        same = _keys_in_shard(key_folder("block", "warm")[:2], n, "s3-shard")
        measure("save, new key, known shard", lambda i: store.save("block", same[i], recs[i]))
        measure("save, known key", lambda i: store.save("block", "warm", recs[i]))
        # the same saves into a layout-1 store (the write path before layout 2)
        old = Store(_layout1(open_backend("s3://bench/g1", opts)), sweep_every=10**9)
        old.backend.fs._call_s3 = counting  # type: ignore[attr-defined]
        old.save("block", "warm", recs[0])
        measure("layout 1: save, new key (fresh store: mostly new shards)",
                lambda i: old.save("block", f"key-{i}", recs[i]))  # fmt: skip
        same1 = _keys_in_shard(key_folder("block", "warm")[:2], n, "s3-shard1")
        measure("layout 1: save, new key, known shard",
                lambda i: old.save("block", same1[i], recs[i]))  # fmt: skip
        measure("layout 1: save, known key", lambda i: old.save("block", "warm", recs[i]))

        def first_hit(i: int) -> None:
            store._state.decoded.clear()
            store._state.markers.clear()
            assert store.lookup("block", f"key-{i}") is not None

        measure("first hit", first_hit)
        store.lookup("block", "key-0")
        measure("repeated hit", lambda i: store.lookup("block", "key-0"))
        measure("miss", lambda i: store.lookup("block", f"absent-{i}"))
        fs._call_s3 = orig

        # zarr's high-level API on the same server, for comparison (request counts only)
        zfs_store = FsspecStore.from_url("s3://bench/z", storage_options=opts)
        zfs = zfs_store.fs
        zcalls: Counter[str] = Counter()
        zorig = zfs._call_s3

        async def zcounting(method: str, *a: Any, **kw: Any) -> Any:
            zcalls[method] += 1
            return await zorig(method, *a, **kw)

        zfs._call_s3 = zcounting
        arrs = arrays_of(recs[0])
        nz = max(3, n // 5)

        def z_save(i: int) -> None:
            g = zarr.create_group(zfs_store, path=f"e{i}", attributes={"k": 1}, zarr_format=3)
            for name, a in arrs.items():
                g.create_array(name.replace("/", "_"), data=a, chunks=a.shape, compressors=None)

        def z_load(i: int) -> None:
            g = zarr.open_group(zfs_store, path=f"e{i}", mode="r", zarr_format=3)
            for name in arrs:
                g[name.replace("/", "_")][...]  # type: ignore[index]

        zper: dict[str, tuple[Counter[str], float]] = {}
        for label, fn in (("save", z_save), ("first hit", z_load)):
            zcalls.clear()
            t = median_us(fn, nz, warmup=0)
            zper[label] = (Counter({k: v / nz for k, v in zcalls.items()}), t)
    finally:
        srv.stop()

    def fmt(c: Counter[str]) -> str:
        return ", ".join(f"{v:g} {k}" for k, v in sorted(c.items())) or "–"

    print(f"\n### S3 on moto (loopback), requests per operation (mean of {n}) and median ms\n")
    print("| operation | gamstore requests | gamstore ms | zarr high-level requests | zarr ms |")
    print("|---|---|---|---|---|")
    for label, (c, t) in per.items():
        z = zper.get(label)
        zs = (fmt(z[0]), f"{z[1] / 1e3:.1f}") if z else ("–", "–")
        print(f"| {label} | {fmt(c)} | {t / 1e3:.1f} | {zs[0]} | {zs[1]} |")


# ------------------------------------------------------------------------------ scaling
class Filler:
    """A one-array record used to fill stores quickly (2 objects + marker per entry)."""

    RECORD_TYPE = "bench_filler"

    def __init__(self, i: int) -> None:
        self.i = i

    def to_parts(self) -> RecordParts:
        return RecordParts(
            fields={"i": self.i}, arrays={"v": ArrayPart(np.array([float(self.i)]), ("v",))}
        )

    @classmethod
    def from_parts(cls, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> Filler:
        return cls(int(fields["i"]))


def tiny(i: int) -> Filler:
    return Filler(i)


def bench_scaling(base: Path, sizes: list[int], n: int) -> None:
    """Stores of every size are built first, then measured round-robin (load drift hits all)."""
    from gamstore.store.cache import clear_states

    roots = {}
    for size in sizes:
        root = base / f"scale-{size}"
        filler = gamstore.open_store(root, sweep_every=10**9, record_types={"bench_filler": Filler})
        for i in range(size):
            filler.save("outer", f"fill-{i}", tiny(i))
        for i in range(n):
            filler.save("block", f"probe-{i}", block_record(f"probe-{i}"))
        filler.close()
        roots[size] = root
    del filler
    # fresh handles = new processes: caches and throttle state start empty, and the
    # fillers' objects must not weigh on the garbage collector during the timings
    clear_states()
    gc.collect()
    recs = [block_record(f"probe-{i}") for i in range(n)]
    handles = {size: gamstore.open_store(root) for size, root in roots.items()}
    first_save = {}
    for size, h in handles.items():
        t = time.perf_counter()
        h.save("block", "first-save", recs[0])
        first_save[size] = (time.perf_counter() - t) * 1e3

    def hit_op(h: gamstore.Store) -> Callable[[int], None]:
        def op(i: int) -> None:
            h._state.decoded.clear()
            h._state.markers.clear()
            assert h.lookup("block", f"probe-{i % n}") is not None

        return op

    hits = interleaved({str(k): hit_op(h) for k, h in handles.items()}, n)
    repeated = interleaved(
        {str(k): (lambda i, h=h: h.lookup("block", "probe-1")) for k, h in handles.items()}, n
    )
    n_saves = 4 * 32
    save_times: dict[int, list[float]] = {k: [] for k in handles}
    for i in range(n_saves):
        for k, h in handles.items():
            t = time.perf_counter()
            h.save("block", f"new-{i}", recs[i % n])
            save_times[k].append(time.perf_counter() - t)
    print("\n### Scaling (local): latency against entries already stored\n")
    print(
        "| entries | save median µs | save mean µs (128 saves) | first hit µs | repeated hit µs "
        "| first save of a process ms | one sweep ms (listings) | sweep every n saves "
        "| sweep cost per save µs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for k, h in handles.items():
        med = statistics.median(save_times[k]) * 1e6
        mean = statistics.fmean(save_times[k]) * 1e6
        # the sweep a save would trigger now, timed alone; amortised over its interval
        st = h._state
        counts = st.shard_counts or [0]
        every = max(h.sweep_every, sum(counts) // 256)
        lists0 = h.stats().requests["list"]
        t = time.perf_counter()
        h._sweep(False)
        sweep_ms = (time.perf_counter() - t) * 1e3
        lists = h.stats().requests["list"] - lists0
        per_save = sweep_ms * 1e3 / every
        rows.append((k, med, mean, hits[str(k)], per_save))
        print(
            f"| {k} | {med:.0f} | {mean:.0f} | {hits[str(k)]:.0f} | {repeated[str(k)]:.1f} "
            f"| {first_save[k]:.1f} | {sweep_ms:.1f} ({lists}) | {every} | {per_save:.0f} |"
        )
    lo, hi = rows[0], rows[-1]
    print(
        f"\nRatio {hi[0]} / {lo[0]} entries: first hit {hi[3] / lo[3]:.2f}×, save (median) "
        f"{hi[1] / lo[1]:.2f}×, save + amortised sweep {(hi[1] + hi[4]) / (lo[1] + lo[4]):.2f}× "
        "(target ≤ 1.3).",
        flush=True,
    )
    for root in roots.values():
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------ small-entry save
def fold_record(i: int) -> BlockWarmStartRecord:
    """A block record shaped like the one a LOSO fold of ``s(x0)+s(x1)+s(x2)`` saves."""
    rng = np.random.default_rng(i)
    dims = (1, 9, 9, 9)
    return BlockWarmStartRecord(
        key=f"cf-{i:016x}",
        n_rows=1800,
        block_names=("(parametric)", "s(x0)", "s(x1)", "s(x2)"),
        block_dims=dims,
        rho=rng.normal(size=3),
        block_beta=tuple(rng.normal(size=d) for d in dims),
        inner=InnerSummary(
            log_likelihood=-2848.069618714664,
            penalty_value=14.133594726421002,
            cycles=1,
            converged=True,
            block_logdet_h=130.22098164259214,
            block_logdet_s=52.62298576336236,
            solved_inner_tol=1e-8,
        ),
        created_unix_secs=1_795_457_573,
        updated_unix_secs=1_795_457_573,
    )


class LegacyLocalBackend(LocalBackend):
    """The write path of ``LocalBackend`` before this round (commit 2f88e6b), for comparison.

    Folders of ``put_many`` sorted and made with one ``mkdir`` each, ``os.makedirs`` (a
    ``stat`` per level) on ``ENOENT``; ``put_if_absent`` checks ``os.path.lexists`` first;
    ``touch`` retries ``utime`` after making the parents. (Write paths only: reads, listings
    and deletes are the current ones.)
    """

    def put_many(self, items: Any) -> None:
        fulls = [(os.path.join(self.root, check_path(p)), d) for p, d in items.items()]
        for folder in sorted({os.path.dirname(f) for f, _ in fulls}):
            try:
                os.mkdir(folder)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
        for full, data in fulls:
            self.requests["put"] += 1
            _legacy_write(full, data)

    def touch(self, path: str) -> None:
        self.requests["touch"] += 1
        full = os.path.join(self.root, check_path(path))
        for _ in range(4):
            try:
                os.utime(full, None)
                return
            except FileNotFoundError:
                pass
            try:
                _legacy_write(full, b"")
                return
            except FileNotFoundError:
                os.makedirs(os.path.dirname(full), exist_ok=True)
        _legacy_write(full, b"")

    def put_if_absent(self, path: str, data: bytes) -> bool:
        self.requests["put_if_absent"] += 1
        full = os.path.join(self.root, check_path(path))
        if os.path.lexists(full):
            return False
        head, tail = os.path.split(full)
        tmp = os.path.join(head, self._tmp_name(tail))
        try:
            try:
                _legacy_write(tmp, data)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(full), exist_ok=True)
                _legacy_write(tmp, data)
            try:
                os.link(tmp, full)
            except FileExistsError:
                return False
            return True
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _legacy_write(full: str, data: bytes) -> None:
    fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


class _LegacyCodec:
    """Swap the previous codec steps in around one call (fields through ``_json.canonical``,
    a fresh ``json.dumps`` per document, the key folder hashed on every call)."""

    def __init__(self) -> None:
        import json

        from gamstore import _json
        from gamstore.fingerprint import key_fingerprint
        from gamstore.store import codec, core, layout

        def fields(f: Any) -> Any:
            return _json.canonical(f, root="record.fields")

        def dumps(obj: Any) -> bytes:
            return json.dumps(
                obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")

        def folder(keyspace: str, key: str) -> str:
            if not isinstance(key, str):
                raise TypeError(f"key: expected str, got {type(key).__name__}")
            if not key:
                raise ValueError("key: expected a non-empty string")
            return key_fingerprint(layout.check_keyspace(keyspace), key).hex()

        self.patches = [(codec, "_plain_fields", fields), (codec, "_trusted_json", dumps)]
        self.patches.append((core, "key_folder", folder))
        self.saved = [(m, n, getattr(m, n)) for m, n, _ in self.patches]

    def __enter__(self) -> None:
        for m, n, v in self.patches:
            setattr(m, n, v)

    def __exit__(self, *exc: object) -> None:
        for m, n, v in self.saved:
            setattr(m, n, v)


_OS_CALLS = ("mkdir", "makedirs", "stat", "lstat", "open", "write", "close", "link", "unlink")
_OS_CALLS += ("rename", "replace", "utime", "fsync")


def count_os_calls(fn: Callable[[int], Any], ids: range) -> Counter[str]:
    """Mean file-system calls per ``fn(i)`` over ``ids``, by ``os`` function (``os.path.*``
    probes are ``stat``/``lstat`` underneath and are counted there; ``io.open``, which
    ``np.savez`` uses, is counted as one call per file)."""
    import io

    counts: Counter[str] = Counter()
    real = {n: getattr(os, n) for n in _OS_CALLS}
    real_io_open = io.open

    def wrap(name: str, fn0: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*a: Any, **k: Any) -> Any:
            counts[name] += 1
            return fn0(*a, **k)

        return counted

    try:
        for n in _OS_CALLS:
            setattr(os, n, wrap(n, real[n]))
        io.open = wrap("io.open", real_io_open)
        for i in ids:
            fn(i)
    finally:
        for n, f in real.items():
            setattr(os, n, f)
        io.open = real_io_open
    counts.pop("makedirs", None)  # its mkdir/stat calls are counted themselves
    return Counter({k: v / len(ids) for k, v in counts.items()})


def _small_save_ops(base: Path, legacy_codec: _LegacyCodec) -> dict[str, Callable[[int], Any]]:
    """The writers of the small-entry table, each writing under ``base``."""
    from gamstore.store import codec
    from gamstore.store.core import Store

    new = Store(LocalBackend(base / "new"), sweep_every=10**9)
    old = Store(LegacyLocalBackend(base / "old"), sweep_every=10**9)
    recs = [fold_record(i) for i in range(64)]
    arrs = [arrays_of(r) for r in recs]
    enc = codec.encode_entry(
        record=recs[0],
        keyspace="block",
        key="k",
        entry_id="0" * 16 + "-" + "0" * 8 + "-" + "0" * 8,
        producer="p",
        created=1,
        objective=None,
        iteration=None,
        kind="checkpoint",
        schema="s",
    )
    payload = enc.payload
    folders: set[str] = set()
    for p in payload:
        d = p.rpartition("/")[0]
        while d:
            folders.add(d)
            d = d.rpartition("/")[0]
    folder_list = sorted(folders)  # parents first
    for sub in ("npz", "raw", "flat"):
        (base / sub).mkdir()

    def g_new(i: int) -> None:
        assert new.save("block", f"new-{i}", recs[i % 64]) is not None

    def g_old(i: int) -> None:
        with legacy_codec:
            assert old.save("block", f"old-{i}", recs[i % 64]) is not None

    def npz(i: int) -> None:
        flat = {k.replace("/", "_"): v for k, v in arrs[i % 64].items()}
        np.savez(base / "npz" / f"k{i}.npz", **flat)

    def os_layout(i: int) -> None:
        # the same folders (key folder, entry, arrays) and files as one entry, bare os calls,
        # marker by temp + link: the layout's floor on this file system (no encoding)
        entry = f"{base}/raw/{i}/e"
        os.mkdir(entry[:-2])
        os.mkdir(entry)
        for d in folder_list:
            os.mkdir(f"{entry}/{d}")
        for p, data in payload.items():
            fd = os.open(f"{entry}/{p}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
        tmp = f"{entry}/.zarr.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, enc.marker)
        os.close(fd)
        os.link(tmp, f"{entry}/zarr.json")
        os.unlink(tmp)

    def os_flat(i: int) -> None:
        # the same number of files (payload + marker) in one new folder, no sub-folders
        d = f"{base}/flat/{i}"
        os.mkdir(d)
        for j, data in enumerate([*payload.values(), enc.marker]):
            fd = os.open(f"{d}/{j}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)

    return {
        "gamstore `Store.save` (this round)": g_new,
        "gamstore, previous write path + codec steps": g_old,
        "`np.savez`, same arrays, one file": npz,
        "bare `os` calls, same folders and files": os_layout,
        "bare `os` calls, same number of files, one folder": os_flat,
    }


def bench_small_save(parents: list[Path], n: int) -> None:
    """Save a fold-sized record under a new key, beside baselines, per location."""
    legacy_codec = _LegacyCodec()
    for parent in parents:
        base = Path(tempfile.mkdtemp(prefix="bench-small-", dir=parent))
        try:
            ops = _small_save_ops(base, legacy_codec)
            for fn in ops.values():
                fn(10**6)  # warm: the first save also makes the keyspace folder
            # steady state, new keys (a new <kk> shard folder for most of them, as in a small
            # store): mean calls over 16 saves
            calls = {
                name: count_os_calls(fn, range(10**6 + 1, 10**6 + 17)) for name, fn in ops.items()
            }
            times: dict[str, list[float]] = {k: [] for k in ops}
            for i in range(n):
                for name, fn in ops.items():  # round-robin: load drift hits all alike
                    t = time.perf_counter()
                    fn(i)
                    times[name].append(time.perf_counter() - t)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        npz_med = med["`np.savez`, same arrays, one file"]
        print(
            f"\n### Small-entry save (a LOSO fold's block record, new key): {parent}, "
            f"median of {n}, µs\n"
        )
        print("| writer | median µs | mean µs | / npz | fs calls per save | calls by kind |")
        print("|---|---|---|---|---|---|")
        for name in ops:
            c = calls[name]
            kinds = ", ".join(f"{v:g} {k}" for k, v in sorted(c.items()))
            print(
                f"| {name} | {med[name]:.0f} | {statistics.fmean(times[name]) * 1e6:.0f} | "
                f"{med[name] / npz_med:.2f} | {sum(c.values()):g} | {kinds} |"
            )
        new_med = med["gamstore `Store.save` (this round)"]
        old_med = med["gamstore, previous write path + codec steps"]
        print(f"\nThis round / previous: {new_med / old_med:.2f}× (median).", flush=True)


def bench_fold_save(parents: list[Path], n: int) -> None:
    """Time spent in ``Store.save`` by a real LOSO fold fit, this round vs the previous path.

    Each repetition: a fresh store holding the full fit, then the fold (subject 3 left out)
    fitted warm against it; only the fold's ``Store.save`` calls are timed (its block record,
    plus the access touch its lookups left pending). The two variants alternate.
    """
    from gamstore.fit import GAM, s
    from gamstore.loso import simulate
    from gamstore.store import core

    df = simulate("poisson")
    model = GAM([s("x0"), s("x1"), s("x2")], family="poisson")
    knots = model.fit(df, y="y").knots
    fold = df[df.subj != 3].reset_index(drop=True)
    legacy_codec = _LegacyCodec()
    variants: dict[str, tuple[type[LocalBackend], Any]] = {
        "this round": (LocalBackend, None),
        "previous write path + codec steps": (LegacyLocalBackend, legacy_codec),
    }
    real_save = core.Store.save
    for parent in parents:
        times: dict[str, list[float]] = {k: [] for k in variants}
        calls: dict[str, Counter[str]] = {k: Counter() for k in variants}
        saves: Counter[str] = Counter()
        base = Path(tempfile.mkdtemp(prefix="bench-fold-", dir=parent))
        try:
            for i in range(n + 1):
                order = list(variants) if i % 2 else list(variants)[::-1]
                for name in order:
                    backend_cls, patch = variants[name]
                    store = core.Store(backend_cls(base / f"{name[:4]}-{i}"))
                    model.fit(df, y="y", store=store)
                    spent = [0.0]

                    def timed(
                        self: Any, *a: Any, _patch: Any = patch, _s: Any = spent, **k: Any
                    ) -> Any:
                        t = time.perf_counter()
                        if _patch is None:
                            out = real_save(self, *a, **k)
                        else:
                            with _patch:
                                out = real_save(self, *a, **k)
                        _s[0] += time.perf_counter() - t
                        return out

                    if i == 0:  # first repetition: count the calls instead of timing

                        def counted(
                            self: Any,
                            *a: Any,
                            _name: str = name,
                            _saves: Counter[str] = saves,
                            _calls: dict[str, Counter[str]] = calls,
                            **k: Any,
                        ) -> Any:
                            _saves[_name] += 1
                            out: list[Any] = []
                            _calls[_name].update(
                                count_os_calls(
                                    lambda _i: out.append(timed(self, *a, **k)), range(1)
                                )
                            )
                            return out[0]

                        core.Store.save = counted  # type: ignore[method-assign]
                    else:
                        core.Store.save = timed  # type: ignore[method-assign]
                    try:
                        model.fit(fold, y="y", knots=knots, store=store)
                    finally:
                        core.Store.save = real_save  # type: ignore[method-assign]
                    if i:
                        times[name].append(spent[0])
        finally:
            shutil.rmtree(base, ignore_errors=True)
        print(
            f"\n### Inside a LOSO fold: time in `Store.save` per fold fit ({parent}, "
            f"median of {n}, interleaved)\n"
        )
        print("| write path | median ms | min ms | saves per fold | fs calls per fold |")
        print("|---|---|---|---|---|")
        for name in variants:
            v = times[name]
            kinds = ", ".join(f"{c:g} {k}" for k, c in sorted(calls[name].items()))
            print(
                f"| {name} | {statistics.median(v) * 1e3:.3f} | {min(v) * 1e3:.3f} | "
                f"{saves[name]} | {sum(calls[name].values()):g} ({kinds}) |"
            )
        a, b = (statistics.median(times[k]) for k in variants)
        print(f"\nThis round / previous: {a / b:.2f}× (median).", flush=True)


# ------------------------------------------------------------------------------ level docs
class _NoLevelStore:
    """Mixin: a Store that writes no level docs (the layout before them), for baselines."""

    def _level_docs(self, keyspace: str, folder: str, key: str) -> dict[str, bytes]:
        return {}

    def _write_levels(self, keyspace: str, folder: str, key: str) -> None:
        return None


def _level_keys(n: int, shards_known: set[str], tag: str) -> dict[str, list[str]]:
    """Keys for the three save cases: new key in a new shard, new key in a known shard."""
    from gamstore.store.layout import key_folder

    new_shard: list[str] = []
    known_shard: list[str] = []
    seen = set(shards_known)
    i = 0
    while len(new_shard) < n or len(known_shard) < n:
        key = f"{tag}-{i}"
        i += 1
        kk = key_folder("block", key)[:2]
        if kk not in seen and len(new_shard) < n:
            new_shard.append(key)
            seen.add(kk)
        elif kk in shards_known and len(known_shard) < n:
            known_shard.append(key)
    return {"new key, new shard": new_shard, "new key, known shard": known_shard}


def bench_levels(parents: list[Path], n: int, s3: bool) -> None:
    """Cost of the Zarr level docs per save: with them vs without (same process, interleaved).

    Cases: the first save under a new key whose ``<kk>`` shard is new to the store, the first
    save under a new key in a shard that exists, and a repeat save under a key this process
    saved before. Local: file-system calls (``os`` wrappers) and median µs per save; S3 on
    moto: requests per save.
    """
    from gamstore.store.core import Store

    class NoLevels(_NoLevelStore, Store):
        pass

    n = min(n, 120)  # at most ~250 shards are new to a store
    rec = fold_record(0)
    variants: dict[str, type[Store]] = {"with level docs": Store, "without (previous)": NoLevels}
    for parent in parents:
        base = Path(tempfile.mkdtemp(prefix="bench-levels-", dir=parent))
        try:
            stores = {
                v: cls(LocalBackend(base / f"v{i}"), sweep_every=10**9)
                for i, (v, cls) in enumerate(variants.items())
            }
            seed_keys = [f"seed-{i}" for i in range(8)]
            for st in stores.values():
                for k in seed_keys:  # keyspace + a few shards exist, as in a used store
                    st.save("block", k, rec)
            from gamstore.store.layout import key_folder

            known = {key_folder("block", k)[:2] for k in seed_keys}
            keys = _level_keys(n, known, "lv")
            keys["repeat save, known key"] = [seed_keys[i % 8] for i in range(n)]
            times: dict[tuple[str, str], list[float]] = {}
            calls: dict[tuple[str, str], Counter[str]] = {}
            for case, ks in keys.items():
                for v in variants:
                    times[(case, v)] = []
                    calls[(case, v)] = Counter()
                for i, key in enumerate(ks):
                    order = list(variants) if i % 2 else list(variants)[::-1]
                    for v in order:
                        st = stores[v]
                        if i < 8:  # count on the first 8, time the rest
                            c = count_os_calls(
                                lambda _i, st=st, key=key: st.save("block", key, rec), range(1)
                            )
                            calls[(case, v)].update(c)
                            continue
                        t = time.perf_counter()
                        st.save("block", key, rec)
                        times[(case, v)].append(time.perf_counter() - t)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        print(
            f"\n### Zarr level docs, local ({parent}): per save, median of {n - 8}, interleaved\n"
        )
        print("| case | variant | median µs | fs calls per save | calls by kind |")
        print("|---|---|---|---|---|")
        for case in keys:
            for v in variants:
                c = Counter({k: x / 8 for k, x in calls[(case, v)].items()})
                kinds = ", ".join(f"{x:g} {k}" for k, x in sorted(c.items()))
                med = statistics.median(times[(case, v)]) * 1e6
                print(f"| {case} | {v} | {med:.0f} | {sum(c.values()):g} | {kinds} |")
            a, b = (statistics.median(times[(case, v)]) for v in variants)
            print(f"| {case} | ratio with / without | {a / b:.2f}× | | |")
    if s3:
        _bench_levels_s3(n, rec, variants)


def _bench_levels_s3(n: int, rec: Any, variants: dict[str, Any]) -> None:
    import logging

    import botocore.session
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from gamstore.store.layout import key_folder
    from gamstore.store.registry import open_backend

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    opts = {"endpoint_url": endpoint, "key": "bench-key", "secret": "bench-secret"}
    client = botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench-key",
        aws_secret_access_key="bench-secret",
    )
    client.create_bucket(Bucket="levels")
    n = min(n, 40)
    rows: list[tuple[str, str, Counter[str], float]] = []
    try:
        stores: dict[str, Any] = {}
        counts: dict[str, Counter[str]] = {}
        roots: dict[str, str] = {}
        for i, (v, cls) in enumerate(variants.items()):
            be = open_backend(f"s3://levels/v{i}", opts)
            stores[v] = cls(be, sweep_every=10**9)
            counts[v] = Counter()
            roots[f"v{i}/"] = v
        fs = stores[next(iter(variants))].backend.fs  # s3fs shares one instance per options
        orig = fs._call_s3

        async def counting(method: str, *a: Any, **kw: Any) -> Any:
            v = next((v for r, v in roots.items() if str(kw.get("Key", "")).startswith(r)), None)
            if v is not None:
                counts[v][method + ("(If-None-Match)" if kw.get("IfNoneMatch") else "")] += 1
            return await orig(method, *a, **kw)

        for st in stores.values():
            st.backend.fs._call_s3 = counting
        seed_keys = [f"seed-{i}" for i in range(8)]
        for st in stores.values():
            for k in seed_keys:
                st.save("block", k, rec)
        known = {key_folder("block", k)[:2] for k in seed_keys}
        keys = _level_keys(n, known, "lv")
        keys["repeat save, known key"] = [seed_keys[i % 8] for i in range(n)]
        for case, ks in keys.items():
            for c in counts.values():
                c.clear()
            times: dict[str, list[float]] = {v: [] for v in variants}
            for i, key in enumerate(ks):  # interleaved: load drift hits both alike
                for v in list(variants) if i % 2 else list(variants)[::-1]:
                    t = time.perf_counter()
                    stores[v].save("block", key, rec)
                    times[v].append(time.perf_counter() - t)
            for v in variants:
                per = Counter({k: x / n for k, x in counts[v].items()})
                rows.append((case, v, per, statistics.median(times[v])))
    finally:
        srv.stop()
    print(
        f"\n### Zarr level docs, S3 on moto (loopback): requests per save (mean of {n}), median ms\n"
    )
    print("| case | variant | requests per save | median ms |")
    print("|---|---|---|---|")
    for case, v, c, t in sorted(rows, key=lambda r: (r[0], r[1])):
        kinds = ", ".join(f"{x:g} {k}" for k, x in sorted(c.items()))
        print(f"| {case} | {v} | {sum(c.values()):g} ({kinds}) | {t * 1e3:.1f} |")


def _layout1(backend: Any) -> Any:
    """Make ``backend``'s (new, empty) root a layout-1 store root: a ``Store`` opened on it
    then writes layout 1 (``<ks>/<kk>/<key64>/<entry id>`` + key folder docs), as before."""
    from gamstore.store import codec
    from gamstore.store.layout import MARKER

    backend.put(MARKER, codec.group_meta_bytes({"gamstore": {"layout": 1}}))
    return backend


def _keys_in_shard(shard: str, n: int, tag: str) -> list[str]:
    """``n`` new block keys whose ``<kk>`` shard is ``shard``."""
    from gamstore.store.layout import key_folder

    out: list[str] = []
    i = 0
    while len(out) < n:
        key = f"{tag}-{i}"
        i += 1
        if key_folder("block", key)[:2] == shard:
            out.append(key)
    return out


def bench_pack(parents: list[Path], n: int) -> None:
    """Entry format 2: a 5-block record's save beside ``np.savez`` of the same arrays, for
    layout 2 (this version) and layout 1 (a store whose root says 1: the write path before
    it, same code, same process)."""
    from gamstore.store.core import Store
    from gamstore.store.layout import key_folder

    rec = block_record("k", 1)  # 5 blocks x 50 coefficients + 4 rho, no active sets
    arrs = arrays_of(rec)
    flat = {k.replace("/", "_"): v for k, v in arrs.items()}
    shard = key_folder("block", "same")[:2]
    in_shard = _keys_in_shard(shard, n + 32, "ks")  # warm-up, counted and timed saves

    def writers(base: Path) -> dict[str, Callable[[int], Any]]:
        store = Store(LocalBackend(base / "g"), sweep_every=10**9)
        old = Store(_layout1(LocalBackend(base / "g1")), sweep_every=10**9)
        assert store.layout == 2 and old.layout == 1
        (base / "npz").mkdir()
        (base / "npzdir").mkdir()

        def npz_dir(i: int) -> None:
            os.mkdir(base / "npzdir" / str(i))
            np.savez(base / "npzdir" / str(i) / "e.npz", **flat)

        from gamstore.store import codec

        enc = codec.encode_entry(
            record=rec, keyspace="block", key="k", entry_id="0" * 16 + "-" + "0" * 8 + "-" + "0" * 8,
            producer="p", created=1, objective=None, iteration=None, kind="checkpoint", schema="s",
        )  # fmt: skip
        (base / "raw").mkdir()

        def os_floor(i: int) -> None:
            # the entry's folders (entry, values, offsets) and files with bare os calls, marker
            # by temp + link: the floor of the layout on this file system, no encoding
            entry = f"{base}/raw/{i}"
            os.mkdir(entry)
            for d in ("values", "offsets"):
                os.mkdir(f"{entry}/{d}")
            for rel, data in enc.payload.items():
                fd = os.open(f"{entry}/{rel}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, data)
                os.close(fd)
            fd = os.open(f"{entry}/.m.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, enc.marker)
            os.close(fd)
            os.link(f"{entry}/.m.tmp", f"{entry}/zarr.json")
            os.unlink(f"{entry}/.m.tmp")

        def known_shard(st: Store) -> Callable[[int], Any]:
            fresh = iter(in_shard)  # each call: a key never saved, in the shard of "same"
            return lambda i: st.save("block", next(fresh), rec)

        return {
            "layout 2 `Store.save`, new key (fresh store: mostly new shards)": lambda i: store.save(
                "block", f"n{i}", rec
            ),
            "layout 2 `Store.save`, new key, known shard": known_shard(store),
            "layout 2 `Store.save`, known key": lambda i: store.save("block", "same", rec),
            "layout 1 `Store.save`, new key (fresh store: mostly new shards)": lambda i: old.save(
                "block", f"n{i}", rec
            ),
            "layout 1 `Store.save`, new key, known shard": known_shard(old),
            "layout 1 `Store.save`, known key": lambda i: old.save("block", "same", rec),
            "`np.savez`, same arrays, one file": lambda i: np.savez(
                base / "npz" / f"k{i}.npz", **flat
            ),
            "`np.savez` into a new folder": npz_dir,
            "bare `os` calls, the same folders and files (floor)": os_floor,
        }

    for parent in parents:
        base = Path(tempfile.mkdtemp(prefix="bench-pack-", dir=parent))
        try:
            ops = writers(base)
            for fn in ops.values():
                fn(10**6)  # warm: the keyspace folder, the "same" key's folder and docs
            calls = {
                name: count_os_calls(fn, range(10**6 + 1, 10**6 + 17)) for name, fn in ops.items()
            }
            med = interleaved(ops, n)
            entry = next(p for p in (base / "g" / "block").glob("??/*") if p.is_dir())
            objects = sorted(
                p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file()
            )
        finally:
            shutil.rmtree(base, ignore_errors=True)
        npz = med["`np.savez`, same arrays, one file"]
        print(f"\n### Packed entries: 5-block record save, {parent}, median of {n}, µs\n")
        print(f"objects of one entry: {len(objects)} ({', '.join(objects)})\n")
        print("| writer | median µs | / npz | fs calls per save | calls by kind |")
        print("|---|---|---|---|---|")
        for name in ops:
            c = calls[name]
            kinds = ", ".join(f"{v:g} {k}" for k, v in sorted(c.items()))
            print(
                f"| {name} | {med[name]:.0f} | {med[name] / npz:.2f} | {sum(c.values()):g} | {kinds} |"
            )


def bench_lookup_scaling(parent: Path, sizes: list[int], n: int) -> None:
    """Layout 2 lists a key's shard (``scandir`` of ``<ks>/<kk>``) where layout 1 listed the
    key folder: first-hit latency against the entries already in the same keyspace, both
    layouts in one process, interleaved (stores of layout 1 are made by a root doc saying 1).
    """
    from gamstore.store.cache import clear_states
    from gamstore.store.core import Store

    roots: dict[tuple[int, int], Path] = {}
    for size in sizes:
        for layout in (1, 2):
            root = parent / f"lookup-{layout}-{size}"
            be = LocalBackend(root)
            if layout == 1:
                _layout1(be)
            filler = Store(be, sweep_every=10**9, record_types={"bench_filler": Filler})
            assert filler.layout == layout
            for i in range(size):  # the fill shares the probes' keyspace (and shards)
                filler.save("block", f"fill-{i}", tiny(i))
            for i in range(n):
                filler.save("block", f"probe-{i}", block_record(f"probe-{i}"))
            filler.close()
            roots[(layout, size)] = root
    clear_states()
    gc.collect()
    handles = {k: Store(LocalBackend(r)) for k, r in roots.items()}

    def hit_op(h: Store) -> Callable[[int], None]:
        def op(i: int) -> None:
            h._state.decoded.clear()
            h._state.markers.clear()
            assert h.lookup("block", f"probe-{i % n}") is not None

        return op

    def miss_op(h: Store) -> Callable[[int], None]:
        return lambda i: h.lookup("block", f"absent-{i}")

    hits = interleaved({f"{k}": hit_op(h) for k, h in handles.items()}, n)
    misses = interleaved({f"{k}": miss_op(h) for k, h in handles.items()}, n)
    calls = {
        k: count_os_calls(hit_op(h), range(n, n + 8)) for k, h in handles.items()
    }  # fmt: skip
    print(f"\n### Lookup against entries in the same keyspace ({parent}), median of {n} µs\n")
    print("| entries in `block` | entries per shard | layout 1 first hit | layout 2 first hit "
          "| 2 / 1 | layout 1 miss | layout 2 miss | fs calls per first hit, 1 / 2 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        a, b = hits[f"{(1, size)}"], hits[f"{(2, size)}"]
        ma, mb = misses[f"{(1, size)}"], misses[f"{(2, size)}"]
        ca = sum(calls[(1, size)].values()) / 8
        cb = sum(calls[(2, size)].values()) / 8
        print(
            f"| {size + n} | {(size + n) / 256:.0f} | {a:.0f} | {b:.0f} | {b / a:.2f} "
            f"| {ma:.0f} | {mb:.0f} | {ca:g} / {cb:g} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and entries")
    ap.add_argument(
        "--dir", default=None, help="directory for the local runs (default: system temp)"
    )
    ap.add_argument(
        "--scaling-dir",
        default=None,
        help="directory for the scaling stores (e.g. /dev/shm: 100 000 entries are ~600 000 "
        "files; default: same as --dir)",
    )
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--skip-objectstores", action="store_true")
    ap.add_argument(
        "--only-objectstores",
        action="store_true",
        help="only the S3/GCS/Azure table (emulators on loopback)",
    )
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--skip-small-save", action="store_true")
    ap.add_argument(
        "--only-small-save", action="store_true", help="only the small-entry save table"
    )
    ap.add_argument(
        "--pack",
        action="store_true",
        help="only the packed-entry table (save vs np.savez) and S3 requests (unless --skip-s3)",
    )
    ap.add_argument(
        "--only-lookup-scaling",
        action="store_true",
        help="only the first-hit latency against entries in the same keyspace, layout 1 vs 2 "
        "(stores under --scaling-dir, default the system temp dir)",
    )
    ap.add_argument(
        "--only-levels",
        action="store_true",
        help="only the Zarr level-doc cost per save (local, and S3 unless --skip-s3)",
    )
    args = ap.parse_args()
    n = 60 if args.quick else 300
    if args.only_small_save:
        args.skip_local = args.skip_s3 = args.skip_scaling = args.skip_objectstores = True
    if args.only_objectstores:
        bench_objectstores(max(10, n // 6))
        return
    parent = Path(args.dir or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-store-", dir=parent))
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}, n={n}")
    if args.pack:
        shm = Path("/dev/shm")
        places = [parent] + ([shm] if shm.is_dir() and parent != shm else [])
        try:
            bench_pack(places, n)
            if not args.skip_s3:
                bench_s3(max(10, n // 6))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    if args.only_lookup_scaling:
        lbase = Path(tempfile.mkdtemp(prefix="bench-lookup-", dir=args.scaling_dir or parent))
        try:
            sizes = [1000, 20_000] if args.quick else [1000, 20_000, 100_000]
            bench_lookup_scaling(lbase, sizes, 30 if args.quick else 60)
        finally:
            shutil.rmtree(lbase, ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)
        return
    if args.only_levels:
        shm = Path("/dev/shm")
        places = [parent] + ([shm] if shm.is_dir() and parent != shm else [])
        try:
            bench_levels(places, n, s3=not args.skip_s3)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    try:
        if not args.skip_small_save:
            shm = Path("/dev/shm")
            places = [parent] + ([shm] if shm.is_dir() and parent != shm else [])
            bench_small_save(places, n)
            bench_fold_save(places, 8 if args.quick else 30)
        if not args.skip_local:
            print_local(bench_local(base / "local", n), str(parent))
        if not args.skip_s3:
            bench_s3(max(10, n // 6))
        if not args.skip_objectstores:
            bench_objectstores(max(10, n // 6))
        if not args.skip_scaling:
            sizes = [10, 1000, 10_000] if args.quick else [10, 1000, 100_000]
            sbase = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.scaling_dir or base))
            print(f"\n(scaling stores under {args.scaling_dir or parent})")
            try:
                bench_scaling(sbase, sizes, 30 if args.quick else 60)
            finally:
                shutil.rmtree(sbase, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
