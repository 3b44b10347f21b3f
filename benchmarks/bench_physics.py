"""Time one physics slot of the numpy physical layer: fading update + SINR of every group + device energy.

    python benchmarks/bench_physics.py [--quick] [--receiver mmse] [--tune-malloc] [--compiled]

Rows: K in {8, 16, 64} devices, Nr in {4, 16} BS antennas, N in {1, 256} environments, G = 3 groups. Random
group / power / bandwidth / air-time assignments and the fading innovations are prepared before timing (the
environment's RNG is not part of the physics); the links start from the environment's own start-state
composition (``physics.init_links`` -> ``physics.initial_link_state``, as ``VMIMOCore.reset``); every row is
warmed up, then timed with ``time.perf_counter`` in several repeats of many slots. The median repeat is reported
(the machines are shared and noisy), with the best repeat beside it.

``--tune-malloc`` raises glibc's mmap/trim thresholds first (``physics.tune_glibc_malloc``): on the project's
VMs every freed temporary above 128 KiB otherwise goes back to the OS and costs page faults when reused.
``--compiled`` adds a column with the environment's numba MMSE kernel (``vmimo_env.kernels.mmse_sinr_into``) in
place of the numpy receiver, for comparison. BLAS runs single-threaded unless ``OPENBLAS_NUM_THREADS`` is set.
"""

from __future__ import annotations

import os

# One BLAS thread unless the caller says otherwise (set before numpy loads): on a shared 2-core machine
# OpenBLAS's threads for 16x16..64x64 matrices wait on each other and a K = 64 slot took 15 ms instead of 0.35.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from vmimo_env import physics, rules  # noqa: E402
from vmimo_env.config import ScenarioConfig  # noqa: E402

NUM_GROUPS = 3
NUM_PREPARED = 32  # distinct random slots, cycled


def make_slot(num_envs: int, k: int, nr: int, receiver: str, compiled: bool, seed: int = 0) -> Callable[[int], None]:
    """A closure running prepared slot ``i`` (mod NUM_PREPARED) of one (N, K, Nr) scenario."""
    cfg = ScenarioConfig(num_devices=k, num_antennas=nr, num_groups=NUM_GROUPS, receiver=receiver)
    rng = np.random.default_rng(seed)
    links = physics.init_links(cfg, rng, num_envs)
    shape = (num_envs, k)
    white = [physics.complex_innovation(rng.standard_normal((*shape, 2 * nr))) for _ in range(NUM_PREPARED)]
    groups = [rng.integers(0, NUM_GROUPS + 1, shape) for _ in range(NUM_PREPARED)]
    powers = [cfg.max_power_w * 10 ** (rng.choice(cfg.power_levels_db, shape) / 10) for _ in range(NUM_PREPARED)]
    noise = [rules.receiver_noise_w(rng.dirichlet(np.ones(NUM_GROUPS), num_envs), cfg) for _ in range(NUM_PREPARED)]
    airtime = [cfg.slot_s * rng.random(shape) * (g > 0) for g in groups]
    latents = [rng.integers(0, 4, shape) * (g > 0) for g in groups]
    mflops = np.full(k, 1.5)
    if not compiled:
        def run(i: int) -> None:
            j = i % NUM_PREPARED
            physics.physics_slot(links, white[j], powers[j], groups[j], noise[j], airtime[j], latents[j], mflops, cfg)
        return run

    from vmimo_env import energy, kernels

    out = np.zeros(shape)

    def run_compiled(i: int) -> None:
        j = i % NUM_PREPARED
        h = physics.fading_step(links, white[j])
        kernels.mmse_sinr_into(h, powers[j], groups[j], noise[j], NUM_GROUPS, out)
        energy.device_energy_j(powers[j], airtime[j], latents[j], mflops, pa_efficiency=cfg.pa_efficiency,
                               circuit_power_w=cfg.circuit_power_w, j_per_mflop=cfg.encode_energy_j_per_mflop)
    return run_compiled


def time_slot(run: Callable[[int], None], budget_s: float, repeats: int) -> tuple[float, float, float]:
    """(median wall, best wall, median CPU) seconds per slot over ``repeats`` repeats of ~``budget_s / repeats``.

    Wall time (``time.perf_counter``) is what a user waits; CPU time (``time.process_time``) excludes the time
    the shared machine gives to other processes, so it is the steadier figure when the load average exceeds
    the core count.
    """
    for i in range(20):  # warm-up: caches, allocator, lazy imports
        run(i)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < 0.05 or n < 3:
        run(n)
        n += 1
    per = (time.perf_counter() - t0) / n
    slots = max(5, int(budget_s / repeats / per))
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(slots):
            run(i)
        wall.append((time.perf_counter() - t0) / slots)
        cpu.append((time.process_time() - c0) / slots)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter timing (about 0.3 s per row)")
    ap.add_argument("--receiver", default="mmse", choices=["mmse", "zf", "mmse_sic"])
    ap.add_argument("--tune-malloc", action="store_true", help="raise glibc mmap/trim thresholds first")
    ap.add_argument("--compiled", action="store_true", help="also time the numba MMSE kernel of vmimo_env.kernels")
    args = ap.parse_args()
    if args.tune_malloc:
        print(f"glibc malloc tuned: {physics.tune_glibc_malloc()}")
    budget, repeats = (0.3, 3) if args.quick else (1.5, 5)
    header = "| K | Nr | N | µs/slot (median) | µs/slot (best) | CPU µs/slot | env-slots/s |"
    sep = "|---:|---:|---:|---:|---:|---:|---:|"
    if args.compiled:
        header += " compiled MMSE µs/slot | compiled env-slots/s |"
        sep += "---:|---:|"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"physics slot = fading update + {args.receiver} SINR (G = {NUM_GROUPS}) + energy; "
          f"load average {load:.1f} on {os.cpu_count()} cores, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}\n")
    print(header)
    print(sep)
    for k in (8, 16, 64):
        for nr in (4, 16):
            for n_env in (1, 256):
                med, best, cpu = time_slot(make_slot(n_env, k, nr, args.receiver, False), budget, repeats)
                row = (f"| {k} | {nr} | {n_env} | {med * 1e6:,.1f} | {best * 1e6:,.1f} | {cpu * 1e6:,.1f} "
                       f"| {n_env / med:,.0f} |")
                if args.compiled:
                    cmed, _, _ = time_slot(make_slot(n_env, k, nr, args.receiver, True), budget, repeats)
                    row += f" {cmed * 1e6:,.1f} | {n_env / cmed:,.0f} |"
                print(row, flush=True)


if __name__ == "__main__":
    main()
