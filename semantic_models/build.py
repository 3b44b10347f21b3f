"""Rebuild the frozen student from scratch: data → teacher → supernet → NSGA-II search → distillation → export →
accuracy tables (incl. the separate-coding baseline) → metadata, search log and figure.

    python -m semantic_models.build              # the shipped assets (semantic_models/assets/), ~4 min on 2 cores
    python -m semantic_models.build --quick      # tiny version into a temporary directory, well under a minute
    python -m semantic_models.build --out DIR    # full build elsewhere

Everything is seeded; ``--threads`` defaults to 1 because these networks are small enough that extra torch
threads mostly add synchronisation (and the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import GENERATOR_VERSION, SceneGenerator
from .digital import joint_vs_separate
from .distill import DistillConfig, train_student
from .evaluate import (
    FixedConditions,
    accuracy_table,
    accuracy_under_conditions,
    lookup,
    make_fixed_conditions,
    modality_subsets,
)
from .frozen import ASSETS, load_frozen_student, sha256_file
from .nas import NASConfig, nsga2_search, search_log
from .space import Budgets, SearchSpace
from .spec import MODALITIES, PREFIX_LENGTHS
from .student import Student, StudentArch, arch_cost
from .supernet import SupernetConfig, train_supernet
from .teacher import (
    TeacherConfig,
    evaluate_teacher,
    single_modality_accuracy,
    teacher_flops_per_sample,
    train_teacher,
)
from .training import count_params, to_tensors

DOCS = Path(__file__).resolve().parent.parent / "docs"
FIGURE = DOCS / "figures" / "semantic_joint_vs_separate.png"


@dataclass(frozen=True)
class BuildConfig:
    data_seed: int = 0
    train_seed: int = 0
    n_train: int = 40_000
    n_val: int = 4_000
    n_test: int = 4_000
    n_nas_val: int = 4_000
    n_compare: int = 12_000  # extra test scenes for the paired distilled-vs-scratch comparison
    teacher: TeacherConfig = field(default_factory=lambda: replace(TeacherConfig(), epochs=10))
    supernet: SupernetConfig = field(default_factory=lambda: replace(SupernetConfig(), epochs=8))
    nas: NASConfig = field(default_factory=lambda: NASConfig(population=32, generations=10))
    distill: DistillConfig = field(default_factory=DistillConfig)
    budgets: Budgets = field(default_factory=Budgets)
    space: SearchSpace = field(default_factory=SearchSpace)
    table_snr_db: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
    compare_snr_db: tuple[float, ...] = tuple(float(s) for s in np.arange(-10.0, 27.5, 2.5))
    compare_prefixes: tuple[int, ...] = (16, 64)
    digital_schemes: tuple[int | str, ...] = (2, 4, "adaptive")


def quick_config() -> BuildConfig:
    """Tiny settings: exercises every stage in seconds (numbers are not meaningful)."""
    return BuildConfig(n_train=1_024, n_val=256, n_test=256, n_nas_val=256, n_compare=256,
                       teacher=replace(TeacherConfig(), epochs=1),
                       supernet=replace(SupernetConfig(), epochs=1, random_subnets=1),
                       nas=NASConfig(population=6, generations=2),
                       distill=replace(DistillConfig(), epochs=1),
                       table_snr_db=(-10.0, 0.0, 10.0, 20.0), compare_snr_db=(-10.0, 0.0, 10.0, 20.0),
                       compare_prefixes=(64,))


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.stages: dict[str, float] = {}

    def lap(self, name: str, verbose: bool) -> None:
        now = time.perf_counter()
        self.stages[name] = round(now - self.last, 1)
        self.last = now
        if verbose:
            print(f"[build] {name}: {self.stages[name]:.1f} s (total {now - self.t0:.1f} s)", flush=True)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.t0, 1)


def build(cfg: BuildConfig, out: Path, show: bool = True, figure: Path | None = None) -> dict:
    """Run the whole pipeline into ``out`` (student.pt, student.json, nas_log.json); returns the metadata."""
    out.mkdir(parents=True, exist_ok=True)
    sw = Stopwatch()
    gen = SceneGenerator(cfg.data_seed)
    C = gen.num_classes
    f_tr, y_tr, _ = gen.sample(cfg.n_train, "train")
    f_va, y_va, _ = gen.sample(cfg.n_val, "val")
    f_te, y_te, _ = gen.sample(cfg.n_test, "test")
    xs_tr, xs_va, xs_te = to_tensors(f_tr), to_tensors(f_va), to_tensors(f_te)
    t_tr, t_va, t_te = torch.from_numpy(y_tr), torch.from_numpy(y_va), torch.from_numpy(y_te)
    sw.lap("data", show)

    # ---- teacher (clean features, all modalities)
    teacher, t_info = train_teacher(xs_tr, t_tr, xs_va, t_va, C, cfg.teacher, seed=cfg.train_seed, show=show)
    teacher_summary = {"params": t_info["params"], "mflops_per_scene": teacher_flops_per_sample(teacher) / 1e6,
                       "val_acc_clean": evaluate_teacher(teacher, xs_va, t_va),
                       "test_acc_clean": evaluate_teacher(teacher, xs_te, t_te),
                       "test_acc_single_modality": single_modality_accuracy(teacher, xs_te, t_te),
                       "config": t_info["config"],
                       "history": t_info["history"]}
    sw.lap("teacher", show)

    # ---- supernet + search (scored on a val subset with fixed channel draws)
    supernet, s_info = train_supernet(xs_tr, t_tr, teacher, cfg.space, cfg.budgets, C, cfg.supernet,
                                      seed=cfg.train_seed, show=show)
    sw.lap("supernet", show)
    nas_val = make_fixed_conditions({k: v[:cfg.n_nas_val] for k, v in f_va.items()}, y_va[:cfg.n_nas_val],
                                    seed=cfg.train_seed + 11)

    def score(arch: StudentArch) -> float:
        return accuracy_under_conditions(lambda xs: supernet.encode_all(xs, arch),
                                         lambda lat, p: supernet.classify(lat, p, arch), nas_val)

    with torch.no_grad():
        chosen, evaluated = nsga2_search(score, cfg.space, cfg.budgets, C, cfg.nas, show=show)
    arch = chosen.arch
    log = search_log(chosen, evaluated, cfg.space, cfg.budgets, cfg.nas, extra={"supernet": s_info})
    sw.lap("search", show)

    # ---- distillation and the scratch baseline (same arch, seed, data order and channel draws)
    val_fc = make_fixed_conditions(f_va, y_va, seed=cfg.train_seed + 12)
    test_fc = make_fixed_conditions(f_te, y_te, seed=cfg.train_seed + 13)
    student, d_info = train_student(arch, xs_tr, t_tr, teacher, val_fc, cfg.distill, seed=cfg.train_seed, show=show,
                                    desc="distill")
    sw.lap("distill", show)
    scratch, sc_info = train_student(arch, xs_tr, t_tr, None, val_fc, cfg.distill, seed=cfg.train_seed, show=show,
                                     desc="scratch")
    sw.lap("scratch", show)

    # ---- export
    ckpt = out / "student.pt"
    torch.save(student.state_dict(), ckpt)
    meta: dict = student_card(arch, gen) | {
        "budgets": cfg.budgets.to_dict(),
        "data_seed": cfg.data_seed,
        "generator": gen.describe() | {"version": GENERATOR_VERSION},
        "sha256": sha256_file(ckpt),
        "size_bytes": ckpt.stat().st_size,
    }
    (out / "student.json").write_text(json.dumps(meta))
    fs = load_frozen_student(ckpt)  # the round trip the environment will do, hash check included

    # ---- evaluation of the frozen model (numpy hot path) on the test split
    lat_te = np.stack([fs.encode(m, f_te[name]) for m, name in enumerate(MODALITIES)], axis=1)
    table = accuracy_table(fs.classify, lat_te, y_te, cfg.table_snr_db, seed=cfg.train_seed + 14,
                           subsets=modality_subsets())
    comparison = joint_vs_separate(fs.classify, lat_te, y_te, cfg.compare_snr_db, cfg.compare_prefixes,
                                   cfg.digital_schemes, seed=cfg.train_seed + 15)
    sw.lap("tables", show)

    all_name = "+".join(MODALITIES)
    clean_snr = max(cfg.table_snr_db)
    f_cmp, y_cmp, _ = gen.sample(cfg.n_compare, "test", seed_offset=1)
    kd = paired_comparison(student, scratch, make_fixed_conditions(f_cmp, y_cmp, seed=cfg.train_seed + 16))
    kd.update({"distilled_test_acc_random_conditions": accuracy_under_conditions(student.encode_all,
                                                                                 student.classify, test_fc),
               "scratch_test_acc_random_conditions": accuracy_under_conditions(scratch.encode_all,
                                                                               scratch.classify, test_fc),
               "distilled_val_history": d_info["history"], "scratch_val_history": sc_info["history"],
               "config": d_info["config"],
               "note": "same architecture, init seed, data order, channel draws and steps; scratch uses hard labels "
                       "only. Paired over the same scenes and channel draws; 'significant' = |diff| > 2 SE."})
    summary = {
        "all_modalities_prefix64": {f"{s:g}dB": lookup(table, all_name, 64, s) for s in cfg.table_snr_db},
        "single_modality_prefix64_best_snr": {m: lookup(table, m, 64, clean_snr) for m in MODALITIES},
        "chance": 1.0 / C,
    }
    meta.update({
        "teacher": teacher_summary,
        "teacher_to_student_params": round(teacher_summary["params"] / meta["params_total"], 2),
        "student_params_counted": count_params(student),
        "distillation": kd,
        "search": {"chosen": chosen.to_log(), "evaluated": len(evaluated), "pareto_front_size":
                   len(log["pareto_front"]), "log_file": "nas_log.json"},
        "accuracy_summary": summary,
        "accuracy_table": table,
        "joint_vs_separate": comparison,
        "build": {"quick": cfg.n_train < 10_000, "config": _jsonable(asdict(cfg)), "stage_seconds": sw.stages,
                  "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                  "python": platform.python_version()},
    })
    meta["build"]["wall_time_s"] = sw.total
    (out / "student.json").write_text(json.dumps(meta, indent=1))
    (out / "nas_log.json").write_text(json.dumps(log, separators=(",", ":")))
    if figure is not None:
        from .report import plot_joint_vs_separate

        plot_joint_vs_separate(comparison, figure, chance=1.0 / C)
    if show:
        print(f"[build] done in {sw.total:.1f} s → {out}; teacher test {teacher_summary['test_acc_clean']:.3f}, "
              f"student {arch.key()} all-modality@{clean_snr:g}dB {summary['all_modalities_prefix64']}, "
              f"KD {kd['distilled_test_acc_random_conditions']:.3f} vs scratch "
              f"{kd['scratch_test_acc_random_conditions']:.3f}", flush=True)
    return meta


@torch.no_grad()
def student_card(arch: StudentArch, gen: SceneGenerator) -> dict[str, Any]:
    """The architecture part of a shipped student's metadata (what ``frozen.load_frozen_student`` reads back)."""
    cost = arch_cost(arch)
    return {
        "format": 1,
        "num_classes": gen.num_classes,
        "modalities": list(MODALITIES),
        "input_dims": dict(gen.input_dims),
        "latent_dim": 64,
        "prefix_lengths": list(PREFIX_LENGTHS),
        "architecture": arch.to_dict(),
        "architecture_key": arch.key(),
        "encoder_mflops": [round(f / 1e6, 6) for f in cost["encoder_flops"]],
        "encoder_params": cost["encoder_params"],
        "head_mflops": round(cost["head_flops"] / 1e6, 6),
        "head_params": cost["head_params"],
        "params_total": cost["params_total"],
    }


