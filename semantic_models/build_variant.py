"""Build the *variant* device-encoder student: the heterogeneous devices of VMIMO-v0 (``heterogeneous_devices``).

    python -m semantic_models.build_variant            # the shipped asset (assets/variant_student.*), ~1 min
    python -m semantic_models.build_variant --quick    # tiny version into a temporary directory, a few seconds
    python -m semantic_models.build_variant --out DIR  # full build elsewhere

What it is: a second student of another architecture and another initialisation, trained on the same data
pipeline as the shipped one (``SceneGenerator(data_seed)`` of the shipped metadata, the same ``train`` split and the
same channel-condition sampling), so its latents carry the same information in a different, unrelated latent space.
The architecture is the cheapest point of the shipped NAS Pareto front (``assets/nas_log.json``): every encoder 16
wide, about a third of the shipped student's device FLOPs, i.e. a low-end device. It is trained from scratch (hard
labels only): the shipped metadata shows distillation ties scratch training at this size (0.7117 vs 0.7117 on 12,000
paired scenes), and scratch needs no teacher, so the build is one training run. Only its encoders are used by the
environment (devices run them; the BS keeps the shipped fusion head and maps what it receives with a fitted
aligner); its own head is kept so the checkpoint loads like any student and its own accuracy can be reported.

Deterministic: fixed seeds, one torch thread; a rebuild writes the same checkpoint bytes (same SHA-256; checked on
torch 2.13 CPU), only the wall time in the metadata differs.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from .build import student_card
from .data import GENERATOR_VERSION, SceneGenerator
from .distill import DistillConfig, train_student
from .evaluate import accuracy_under_conditions, make_fixed_conditions
from .frozen import ASSETS, DEFAULT_CHECKPOINT, load_frozen_student, sha256_file
from .student import StudentArch
from .training import to_tensors

VARIANT_NAME = "variant_student"
VARIANT_CHECKPOINT = ASSETS / f"{VARIANT_NAME}.pt"
#: Cheapest point of the shipped Pareto front (``nas_log.json``); the shipped student is enc[16x1-64x0-16x0-48x1-64x1].
VARIANT_ARCH = "enc[16x0-16x0-16x0-16x0-16x1]_e8_h192x0"


@dataclass(frozen=True)
class VariantConfig:
    arch: str = VARIANT_ARCH
    train_seed: int = 1  # the shipped student used 0: another initialisation, data order and channel draws
    n_train: int = 40_000
    n_val: int = 4_000
    n_test: int = 4_000
    distill: DistillConfig = field(default_factory=DistillConfig)  # same schedule as the shipped student


def quick_config() -> VariantConfig:
    """Tiny settings: exercises the build in seconds (the weights are not meaningful)."""
    return VariantConfig(n_train=1_024, n_val=256, n_test=256, distill=replace(DistillConfig(), epochs=1))


def parse_arch_key(key: str) -> StudentArch:
    """Inverse of ``StudentArch.key``: ``enc[16x0-...-16x1]_e8_h192x0`` → the architecture."""
    enc, rest = key.split("]_", 1)
    pairs = [tuple(int(v) for v in p.split("x")) for p in enc.removeprefix("enc[").split("-")]
    e, h = rest.split("_")
    width, blocks = h.removeprefix("h").split("x")
    arch = StudentArch(tuple(w for w, _ in pairs), tuple(b for _, b in pairs), int(e.removeprefix("e")), int(width),
                       int(blocks))
    if arch.key() != key:
        raise ValueError(f"could not parse architecture key {key!r}")
    return arch


def build_variant(cfg: VariantConfig, out: Path, show: bool = True) -> dict:
    """Train the variant and write ``variant_student.pt`` + ``.json`` (SHA-256 recorded) into ``out``."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    base_meta = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    data_seed = int(base_meta["data_seed"])
    gen = SceneGenerator(data_seed)
    f_tr, y_tr, _ = gen.sample(cfg.n_train, "train")
    f_va, y_va, _ = gen.sample(cfg.n_val, "val")
    f_te, y_te, _ = gen.sample(cfg.n_test, "test")
    arch = parse_arch_key(cfg.arch)
    val_fc = make_fixed_conditions(f_va, y_va, seed=cfg.train_seed + 12)
    model, info = train_student(arch, to_tensors(f_tr), torch.from_numpy(y_tr), None, val_fc, cfg.distill,
                                seed=cfg.train_seed, show=show, desc="variant (scratch)")
    test_acc = accuracy_under_conditions(model.encode_all, model.classify,
                                         make_fixed_conditions(f_te, y_te, seed=cfg.train_seed + 13))

    ckpt = out / f"{VARIANT_NAME}.pt"
    torch.save(model.state_dict(), ckpt)
    meta: dict = student_card(arch, gen) | {
        "role": "variant device encoders for heterogeneous VMIMO-v0 devices (semantic_models.build_variant)",
        "data_seed": data_seed,
        "generator": gen.describe() | {"version": GENERATOR_VERSION},
        "training": {"kind": "scratch (hard labels, no teacher)", "train_seed": cfg.train_seed,
                     "val_history": info["history"], "config": info["config"],
                     "test_acc_random_conditions": round(test_acc, 4),
                     "note": "own encoders + own head, test split, the training channel-condition law"},
        "bs_student_sha256": base_meta["sha256"],
        "sha256": sha256_file(ckpt),
        "size_bytes": ckpt.stat().st_size,
    }
    meta["build"] = {"quick": cfg.n_train < 10_000, "config": asdict(cfg), "torch_threads": torch.get_num_threads(),
                     "torch": torch.__version__, "python": platform.python_version(),
                     "wall_time_s": round(time.perf_counter() - t0, 1)}
    (out / f"{VARIANT_NAME}.json").write_text(json.dumps(meta, indent=1))
    load_frozen_student(ckpt)  # the round trip the environment will do, hash check included
    if show:
        print(f"[build_variant] {arch.key()} ({meta['params_total']} params), own test accuracy {test_acc:.3f}, "
              f"{meta['build']['wall_time_s']:.1f} s → {ckpt}", flush=True)
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m semantic_models.build_variant", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny build for tests (into a temporary dir by default)")
    ap.add_argument("--out", type=Path, default=None, help=f"output directory (default {ASSETS}; temp with --quick)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (≤ 2 on the shared machine)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar or summary line")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    cfg = quick_config() if args.quick else VariantConfig()
    out = args.out if args.out is not None else (Path(tempfile.mkdtemp(prefix="vmimo_variant_"))
                                                 if args.quick else ASSETS)
    build_variant(cfg, out, show=not args.no_progress)
    print(out / f"{VARIANT_NAME}.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
