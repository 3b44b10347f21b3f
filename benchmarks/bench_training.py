"""SB3 PPO throughput on VMIMO-v0: env steps per second collected, batched VecEnv vs DummyVecEnv, and end to end.

    python benchmarks/bench_training.py [--quick] [--markdown] [--readme README.md] [--end-to-end STEPS]

Rows: ``VMIMOSB3VecEnv`` (one numpy batch, the ``--vec-env batched`` default of ``train_agent.py``) at 64 and 256
environments, and SB3's ``DummyVecEnv`` of ``gym.make("VMIMO-v0")`` environments (Monitor included, as
``make_vec_env`` builds them) at 64. Each row times PPO's ``collect_rollouts`` (policy forward + env step +
buffer writes; the default ``MlpPolicy`` network, 64×64, with the vectorised MultiCategorical that
``train_agent.py`` uses; one row with SB3's own for comparison; one row with the per-device ``DevicePolicy`` of the
shipped PPO defaults, 32-wide shared actor + 128×128 critic) and, separately, full ``learn`` iterations
(collection + 4 epochs of minibatch gradient steps on ~8k-sample rollouts). torch runs on ``train_agent.py``'s
default thread count (``TORCH_THREADS``), and the shipped policy's row is repeated on one thread for the ratio;
timings after a warm-up rollout with ``time.perf_counter``. The machine is shared and noisy: compare rows of the
same run.

End to end: ``python train_agent.py --algo ppo -n STEPS`` with every other setting shipped (warm start, per-device
actor, held-out evaluations, checkpoints; W&B disabled), as a subprocess: its steps per second of training (what
the run's summary prints) and the whole command's env steps per wall-clock second (start-up, warm start and
evaluations included), at the default thread count and on one thread. ``--readme FILE`` replaces the block
between ``<!-- bench_training:start -->`` and ``<!-- bench_training:end -->`` with the tables, the command, the
machine and the package versions.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

PROGRAM = "python benchmarks/bench_training.py"
MARK_START, MARK_END = "<!-- bench_training:start -->", "<!-- bench_training:end -->"
ROOT = Path(__file__).resolve().parents[1]


def measure(vec_env: str, n_envs: int, rollouts: int, policy_name: str, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import CallbackList

    from agents.common.device_policy import DevicePolicy, device_policy_kwargs
    from agents.common.distributions import FastMultiDiscretePolicy
    from agents.common.envs import make_train_env

    venv, kind = make_train_env("VMIMO-v0", n_envs, vec_env, 0, {}, "multidiscrete")
    n_steps = max(16, 8192 // n_envs)
    policies = {"vectorised": FastMultiDiscretePolicy, "SB3 default": "MlpPolicy", "per-device": DevicePolicy}
    policy = policies[policy_name]
    kwargs = ({"policy_kwargs": {**device_policy_kwargs(venv), "device_hidden": 32, "net_arch": [128, 128]}}
              if policy is DevicePolicy else {})
    model = PPO(policy, venv, n_steps=n_steps, batch_size=min(2048, n_steps * n_envs), n_epochs=4, device="cpu",
                verbose=0, **kwargs)
    model.learn(n_steps * n_envs)  # warm-up: JIT caches, first reset, allocator
    callback = CallbackList([])
    callback.init_callback(model)
    model._last_obs = venv.reset()
    t0 = time.perf_counter()
    for _ in range(rollouts):
        model.collect_rollouts(venv, callback, model.rollout_buffer, n_steps)
    collect = rollouts * n_steps * n_envs / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    model.learn(rollouts * n_steps * n_envs, reset_num_timesteps=False)
    learn = rollouts * n_steps * n_envs / (time.perf_counter() - t0)
    venv.close()
    return {"collect": collect, "learn": learn, "kind": kind}


def end_to_end(steps: int, threads: int) -> dict[str, float]:
    """``train_agent.py --algo ppo -n steps --torch-threads threads`` (shipped defaults otherwise) in a subprocess:
    the training steps/s its summary reports, and env steps per wall-clock second of the whole command."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "train_agent.py"), "--algo", "ppo", "-n", str(steps), "--log-folder", tmp,
               "--wandb-mode", "disabled", "--no-progress", "--torch-threads", str(threads)]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        wall = time.perf_counter() - t0
    m = re.search(r"Training time\s+\d+ s for ([\d,]+) steps \(([\d,]+) steps/s\)", out)
    if m is None:
        raise RuntimeError(f"no 'Training time' line in the output of {' '.join(cmd)}:\n{out[-2000:]}")
    return {"steps": steps, "threads": threads, "train_sps": float(m.group(2).replace(",", "")), "wall_s": wall,
            "wall_sps": steps / wall}


