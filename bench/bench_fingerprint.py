"""Throughput of gamstore.hash_array on a large float64 design matrix, beside baselines.

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/bench_fingerprint.py            # 1 GiB matrix
    python bench/bench_fingerprint.py --size-mb 64 --repeats 2          # quick run

Prints markdown tables: GB/s (1e9 bytes of array data per second, best of ``--repeats``) of
``hash_array`` in C and F order next to raw BLAKE3 over the same memory, ``hashlib.sha256``
and ``joblib.hash`` of the same array in the same process; then wall-time GB/s of
``hash_array`` (threaded for large arrays) against ``blake3(max_threads=blake3.AUTO)`` over
the same bytes, measured interleaved; then per-call times for small arrays. The machine's load average is printed, since the two cores are shared.
"""

from __future__ import annotations

import os

# Pin every thread pool to one thread before numpy is imported (single-core figures).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import blake3  # noqa: E402
import numpy as np  # noqa: E402

from gamstore.fingerprint import CHUNK_BYTES, _hash_array_one_thread, hash_array  # noqa: E402

try:  # optional: also pins BLAS pools that ignore the environment
    from threadpoolctl import threadpool_limits  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - optional dependency
    threadpool_limits = None

try:
    import joblib
except ImportError:  # pragma: no cover - dev extra
    joblib = None


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall time and best process CPU time of ``repeats`` calls.

    Everything timed here is single-threaded, so CPU time is what an idle core would take;
    wall time also counts time lost to other processes on the shared cores.
    """
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def per_call_us(fn: Callable[[], Any], budget_s: float = 0.25) -> float:
    """CPU µs per call: best of 5 batches, each batch sized to about budget_s / 5."""
    n = 1
    while True:
        c0 = time.process_time()
        for _ in range(n):
            fn()
        dt = time.process_time() - c0
        if dt > budget_s / 5 or n > 1 << 20:
            break
        n *= 2
    best = dt / n
    for _ in range(4):
        c0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - c0) / n)
    return best * 1e6


def paths_table() -> None:
    """Each fast path of ``write_array`` against the same call with that path switched off
    (the input then takes the next path), and against the plain reference (one canonical
    copy, one BLAKE3 call), on the arrays the keys hash. CPU µs per call, same process."""
    import gamstore.fingerprint as fp

    rng = np.random.default_rng(1)
    cases: list[tuple[str, str, np.ndarray, Callable[[bool], Any]]] = []

    def knob(name: str, off_value: Any) -> Callable[[bool], Any]:
        def apply(on: bool) -> Any:
            old = getattr(fp, name)
            setattr(fp, name, old if on else off_value)
            return lambda: setattr(fp, name, old)

        return apply

    # the paths removed in issue 16 item 5 (tiny Python-struct floats, staged one-update
    # arrays, raw row copies of row-major views, transposed column-major blocks) were timed
    # the same way before they went: BENCHMARKS.md, "fast paths that stay"
    cases += [
        (
            "small (<= 64 KiB: one copy)",
            "column (1000,)",
            rng.standard_normal(1000),
            knob("_SMALL_BYTES", 0),
        ),
        (
            "small (<= 64 KiB: one copy)",
            "knots (14,)",
            np.linspace(0, 1, 14),
            knob("_SMALL_BYTES", 0),
        ),
        (
            "streamed (1 MiB chunks, no full copy)",
            "column (100000,)",
            rng.standard_normal(100_000),
            knob("CHUNK_BYTES", 1 << 30),
        ),
        (
            "streamed (1 MiB chunks, no full copy)",
            "design (50000, 28) F",
            np.asfortranarray(rng.standard_normal((50_000, 28))),
            knob("CHUNK_BYTES", 1 << 30),
        ),
    ]
    print(
        "| path | array | µs with the path | µs without (small: streamed; streamed: one "
        "chunk) | µs plain reference | without / with |"
    )
    print("|---|---|---|---|---|---|")
    for path, label, arr, switch in cases:

        def run(arr: np.ndarray = arr) -> bytes:
            return fp.Fingerprinter().write_str("k").write_array(arr).finalize().digest

        prefix = len(b"k").to_bytes(8, "little") + b"k"  # write_str("k")
        want = blake3.blake3(prefix + fp._array_encoding_reference(arr)).digest()
        assert run() == want
        with_us = per_call_us(run)
        restore = switch(False)
        try:
            assert run() == want
            without_us = per_call_us(run)
        finally:
            restore()
        ref_us = per_call_us(
            lambda arr=arr, prefix=prefix: blake3.blake3(
                prefix + fp._array_encoding_reference(arr)
            ).digest()
        )
        print(
            f"| {path} | {label} | {with_us:.1f} | {without_us:.1f} | {ref_us:.1f} "
            f"| {without_us / with_us:.2f} |"
        )
    big = rng.standard_normal((33_554_432 // 500, 500))  # 128 MiB
    t_thr = best_time(lambda: hash_array(big), 3)
    t_one = best_time(lambda: _hash_array_one_thread(big), 3)
    print(
        f"| threaded (>= 16 MiB, every core) | design 128 MiB C | {1e6 * t_thr[0]:.0f} (wall) "
        f"| {1e6 * t_one[0]:.0f} (wall, one thread) | - | {t_one[0] / t_thr[0]:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=1024.0, help="matrix size in MiB")
    ap.add_argument("--cols", type=int, default=500, help="number of columns")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    ap.add_argument("--no-joblib", action="store_true", help="skip the slow joblib baseline")
    ap.add_argument(
        "--paths",
        action="store_true",
        help="only time each fast path of write_array with and without it, and the plain "
        "reference, on the arrays the keys hash",
    )
    args = ap.parse_args(argv)
    if args.paths:
        print(f"load average before: {os.getloadavg()[0]:.2f}\n")
        paths_table()
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
        return 0

    limiter = threadpool_limits(1) if threadpool_limits is not None else None
    cols = args.cols
    rows = max(1, int(args.size_mb * (1 << 20)) // (8 * cols))
    rng = np.random.default_rng(0)
    c_arr = rng.standard_normal((rows, cols))
    c_arr[::97, 3] = -0.0  # a few values that need canonicalising
    f_arr = np.asfortranarray(c_arr)
    nbytes = c_arr.nbytes
    load_before = os.getloadavg()

    def gbs(t: tuple[float, float]) -> str:
        return f"{nbytes / t[0] / 1e9:.2f} / {nbytes / t[1] / 1e9:.2f}"

    def ratio(t: tuple[float, float], ref: tuple[float, float]) -> str:
        return f"{t[1] / ref[1]:.2f}"

    assert hash_array(c_arr) == hash_array(f_arr)  # same key whatever the layout
    assert hash_array(c_arr) == _hash_array_one_thread(c_arr)  # threads change no key
    rows_out: list[tuple[str, ...]] = []
    # single-core figures: the one-thread stream (hash_array's threaded path is timed below)
    t_c = best_time(lambda: _hash_array_one_thread(c_arr), args.repeats)
    t_f = best_time(lambda: _hash_array_one_thread(f_arr), args.repeats)
    rows_out.append(
        ("gamstore hash_array, one thread (canonical)", gbs(t_c), gbs(t_f), "1.00", "1.00")
    )

    raw_c = best_time(lambda: blake3.blake3(c_arr.reshape(-1).view(np.uint8)).digest(), 2)
    raw_f = best_time(lambda: blake3.blake3(f_arr.T.reshape(-1).view(np.uint8)).digest(), 2)
    rows_out.append(
        (
            "blake3 of the raw memory (no canonicalisation; F = memory order)",
            gbs(raw_c),
            gbs(raw_f),
            ratio(raw_c, t_c),
            ratio(raw_f, t_f),
        )
    )
    sha_c = best_time(lambda: hashlib.sha256(c_arr.reshape(-1).view(np.uint8)).digest(), 1)
    sha_f = best_time(
        lambda: hashlib.sha256(np.ascontiguousarray(f_arr).reshape(-1).view(np.uint8)).digest(),
        1,
    )
    rows_out.append(
        (
            "hashlib.sha256 (C bytes; F via ascontiguousarray)",
            gbs(sha_c),
            gbs(sha_f),
            ratio(sha_c, t_c),
            ratio(sha_f, t_f),
        )
    )
    if joblib is not None and not args.no_joblib:
        jl_c = best_time(lambda: joblib.hash(c_arr), 1)
        jl_f = best_time(lambda: joblib.hash(f_arr), 1)
        rows_out.append(
            ("joblib.hash (md5)", gbs(jl_c), gbs(jl_f), ratio(jl_c, t_c), ratio(jl_f, t_f))
        )
    load_after = os.getloadavg()

    print(
        f"Matrix {rows} x {cols} float64 ({nbytes / 2**20:.0f} MiB), best of {args.repeats} "
        f"(baselines best of 1-2), chunk {CHUNK_BYTES >> 10} KiB, "
        f"threadpoolctl {'on' if limiter is not None else 'absent'}, "
        f"numpy {np.__version__}, Python {platform.python_version()}, "
        f"load avg before {load_before[0]:.2f} / after {load_after[0]:.2f} (2 cores)"
    )
    print()
    print(
        "| hasher | C order GB/s (wall / CPU) | F order GB/s (wall / CPU) "
        "| CPU time ÷ hash_array, C | CPU time ÷ hash_array, F |"
    )
    print("|---|---|---|---|---|")
    for row in rows_out:
        print("| " + " | ".join(row) + " |")
    print()
    c_cpu, f_cpu = nbytes / t_c[1], nbytes / t_f[1]
    c_wall, f_wall = nbytes / t_c[0], nbytes / t_f[0]
    print(
        f"Targets (single core): C order >= 4 GB/s: CPU {'met' if c_cpu >= 4e9 else 'NOT met'}, "
        f"wall {'met' if c_wall >= 4e9 else 'NOT met'}; F order >= 2 GB/s: "
        f"CPU {'met' if f_cpu >= 2e9 else 'NOT met'}, wall {'met' if f_wall >= 2e9 else 'NOT met'}."
    )

    # every core: hash_array's threaded path against BLAKE3's own threads on the same bytes
    auto_c = best_c = best_f = float("inf")
    raw = c_arr.reshape(-1).view(np.uint8)
    for _ in range(args.repeats):  # interleaved, so load changes hit all three alike
        t0 = time.perf_counter()
        blake3.blake3(raw, max_threads=blake3.blake3.AUTO).digest()
        auto_c = min(auto_c, time.perf_counter() - t0)
        t0 = time.perf_counter()
        hash_array(c_arr)
        best_c = min(best_c, time.perf_counter() - t0)
        t0 = time.perf_counter()
        hash_array(f_arr)
        best_f = min(best_f, time.perf_counter() - t0)
    print()
    print(
        f"Threads (wall time, best of {args.repeats}, {os.cpu_count()} CPUs, "
        f"load avg now {os.getloadavg()[0]:.2f}):"
    )
    print()
    print("| hasher | C order GB/s | F order GB/s | ÷ blake3 AUTO, C (target 0.8) | F (0.5) |")
    print("|---|---|---|---|---|")
    print(
        f"| gamstore.hash_array | {nbytes / best_c / 1e9:.2f} | {nbytes / best_f / 1e9:.2f} "
        f"| {auto_c / best_c:.2f} | {auto_c / best_f:.2f} |"
    )
    print(
        f"| blake3(max_threads=AUTO), the same bytes in C order | {nbytes / auto_c / 1e9:.2f} "
        "| - | 1.00 | 1.00 |"
    )

    # small inputs: keys are computed per fit
    print()
    print("| small input (CPU µs per call) | hash_array | hashlib.sha256 | joblib.hash |")
    print("|---|---|---|---|")
    smalls: list[tuple[str, np.ndarray]] = [
        ("float64 (10,)", rng.standard_normal(10)),
        ("float64 (100,)", rng.standard_normal(100)),
        ("int64 (50,)", np.arange(50)),
        ("float64 (200, 20) C", rng.standard_normal((200, 20))),
        ("float64 (200, 20) F", np.asfortranarray(rng.standard_normal((200, 20)))),
        ("float64 (2000, 50) C", rng.standard_normal((2000, 50))),
    ]
    for name, arr in smalls:
        ours = per_call_us(lambda arr=arr: hash_array(arr))
        sha = per_call_us(
            lambda arr=arr: hashlib.sha256(np.ascontiguousarray(arr).view(np.uint8)).digest()
        )
        jl = per_call_us(lambda arr=arr: joblib.hash(arr)) if joblib is not None else float("nan")
        print(f"| {name} | {ours:.1f} | {sha:.1f} | {jl:.1f} |")
    print()
    print(f"Load avg at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
