"""Throughput of the frozen student's hot path: classify (numpy vs torch) and encode, in scenes per second.

    .venv/bin/python benchmarks/bench_semantic.py [--repeat 7] [--threads 1]

Method: inputs drawn beforehand, a warm-up, then the best of ``--repeat`` timed loops of
``time.perf_counter`` (the machine is shared, so the minimum is the least disturbed figure). A naive dense
fusion head (330 → 128 → C, the plain reference implementation) is timed in the same run as the baseline for ratios,
with OpenBLAS pinned to one thread (like the hot path) and with its default threads (to show what pinning buys).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from semantic_models import load_frozen_student
from semantic_models.blas import set_local_threads
from semantic_models.spec import LATENT_DIM, MODALITIES, PREFIX_LENGTHS


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fs = load_frozen_student()
    M, C = len(MODALITIES), fs.num_classes
    rng = np.random.default_rng(0)
    print(f"student {fs.metadata['architecture_key']}, head {fs.metadata['head_mflops'] * 1e3:.1f} kFLOP/scene, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'call':<34}{'batch':>6}{'µs/call':>11}{'scenes/s':>13}{'vs naive':>10}")
    w1 = rng.standard_normal((M * (LATENT_DIM + 2), 128)).astype(np.float32)
    w2 = rng.standard_normal((128, C)).astype(np.float32)
    for n in (1, 16, 256, 2048):
        prefix = np.asarray((0, *PREFIX_LENGTHS))[rng.integers(0, 6, (n, M))]
        lat = (rng.standard_normal((n, M, LATENT_DIM)) * (np.arange(LATENT_DIM) < prefix[..., None])).astype(
            np.float32)
        flat = np.concatenate([lat.reshape(n, -1), (prefix > 0).astype(np.float32), prefix / 64.0], axis=1,
                              dtype=np.float32)
        def naive_head() -> np.ndarray:
            return np.maximum(flat @ w1, 0.0) @ w2  # noqa: B023

        def pinned(fn: Callable[[], object]) -> Callable[[], object]:
            def run() -> object:
                old = set_local_threads(1) if set_local_threads is not None else None
                try:
                    return fn()
                finally:
                    if old is not None:
                        set_local_threads(old)
            return run

        naive = best_time(pinned(naive_head), args.repeat)
        rows = [("classify numpy (hot path)", lambda: fs.classify(lat, prefix)),  # noqa: B023
                ("classify torch module", lambda: fs.classify_torch(lat, prefix)),  # noqa: B023
                ("naive dense head, BLAS 1 thread", None),
                ("naive dense head, BLAS default", naive_head)]
        for name, fn in rows:
            t = naive if fn is None else best_time(fn, args.repeat)
            print(f"{name:<34}{n:>6}{t * 1e6:>11.1f}{n / t:>13,.0f}{naive / t:>9.2f}x")
    for n in (1, 256):
        for m, name in enumerate(MODALITIES):
            x = rng.standard_normal((n, fs.input_dims[name])).astype(np.float32)
            t = best_time(lambda: fs.encode(m, x), args.repeat)  # noqa: B023
            print(f"{'encode ' + name:<34}{n:>6}{t * 1e6:>11.1f}{n / t:>13,.0f}{'':>10}")
    print(f"classify n=0: {best_time(lambda: fs.classify(lat[:0], prefix[:0]), args.repeat) * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
