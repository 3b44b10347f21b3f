"""Throughput of the frozen student's head (compiled, numpy, torch) and encoders, in scenes per second.

    python benchmarks/bench_semantic.py [--repeat 7] [--threads 1] [--readme README.md]

Rows per batch size n: ``FrozenStudent.classify`` (the compiled loop of ``semantic_models.head_kernel`` up to
``COMPILED_BATCH`` scenes, the numpy head above; the environment runs the compiled loop on each scene), the
compiled loop and the numpy head itself (``head_logits``, ``classify_numpy``) at every size, so their crossover,
which sets ``COMPILED_BATCH``, is in the table; the torch module, and a naive dense fusion head (330 → 128 → C,
the plain reference implementation) with OpenBLAS pinned to one thread (as ``classify`` pins it for large
batches).

Method: inputs drawn beforehand, a warm-up, then the best of ``--repeat`` timed loops of ``time.perf_counter``
(the machine is shared, so the minimum is the least disturbed figure). ``--readme FILE`` replaces the block
between ``<!-- bench_semantic:start -->`` and ``<!-- bench_semantic:end -->`` of FILE with the table, the command,
the machine and the package versions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from agents.common import provenance
from semantic_models import load_frozen_student
from semantic_models.blas import set_local_threads
from semantic_models.head_kernel import COMPILED_BATCH, head_logits
from semantic_models.spec import LATENT_DIM, MODALITIES, PREFIX_LENGTHS

MARK_START, MARK_END = "<!-- bench_semantic:start -->", "<!-- bench_semantic:end -->"
PROGRAM = "python benchmarks/bench_semantic.py"
BATCHES = (1, 2, 4, 8, 16, 32, 64, 256, 2048)


def best_time(fn: Callable[[], object], repeat: int, budget_s: float = 0.2) -> float:
    """Seconds per call: calibrate a loop length to ~budget_s, then the best of ``repeat`` loops."""
    fn()
    loops, t = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        t = time.perf_counter() - t0
        if t > budget_s / 4 or loops > 1 << 16:
            break
        loops *= 4
    best = t / loops
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    return best


def pinned(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with OpenBLAS on the calling thread only, as ``classify`` runs it."""
    def run() -> object:
        old = set_local_threads(1) if set_local_threads is not None else None
        try:
            return fn()
        finally:
            if old is not None:
                set_local_threads(old)
    return run


def classify_rows(repeat: int, batches: Sequence[int] = BATCHES) -> list[dict[str, float]]:
    """Per batch size: seconds per call of ``classify``, the compiled loop, the numpy head, the torch module and
    the naive dense head."""
    fs = load_frozen_student()
    M, C = len(MODALITIES), fs.num_classes
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((M * (LATENT_DIM + 2), 128)).astype(np.float32)
    w2 = rng.standard_normal((128, C)).astype(np.float32)
    rows = []
    for n in batches:
        prefix = np.asarray((0, *PREFIX_LENGTHS))[rng.integers(0, 6, (n, M))]
        lat = (rng.standard_normal((n, M, LATENT_DIM)) * (np.arange(LATENT_DIM) < prefix[..., None])).astype(
            np.float32)
        flat = np.concatenate([lat.reshape(n, -1), (prefix > 0).astype(np.float32), prefix / 64.0], axis=1,
                              dtype=np.float32)
        numpy_head = best_time(lambda: fs.classify_numpy(lat, prefix), repeat)  # noqa: B023
        compiled = best_time(lambda: head_logits(lat, prefix, *fs.head_weights), repeat)  # noqa: B023
        rows.append({
            "n": n,
            # classify is one of the two heads: its own timing, as a check that it adds nothing
            "hot": best_time(lambda: fs.classify(lat, prefix), repeat),  # noqa: B023
            "compiled": compiled,
            "numpy": numpy_head,
            "torch": best_time(lambda: fs.classify_torch(lat, prefix), repeat),  # noqa: B023
            "naive": best_time(pinned(lambda: np.maximum(flat @ w1, 0.0) @ w2), repeat),  # noqa: B023
        })
    return rows


def _us(t: float, n: int) -> str:
    rate = n / t
    scenes = f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:.0f} k"
    return f"{t * 1e6:,.1f} µs ({scenes} scenes/s)"


def markdown_table(rows: Sequence[dict[str, float]]) -> str:
    lines = ["| batch | `classify` | compiled loop | numpy head | compiled vs numpy | torch module | "
             "naive dense head, BLAS 1 thread |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        n = int(r["n"])
        path = "compiled" if n <= COMPILED_BATCH else "numpy"
        lines.append(f"| {n} | {_us(r['hot'], n)}, {path} | {r['compiled'] * 1e6:,.1f} µs | {r['numpy'] * 1e6:,.1f} µs "
                     f"| {r['numpy'] / r['compiled']:.2f}× | {r['torch'] * 1e6:,.0f} µs | {r['naive'] * 1e6:,.1f} µs |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--readme", type=Path, default=None, help="replace the bench_semantic block of this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    fs = load_frozen_student()
    print(f"student {fs.metadata['architecture_key']}, head {fs.metadata['head_mflops'] * 1e3:.1f} kFLOP/scene, "
          f"torch threads {torch.get_num_threads()}, compiled head up to {COMPILED_BATCH} scenes")
    rows = classify_rows(args.repeat)
    table = markdown_table(rows)
    print(table)
    rng = np.random.default_rng(1)
    for n in (1, 256):
        for m, name in enumerate(MODALITIES):
            x = rng.standard_normal((n, fs.input_dims[name])).astype(np.float32)
            t = best_time(lambda: fs.encode(m, x), args.repeat)  # noqa: B023
            print(f"encode {name:<12} n={n:<4} {t * 1e6:9.1f} µs  {n / t:12,.0f} scenes/s")
    if args.readme is not None:
        block = (f"\n{table}\n\nBest of {args.repeat} timed loops per cell, inputs drawn beforehand, torch on "
                 f"{torch.get_num_threads()} thread(s). Measured by `{provenance.command_line(PROGRAM, argv)}`. "
                 f"{provenance.machine_line()}\n")
        text = args.readme.read_text(encoding="utf-8")
        args.readme.write_text(provenance.replace_block(text, block, MARK_START, MARK_END), encoding="utf-8")
        print(f"wrote the table into {args.readme}")


if __name__ == "__main__":
    main()
