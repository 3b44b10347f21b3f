"""Latent-space alignment over MIMO on this project's data: accuracy vs SNR, vs compression, vs FLOPs.

Two different latent spaces of the same inputs are built here: two small MLP encoders trained on the concatenated
modalities of :class:`semantic_models.data.SceneGenerator` with different seeds, widths and depths, each with its own
linear classification head. The *transmitter* runs encoder A, the *receiver* expects encoder B's latent space and
classifies with B's head. Each aligner is fitted on paired training latents and evaluated on test scenes sent over a
Rayleigh MIMO channel:

* accuracy vs SNR (−20…30 dB) for 4×4 and 8×8;
* accuracy vs compression factor ``Nt / (d/2)`` (``Nt = Nr`` = 1 … d/2) at 20 dB;
* accuracy vs inference FLOPs (the compression sweep, plus neural aligners of several widths and sparsities);

each over several seeds (a seed draws the channel, the noise and the neural initialisation; the two encoders are
trained once), reported as mean ± std in CSV and plotted to ``docs/figures/alignment_*.png``.

Run ``python scripts/alignment_experiment.py`` (full, a few minutes on one core) or ``--quick`` (< 30 s, a smoke
test of the whole pipeline). ``--source synthetic`` swaps the scene data for the synthetic linear pair of
:mod:`semantic_models.alignment.synthetic` (no encoder training).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from semantic_models.alignment import (
    NeuralAligner,
    SVDMMSELink,
    aligner_flops,
    fit_baseline,
    fit_linear_aligner,
    fit_neural_aligner,
    noise_variance,
    rayleigh_channel,
)
from semantic_models.alignment.baselines import top_k_with_charged_indices
from semantic_models.blas import single_threaded_blas

ROOT = Path(__file__).resolve().parents[1]
FIG_DIR = ROOT / "docs" / "figures"

# Method name -> (label, matplotlib style or "" = CSV only). Order = legend order. All linear maps are real-pair
# (a strict superset of the paper's complex-linear maps at equal FLOPs) except the "_complex" rows.
METHODS: dict[str, tuple[str, str]] = {
    "admm": ("ADMM (real-pair)", "C1-s"),
    "admm_complex": ("ADMM (complex-linear, paper)", "C0-o"),
    "neural": ("Neural", "C2-^"),
    "eigen_k": ("Eigen-K", "C3-v"),
    "top_k": ("Top-K (indices free)", "C4-D"),
    "top_k_charged": ("Top-K (indices charged)", "C4:D"),
    "first_k": ("First-K", "C5-x"),
    "admm_unaware": ("ADMM channel-unaware (≡ Eigen-K)", "C1--s"),
    "neural_unaware": ("Neural channel-unaware", "C2--^"),
    "eigen_k_complex": ("Eigen-K (complex)", ""),
    "top_k_complex": ("Top-K (complex)", ""),
    "first_k_complex": ("First-K (complex)", ""),
}


@dataclass
class MeanPredictor:
    """What a receiver can do when nothing fits in the channel use: output its own mean latent."""

    y_mean: np.ndarray

    def simulate(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.broadcast_to(self.y_mean, (len(x), self.y_mean.size)).copy()


@dataclass
class LatentSpaces:
    """Paired latents (transmitter ``x``, receiver ``y``) of the same scenes and the receiver's classifier."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels_train: np.ndarray
    labels_test: np.ndarray
    classify: Callable[[np.ndarray], np.ndarray]  # receiver head: (n, d_rx) -> predicted class
    acc_tx: float  # transmitter's own accuracy on the test set (its encoder + its head)
    acc_rx: float  # receiver's own accuracy (the ceiling of any aligner)


