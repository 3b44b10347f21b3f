"""SB3 PPO throughput on VMIMO-v0: env steps per second collected, batched VecEnv vs DummyVecEnv.

    python benchmarks/bench_training.py [--quick] [--markdown]

Rows: ``VMIMOSB3VecEnv`` (one numpy batch, the ``--vec-env batched`` default of ``train_agent.py``) at 64 and 256
environments, and SB3's ``DummyVecEnv`` of ``gym.make("VMIMO-v0")`` environments (Monitor included, as
``make_vec_env`` builds them) at 64. Each row times PPO's ``collect_rollouts`` (policy forward + env step +
buffer writes; the default ``MlpPolicy`` network, 64×64, with the vectorised MultiCategorical that
``train_agent.py`` uses; one row with SB3's own for comparison; one row with the per-device ``DevicePolicy`` of the
shipped PPO defaults, 32-wide shared actor + 128×128 critic) and, separately, full ``learn`` iterations
(collection + 4 epochs of minibatch gradient steps on ~8k-sample rollouts). One torch thread; timings after a
warm-up rollout with ``time.perf_counter``. The machine is shared and noisy: compare rows of the same run.
"""

from __future__ import annotations

import argparse
import time

import torch


def measure(vec_env: str, n_envs: int, rollouts: int, policy_name: str) -> dict[str, float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rollouts per row")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.distributions.Distribution.set_default_validate_args(False)
    import vmimo_env  # noqa: F401

    rollouts = 2 if args.quick else 5
    rows = [("batched", 64, "vectorised"), ("batched", 256, "vectorised"), ("batched", 256, "SB3 default"),
            ("batched", 256, "per-device"), ("dummy", 64, "vectorised")]
    results = []
    for vec_env, n, dist in rows:
        r = measure(vec_env, n, rollouts, dist)
        results.append((f"{'VMIMOSB3VecEnv' if vec_env == 'batched' else 'DummyVecEnv(gym.make)'}", n, dist,
                        r["collect"], r["learn"]))
        print(f"{results[-1][0]:<24s} n_envs={n:<4d} {dist:<12s} collect {r['collect']:>9,.0f} steps/s   "
              f"learn {r['learn']:>9,.0f} steps/s", flush=True)
    if args.markdown:
        base = next(r for r in results if r[0].startswith("Dummy"))[3]
        print("\n| VecEnv | n_envs | policy | collected env-steps/s | with training, env-steps/s | "
              "collect vs Dummy |")
        print("|---|---|---|---|---|---|")
        for name, n, dist, c, l in results:
            print(f"| {name} | {n} | {dist} | {c:,.0f} | {l:,.0f} | {c / base:.1f}x |")


if __name__ == "__main__":
    main()