def paired_comparison(distilled: Student, scratch: Student, fc: FixedConditions) -> dict:
    """Accuracy of both students on the same scenes and channel draws, with the paired difference's SE."""
    hits = []
    for model in (distilled, scratch):
        model.eval()
        logits = model.classify(fc.received(model.encode_all(fc.xs)), fc.prefix)
        hits.append((logits.argmax(1) == fc.y).double().numpy())
    d = hits[0] - hits[1]
    diff, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(max(1, d.size - 1)))
    return {"n_paired": int(d.size), "distilled_acc": round(float(hits[0].mean()), 4),
            "scratch_acc": round(float(hits[1].mean()), 4), "distilled_minus_scratch": round(diff, 4),
            "standard_error": round(se, 4), "distilled_beats_scratch": diff > 0,
            "significant": abs(diff) > 2 * se}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 6)
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m semantic_models.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny build for tests (into a temporary dir by default)")
    ap.add_argument("--out", type=Path, default=None, help=f"output directory (default {ASSETS}; temp with --quick)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (≤ 2 on the shared machine)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars or stage lines")
    ap.add_argument("--figure", type=Path, default=None,
                    help=f"where to draw the joint-vs-separate plot (default {FIGURE} for a full build into the "
                         "shipped assets, none otherwise)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    cfg = quick_config() if args.quick else BuildConfig()
    out = args.out if args.out is not None else (Path(tempfile.mkdtemp(prefix="vmimo_student_"))
                                                 if args.quick else ASSETS)
    figure = args.figure
    if figure is None and not args.quick and out.resolve() == ASSETS.resolve():
        figure = FIGURE
    build(cfg, out, show=not args.no_progress, figure=figure)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