def markdown(results: list[tuple[str, int, str, int, float, float]], e2e: list[dict[str, float]]) -> str:
    base = next(r for r in results if r[0].startswith("Dummy"))[4]
    lines = ["| VecEnv | n_envs | policy | torch threads | collected env-steps/s | with training, env-steps/s | "
             "collect vs Dummy |", "|---|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {n} | {dist} | {th} | {c:,.0f} | {t:,.0f} | {c / base:.1f}× |"
              for name, n, dist, th, c, t in results]
    if e2e:
        ref = e2e[-1]["train_sps"]
        lines += ["", "| end to end (`python train_agent.py --algo ppo`, shipped defaults) | torch threads | env steps "
                  "| training env-steps/s | vs 1 thread | wall time | env steps per wall second |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| `-n {r['steps']:,} --torch-threads {r['threads']}` | {r['threads']} | {r['steps']:,} | "
                  f"{r['train_sps']:,.0f} | {r['train_sps'] / ref:.2f}× | {r['wall_s']:.0f} s | {r['wall_sps']:,.0f} |"
                  for r in e2e]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rollouts per row, a short end-to-end run")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--readme", default=None, help="replace the bench_training block of this file")
    parser.add_argument("--end-to-end", type=int, default=None, metavar="STEPS",
                        help="env steps of the end-to-end train_agent.py run (default 1,000,000; 200,000 with "
                             "--quick; 0 skips it)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    readme = Path(args.readme) if args.readme else None
    if readme is not None:  # fail before minutes of timing, not after
        from agents.common.provenance import replace_block

        replace_block(readme.read_text(encoding="utf-8"), "", MARK_START, MARK_END)
    from train_agent import TORCH_THREADS

    torch.distributions.Distribution.set_default_validate_args(False)
    import vmimo_env  # noqa: F401

    rollouts = 2 if args.quick else 5
    rows = [("batched", 64, "vectorised", TORCH_THREADS), ("batched", 256, "vectorised", TORCH_THREADS),
            ("batched", 256, "SB3 default", TORCH_THREADS), ("batched", 256, "per-device", TORCH_THREADS),
            ("batched", 256, "per-device", 1), ("dummy", 64, "vectorised", TORCH_THREADS)]
    labels = {"vectorised": "MLP 64×64, vectorised MultiCategorical",
              "SB3 default": "MLP 64×64, SB3's MultiCategorical",
              "per-device": "per-device actor (shipped PPO default)"}
    results = []
    for vec_env, n, dist, threads in rows:
        r = measure(vec_env, n, rollouts, dist, threads)
        results.append((f"{'VMIMOSB3VecEnv' if vec_env == 'batched' else 'DummyVecEnv(gym.make)'}", n, labels[dist],
                        threads, r["collect"], r["learn"]))
        print(f"{results[-1][0]:<24s} n_envs={n:<4d} {dist:<12s} threads {threads} collect {r['collect']:>9,.0f} "
              f"steps/s   learn {r['learn']:>9,.0f} steps/s", flush=True)
    steps = args.end_to_end if args.end_to_end is not None else (200_000 if args.quick else 1_000_000)
    e2e = []
    for threads in dict.fromkeys((TORCH_THREADS, 1)) if steps > 0 else ():
        e2e.append(end_to_end(steps, threads))
        print(f"end to end: train_agent.py --algo ppo -n {steps:,} --torch-threads {threads}: training "
              f"{e2e[-1]['train_sps']:,.0f} steps/s, {e2e[-1]['wall_s']:.0f} s wall, {e2e[-1]['wall_sps']:,.0f} env "
              "steps per wall second", flush=True)
    table = markdown(results, e2e)
    if args.markdown:
        print("\n" + table)
    if readme is not None:
        from agents.common import provenance

        block = (table + "\nMeasured by `" + provenance.command_line(PROGRAM, argv) + "`. "
                 + provenance.machine_line() + "\n")
        text = readme.read_text(encoding="utf-8")
        readme.write_text(provenance.replace_block(text, block, MARK_START, MARK_END), encoding="utf-8")
        print(f"wrote the bench_training block of {readme}")


if __name__ == "__main__":
    main()