def _mlp(sizes: Iterable[int], act: type[nn.Module]) -> nn.Sequential:
    sizes = list(sizes)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def train_encoder(x: np.ndarray, labels: np.ndarray, hidden: list[int], latent_dim: int, num_classes: int,
                  act: type[nn.Module], seed: int, epochs: int) -> tuple[nn.Module, nn.Linear]:
    """Encoder MLP + linear head trained with cross-entropy; the latent is the encoder output."""
    torch.manual_seed(seed)
    enc = _mlp([x.shape[1], *hidden, latent_dim], act)
    head = nn.Linear(latent_dim, num_classes)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=2e-3, weight_decay=1e-5)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(labels, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 128):
            idx = perm[start:start + 128]
            loss = nn.functional.cross_entropy(head(enc(xt[idx])), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    enc.eval()
    head.eval()
    return enc, head


def scene_latents(n_train: int, n_test: int, epochs: int, seed: int) -> LatentSpaces:
    """Build the two latent spaces from the scene generator (concatenated modalities, standardised)."""
    from semantic_models.data import SceneGenerator, stack_features

    gen = SceneGenerator(seed)
    f_tr, lab_tr, _ = gen.sample(n_train, split="train")
    f_te, lab_te, _ = gen.sample(n_test, split="test")
    x_tr = np.concatenate(stack_features(f_tr), axis=1).astype(np.float32)
    x_te = np.concatenate(stack_features(f_te), axis=1).astype(np.float32)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    lab_tr, lab_te = np.asarray(lab_tr), np.asarray(lab_te)
    c = int(max(lab_tr.max(), lab_te.max())) + 1
    # Different width, depth, activation and seed: two genuinely different latent spaces of the same scenes.
    enc_a, head_a = train_encoder(x_tr, lab_tr, [128], 64, c, nn.ReLU, seed=seed + 11, epochs=epochs)
    enc_b, head_b = train_encoder(x_tr, lab_tr, [256, 128], 64, c, nn.GELU, seed=seed + 23, epochs=epochs)
    with torch.no_grad():
        za = [enc_a(torch.as_tensor(v)).double().numpy() for v in (x_tr, x_te)]
        zb = [enc_b(torch.as_tensor(v)).double().numpy() for v in (x_tr, x_te)]

    def classify_b(y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head_b(torch.as_tensor(y, dtype=torch.float32)).argmax(1).numpy()

    with torch.no_grad():
        acc_a = float((head_a(torch.as_tensor(za[1], dtype=torch.float32)).argmax(1).numpy() == lab_te).mean())
    acc_b = float((classify_b(zb[1]) == lab_te).mean())
    return LatentSpaces(za[0], zb[0], za[1], zb[1], lab_tr, lab_te, classify_b, acc_a, acc_b)


def synthetic_latents(n_train: int, n_test: int, seed: int) -> LatentSpaces:
    """The synthetic linearly related pair with a least-squares linear classifier on ``y``."""
    from semantic_models.alignment import fit_linear_classifier
    from semantic_models.alignment.synthetic import linear_latent_pair

    p = linear_latent_pair(n_train=n_train, n_test=n_test, d_tx=32, d_rx=32, d_sem=24, num_classes=10, seed=seed)
    clf = fit_linear_classifier(p.y_train, p.labels_train)
    clf_x = fit_linear_classifier(p.x_train, p.labels_train)
    return LatentSpaces(p.x_train, p.y_train, p.x_test, p.y_test, p.labels_train, p.labels_test, clf.predict,
                        clf_x.accuracy(p.x_test, p.labels_test), clf.accuracy(p.y_test, p.labels_test))


@dataclass(frozen=True)
class Budget:
    """Run sizes (``--quick`` shrinks everything)."""

    snrs: tuple[float, ...]
    snr_antennas: tuple[int, ...]
    compression_antennas: tuple[int, ...]
    seeds: int
    nn_epochs: int
    nn_hidden: int
    flops_hidden: tuple[int, ...]
    flops_sparsity: tuple[float, ...]
    flops_antennas: int


_UNAWARE_CACHE: dict[tuple[int, int, int, int, int], NeuralAligner] = {}


def fit_method(name: str, ls: LatentSpaces, h: np.ndarray, snr_db: float, seed: int, budget: Budget,
               hidden: int | None = None, sparsity: float = 0.0) -> object:
    """Fit one method for channel ``h`` at ``snr_db`` (transmit power 1)."""
    x, y = ls.x_train, ls.y_train
    rep = "complex" if name.endswith("_complex") else "real"
    base = name.removesuffix("_complex")
    if name == "neural_unaware":
        # Trained with H = I and no noise, so the networks depend on neither the channel nor the SNR: train once
        # per (streams, seed) and only swap the conventional link underneath.
        k = min(h.shape)
        key = (id(ls), k, seed, hidden or budget.nn_hidden, budget.nn_epochs)
        if key not in _UNAWARE_CACHE:
            _UNAWARE_CACHE[key] = fit_neural_aligner(x, y, h, snr_db=snr_db, hidden=key[3], epochs=budget.nn_epochs,
                                                     channel_aware=False, seed=seed)
        return dataclasses.replace(_UNAWARE_CACHE[key], link=SVDMMSELink(h, noise_variance(snr_db), k))
    if name == "neural":
        return fit_neural_aligner(x, y, h, snr_db=snr_db, hidden=hidden or budget.nn_hidden, epochs=budget.nn_epochs,
                                  sparsity=sparsity, finetune_epochs=max(1, budget.nn_epochs // 3), seed=seed)
    if base in ("admm", "admm_unaware"):
        return fit_linear_aligner(x, y, h, snr_db=snr_db, channel_aware=base == "admm", representation=rep)
    if base == "top_k_charged":
        k = top_k_with_charged_indices(h, noise_variance(snr_db), x.shape[1] // 2)
        if k == 0:
            return MeanPredictor(y.mean(0))
        return fit_baseline("top_k", x, y, h, snr_db=snr_db, k=k, representation=rep)
    return fit_baseline(base, x, y, h, snr_db=snr_db, representation=rep)  # type: ignore[arg-type]


def flops_of(al: object) -> int:
    """Per-sample inference FLOPs (0 for the mean predictor)."""
    return 0 if isinstance(al, MeanPredictor) else aligner_flops(al)  # type: ignore[arg-type]


def evaluate(aligner: object, ls: LatentSpaces, seed: int) -> tuple[float, float]:
    """Receiver accuracy and normalised MSE ``E||ŷ − y||² / E||y − ȳ||²`` on the test scenes."""
    y_hat = aligner.simulate(ls.x_test, np.random.default_rng(10_000 + seed))  # type: ignore[attr-defined]
    acc = float(np.mean(ls.classify(y_hat) == ls.labels_test))
    y_var = np.mean(np.sum((ls.y_test - ls.y_test.mean(0)) ** 2, 1))
    nmse = float(np.mean(np.sum((y_hat - ls.y_test) ** 2, 1)) / y_var)
    return acc, nmse


def channel(n_ant: int, seed: int) -> np.ndarray:
    """Channel draw of a seed (the same for every method: paired comparisons)."""
    return rayleigh_channel(n_ant, n_ant, np.random.default_rng([seed, n_ant]))


def _row(sweep: str, method: str, n_ant: int, snr: float, m: int, accs: list[float], nmses: list[float],
         flops: int, **extra: object) -> dict[str, object]:
    return {"sweep": sweep, "method": method, "n_tx": n_ant, "n_rx": n_ant, "snr_db": snr,
            "compression": n_ant / m, "flops": flops, "acc_mean": np.mean(accs), "acc_std": np.std(accs),
            "nmse_mean": np.mean(nmses), "nmse_std": np.std(nmses), "seeds": len(accs), **extra}


def _over_seeds(name: str, ls: LatentSpaces, n_ant: int, snr: float, b: Budget) -> tuple[list, list, int]:
    """Fit and score one method on ``b.seeds`` channel draws: (accuracies, NMSEs, FLOPs)."""
    accs, nmses, flops = [], [], 0
    for s in range(b.seeds):
        al = fit_method(name, ls, channel(n_ant, s), snr, s, b)
        a, e = evaluate(al, ls, s)
        accs.append(a)
        nmses.append(e)
        flops = flops_of(al)
    return accs, nmses, flops


def sweep_snr(ls: LatentSpaces, b: Budget, log: Callable[[str], None]) -> list[dict[str, object]]:
    """Accuracy vs SNR for each antenna configuration and method."""
    m = ls.x_train.shape[1] // 2
    rows = []
    for n_ant in b.snr_antennas:
        for snr in b.snrs:
            for name in METHODS:
                rows.append(_row("snr", name, n_ant, snr, m, *_over_seeds(name, ls, n_ant, snr, b)))
            log(f"snr sweep {n_ant}x{n_ant} {snr:+.0f} dB: "
                + " ".join(f"{r['method']}={r['acc_mean']:.3f}" for r in rows[-len(METHODS):]))
    return rows


def sweep_compression(ls: LatentSpaces, b: Budget, log: Callable[[str], None],
                      snr: float = 20.0) -> list[dict[str, object]]:
    """Accuracy vs compression factor ``Nt/(d/2)`` at ``snr``."""
    m = ls.x_train.shape[1] // 2
    rows = []
    for n_ant in b.compression_antennas:
        for name in METHODS:
            rows.append(_row("compression", name, n_ant, snr, m, *_over_seeds(name, ls, n_ant, snr, b)))
        log(f"compression {n_ant}x{n_ant}: " + " ".join(f"{r['method']}={r['acc_mean']:.3f}"
                                                       for r in rows[-len(METHODS):]))
    return rows


def sweep_flops(ls: LatentSpaces, b: Budget, log: Callable[[str], None], snr: float = 20.0) -> list[dict[str, object]]:
    """Neural aligners of several widths and sparsities (the complexity knob) at one antenna configuration."""
    m = ls.x_train.shape[1] // 2
    n_ant = b.flops_antennas
    rows = []
    for hidden in b.flops_hidden:
        for sp in b.flops_sparsity:
            accs, nmses, flops = [], [], 0
            for s in range(b.seeds):
                al = fit_method("neural", ls, channel(n_ant, s), snr, s, b, hidden=hidden, sparsity=sp)
                a, e = evaluate(al, ls, s)
                accs.append(a)
                nmses.append(e)
                flops = flops_of(al)
            rows.append(_row("flops", "neural", n_ant, snr, m, accs, nmses, flops, hidden=hidden, sparsity=sp))
            log(f"flops neural h={hidden} sparsity={sp}: flops={flops} acc={np.mean(accs):.3f}")
    return rows


def index_only_accuracy(ls: LatentSpaces, k: int) -> float:
    """Accuracy of a linear classifier that sees only *which* ``k`` coordinates Top-K would send (no values).

    Measures how much of Top-K's accuracy is the free side information rather than the transmitted values.
    """
    from semantic_models.alignment import fit_linear_classifier
    from semantic_models.alignment.linalg import pack_complex

    mu = pack_complex(ls.x_train).mean(1, keepdims=True)

    def pattern(x: np.ndarray) -> np.ndarray:
        idx = np.argsort(-np.abs(pack_complex(x) - mu), axis=0)[:k].T
        out = np.zeros((len(x), mu.shape[0]))
        out[np.arange(len(x))[:, None], idx] = 1.0
        return out

    return fit_linear_classifier(pattern(ls.x_train), ls.labels_train).accuracy(pattern(ls.x_test), ls.labels_test)


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def read_csv(path: Path) -> list[dict[str, object]]:
    """Rows written by :func:`write_csv`, numbers converted back (for ``--plot-only``)."""
    ints = {"n_tx", "n_rx", "flops", "seeds", "hidden"}
    rows: list[dict[str, object]] = []
    with path.open() as fh:
        for r in csv.DictReader(fh):
            row: dict[str, object] = {}
            for k, v in r.items():
                if v in ("", None) or k in ("sweep", "method", "source"):
                    row[k] = v
                elif k in ints:
                    row[k] = int(float(v))
                else:
                    try:
                        row[k] = float(v)
                    except ValueError:
                        row[k] = v
            rows.append(row)
    return rows


def plot(rows: list[dict[str, object]], acc_rx: float, out: Path, prefix: str) -> list[Path]:
    """Three figures: accuracy vs SNR (one panel per antenna configuration), vs compression, vs FLOPs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(sweep: str, method: str, key: str, **match: object) -> tuple[np.ndarray, ...]:
        sel = [r for r in rows if r["sweep"] == sweep and r["method"] == method
               and all(r[k] == v for k, v in match.items())]
        sel.sort(key=lambda r: float(r[key]))  # type: ignore[arg-type]
        return (np.array([float(r[key]) for r in sel]), np.array([float(r["acc_mean"]) for r in sel]),  # type: ignore[arg-type]
                np.array([float(r["acc_std"]) for r in sel]))  # type: ignore[arg-type]

    def draw(ax, x, y, e, name) -> None:  # type: ignore[no-untyped-def]
        label, style = METHODS[name]
        if ax.get_xscale() == "log":
            keep = x > 0  # the mean predictor costs 0 FLOPs
            x, y, e = x[keep], y[keep], e[keep]
        if not style or not len(x):
            return
        ax.errorbar(x, y, yerr=e, fmt=style, label=label, ms=4, capsize=2, lw=1.2)

    def ceiling(ax) -> None:  # type: ignore[no-untyped-def]
        ax.axhline(acc_rx, color="k", ls=":", lw=1, label=f"receiver on its own latents ({acc_rx:.3f})")
        ax.set_ylabel("receiver accuracy")
        ax.grid(alpha=0.3)

    paths = []
    ants = sorted({int(r["n_tx"]) for r in rows if r["sweep"] == "snr"})  # type: ignore[call-overload]
    if ants:
        fig, axes = plt.subplots(1, len(ants), figsize=(5.5 * len(ants), 4.2), sharey=True, squeeze=False)
        for ax, n_ant in zip(axes[0], ants, strict=True):
            for name in METHODS:
                draw(ax, *series("snr", name, "snr_db", n_tx=n_ant), name)
            ceiling(ax)
            ax.set_xlabel("SNR [dB]")
            ax.set_title(f"{n_ant}×{n_ant} MIMO")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / f"{prefix}_accuracy_vs_snr.png")
        fig.savefig(paths[-1], dpi=130)
        plt.close(fig)
    if any(r["sweep"] == "compression" for r in rows):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for name in METHODS:
            draw(ax, *series("compression", name, "compression"), name)
        ceiling(ax)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("compression factor Nt / (d/2)   (Nt = Nr)")
        ax.set_title("accuracy vs compression, 20 dB")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / f"{prefix}_accuracy_vs_compression.png")
        fig.savefig(paths[-1], dpi=130)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(6, 4.2))
        ax.set_xscale("log")
        for name in METHODS:
            draw(ax, *series("compression", name, "flops"), name)
        for hidden in sorted({int(r["hidden"]) for r in rows if r["sweep"] == "flops"}):  # type: ignore[call-overload]
            x, y, e = series("flops", "neural", "flops", hidden=hidden)
            ax.errorbar(x, y, yerr=e, fmt=":.", color="C2", alpha=0.6, ms=3, capsize=1)
            if len(x):
                ax.annotate(f"h={hidden}", (x[-1], y[-1]), fontsize=6, color="C2")
        ceiling(ax)
        ax.set_xlabel("inference FLOPs per latent (precoder + link + decoder)")
        ax.set_title("accuracy vs complexity, 20 dB (curves: Nt = Nr sweep;\n"
                     "dotted: neural width/sparsity sweep)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / f"{prefix}_accuracy_vs_flops.png")
        fig.savefig(paths[-1], dpi=130)
        plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (< 30 s)")
    ap.add_argument("--source", choices=("scenes", "synthetic"), default="scenes")
    ap.add_argument("--seeds", type=int, default=None, help="channel/noise/init seeds (default 3; quick 1)")
    ap.add_argument("--out", type=Path, default=FIG_DIR, help="directory for CSV and PNG files")
    ap.add_argument("--prefix", default="alignment", help="file name prefix")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the scene generator and the encoders")
    ap.add_argument("--plot-only", action="store_true", help="redraw the figures from the CSV files in --out")
    args = ap.parse_args(argv)
    if args.plot_only:
        rows = read_csv(args.out / f"{args.prefix}_results.csv")
        acc_rx = float(read_csv(args.out / f"{args.prefix}_meta.csv")[0]["acc_rx_own"])  # type: ignore[arg-type]
        for p in plot(rows, acc_rx, args.out, args.prefix):
            print(f"wrote {p}")
        return
    torch.set_num_threads(1)
    # The matrices are tiny: a multi-threaded OpenBLAS on a shared, busy machine spins far longer than it computes.
    with single_threaded_blas():
        run(args)


def run(args: argparse.Namespace) -> None:
    """The three sweeps, CSV and figures."""
    t0 = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:6.1f}s] {msg}", flush=True)

    if args.quick:
        b = Budget(snrs=(-10.0, 30.0), snr_antennas=(2, 4), compression_antennas=(1, 4), seeds=1,
                   nn_epochs=2, nn_hidden=32, flops_hidden=(16,), flops_sparsity=(0.0, 0.8), flops_antennas=4)
        n_train, n_test, enc_epochs = 600, 300, 2
    else:
        b = Budget(snrs=tuple(float(s) for s in range(-20, 31, 5)), snr_antennas=(4, 8),
                   compression_antennas=(1, 2, 4, 8, 16, 32), seeds=3, nn_epochs=25, nn_hidden=128,
                   flops_hidden=(32, 128), flops_sparsity=(0.0, 0.5, 0.8, 0.9, 0.95), flops_antennas=8)
        n_train, n_test, enc_epochs = 6000, 3000, 25
    if args.seeds is not None:
        b = Budget(**{**b.__dict__, "seeds": args.seeds})

    if args.source == "scenes":
        ls = scene_latents(n_train, n_test, enc_epochs, args.data_seed)
    else:
        ls = synthetic_latents(n_train, n_test, args.data_seed)
    log(f"latent spaces: d_tx={ls.x_train.shape[1]} d_rx={ls.y_train.shape[1]} n_train={len(ls.x_train)} "
        f"tx own accuracy={ls.acc_tx:.3f} rx own accuracy={ls.acc_rx:.3f}")
    if ls.x_train.shape[1] // 2 not in b.compression_antennas and not args.quick:
        b = Budget(**{**b.__dict__, "compression_antennas": (*b.compression_antennas, ls.x_train.shape[1] // 2)})

    rows = sweep_snr(ls, b, log) + sweep_compression(ls, b, log) + sweep_flops(ls, b, log)
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / f"{args.prefix}_results.csv"
    write_csv(csv_path, rows)
    meta = args.out / f"{args.prefix}_meta.csv"
    data_py = ROOT / "semantic_models" / "data.py"
    data_sha = hashlib.sha256(data_py.read_bytes()).hexdigest()[:12] if data_py.exists() else ""
    write_csv(meta, [{"source": args.source, "quick": args.quick, "data_py_sha256": data_sha,
                      "d_tx": ls.x_train.shape[1], "d_rx": ls.y_train.shape[1], "n_train": len(ls.x_train),
                      "n_test": len(ls.x_test),
                      "acc_tx_own": ls.acc_tx, "acc_rx_own": ls.acc_rx, "seeds": b.seeds,
                      **{f"acc_top_k_indices_only_k{k}": index_only_accuracy(ls, k) for k in (1, 2, 4)},
                      "runtime_s": round(time.time() - t0, 1)}])
    for p in [csv_path, meta, *plot(rows, ls.acc_rx, args.out, args.prefix)]:
        log(f"wrote {p}")


if __name__ == "__main__":
    main()
