"""agents.evaluate: the comparison table, paired differences, CSV files and plots on held-out seeds."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import evaluate
from agents.common.stats import mean_ci, paired_difference

torch.set_num_threads(1)


def test_mean_ci_and_paired_difference() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, 400)
    m, h = mean_ci(x)
    assert abs(m - x.mean()) < 1e-12 and 0.15 < h < 0.25  # 1.96 * 2 / 20 = 0.196
    noise = rng.normal(0.0, 5.0, 400)
    d, dh, _ = paired_difference(x + noise + 0.1, x + noise)
    assert abs(d - 0.1) < 1e-9 and dh < 1e-9  # common noise cancels in the pairs


def test_cli_writes_table_csv_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    results = evaluate.main(["random", "round_robin", "max_weight", "--env", "VMIMO-Small-v0",
                             "--env-kwargs", "horizon:20", "-n", "4", "--out", str(out)])
    text = capsys.readouterr().out
    for name in ("random", "round_robin", "max_weight", "accuracy %", "energy/scene mJ", "expired %", "Δ return"):
        assert name in text
    assert set(results) == {"random", "round_robin", "max_weight"}
    with open(out / "summary.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["policy"] for r in rows} == set(results)
    ref = rows[0]["reference"]
    assert ref in results and results[ref].kind == "heuristic"
    for row in rows:
        assert float(row["return_ci95"]) >= 0 and "diff_vs_reference" in row
    with open(out / "episodes.csv", encoding="utf-8") as fh:
        episodes = list(csv.DictReader(fh))
    assert len(episodes) == 3 * 4
    assert {int(r["seed"]) for r in episodes} == set(range(evaluate.TEST_SEED_BASE, evaluate.TEST_SEED_BASE + 4))
    for name in ("returns.png", "accuracy_energy.png", "allocation.png"):
        assert (out / name).stat().st_size > 1000


def test_results_are_reproducible_and_paired(tmp_path: Path) -> None:
    a = evaluate.evaluate_policies(["max_weight", "greedy"], "VMIMO-Small-v0", {"horizon": 15}, n_episodes=3)
    b = evaluate.evaluate_policies(["greedy"], "VMIMO-Small-v0", {"horizon": 15}, n_episodes=3)
    np.testing.assert_array_equal(a["greedy"].episodes["return"], b["greedy"].episodes["return"])
    rows = evaluate.comparison_rows(a, reference="greedy")
    mw = next(r for r in rows if r["policy"] == "max_weight")
    diff = a["max_weight"].episodes["return"] - a["greedy"].episodes["return"]
    assert mw["diff_vs_reference"] == pytest.approx(diff.mean())
    # per-device allocation statistics for the heatmap: (episodes, K)
    assert a["greedy"].per_device["tx_frac"].shape == (3, 4)


def test_non_consecutive_seeds_match_single_env_runs() -> None:
    seeds = [7, 3, 11]
    batch = evaluate.run_policy("max_weight", "VMIMO-Small-v0", {"horizon": 10}, seeds)
    for j, s in enumerate(seeds):
        one = evaluate.run_policy("max_weight", "VMIMO-Small-v0", {"horizon": 10}, [s])
        assert one.episodes["return"][0] == pytest.approx(batch.episodes["return"][j])


def test_trained_model_is_evaluated_through_its_checkpoint(tmp_path: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.checkpoint import save_checkpoint
    from agents.common.envs import make_train_env

    venv = VecNormalize(make_train_env("VMIMO-Small-v0", 2, "batched", 0, {}, "multidiscrete")[0])
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=1)
    model.learn(64)
    path = save_checkpoint(tmp_path / "m.zip", model, {"algo": "ppo", "env_id": "VMIMO-Small-v0",
                                                       "action_view": "multidiscrete"}, venv)
    res = evaluate.evaluate_policies([str(path), "random"], "VMIMO-Small-v0", {"horizon": 10}, n_episodes=2)
    assert res[next(iter(res))].kind == "model"
    assert all(np.isfinite(r.episodes["return"]).all() for r in res.values())


def test_a_user_policy_class_is_evaluated_by_module_and_class_name(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_vmimo_policy.py").write_text(
        "import numpy as np\n"
        "from agents.heuristics import Heuristic\n\n"
        "class AlwaysIdle(Heuristic):\n"
        "    name = 'always_idle'\n\n"
        "    def act_batch(self, info):\n"
        "        z = np.zeros((self.N, self.K))\n"
        "        return {'group': z, 'power': z, 'compression': z, 'bandwidth': np.ones((self.N, self.G))}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    results = evaluate.main(["my_vmimo_policy:AlwaysIdle", "round_robin", "--env", "VMIMO-Small-v0",
                             "--env-kwargs", "horizon:10", "-n", "3", "--out", str(tmp_path / "eval"), "--no-plots"])
    idle = results["my_vmimo_policy:AlwaysIdle"]
    assert idle.kind == "user"
    assert (idle.per_device["tx_frac"] == 0).all() and (idle.episodes["energy_j"] == 0).all()
    assert results["round_robin"].per_device["tx_frac"].mean() > 0


def test_registry_is_its_own_module_and_stays_importable_from_policies() -> None:
    import agents.policies as policies
    import agents.registry as registry

    assert policies.make_policy is registry.make_policy and policies.register_policy is registry.register_policy
    assert policies.Policy is registry.Policy
    assert "max_weight" in registry.heuristic_names() and registry.canonical_name("MaxWeight") == "max_weight"
    assert "max_weight" in registry.suggest("max_wieght", registry.policy_names())


# ---------------------------------------------------------------------------------------------- command-line errors
def _checkpoint(tmp_path: Path, env_kwargs: dict) -> Path:
    """An (untrained) PPO checkpoint of VMIMO-Small-v0 with ``env_kwargs``, as train_agent.py writes them."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.checkpoint import save_checkpoint
    from agents.common.envs import make_train_env

    venv = VecNormalize(make_train_env("VMIMO-Small-v0", 2, "batched", 0, env_kwargs, "multidiscrete")[0])
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0)
    run = tmp_path / "run"
    return save_checkpoint(run / "best_model.zip", model, {"algo": "ppo", "env_id": "VMIMO-Small-v0",
                                                           "env_kwargs": env_kwargs,
                                                           "action_view": "multidiscrete"}, venv)


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        evaluate.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_model_is_evaluated_on_its_own_scenario_and_a_mismatch_is_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _checkpoint(tmp_path, {"num_devices": 3})
    out = ["-n", "2", "--out", str(tmp_path / "eval"), "--no-plots"]
    # no --env / --env-kwargs: the checkpoint's scenario (VMIMO-Small-v0 with 3 devices), heuristics on it too
    res = evaluate.main([str(path), "round_robin", *out])
    assert res["round_robin"].per_device["tx_frac"].shape == (2, 3)
    assert np.isfinite(res[next(iter(res))].episodes["return"]).all()
    err = _fails([str(path), "--env-kwargs", "num_devices:5", *out], capsys)
    assert "num_devices=5" in err and "trained" in err
    err = _fails([str(path), "--env", "VMIMO-v0", *out], capsys)
    assert "VMIMO-Small-v0" in err and "--env VMIMO-v0" in err
    # a run folder is accepted (its best_model.zip), like --resume accepts one
    res = evaluate.main([str(path.parent), *out])
    assert len(res) == 1 and next(iter(res.values())).kind == "model"


def test_user_errors_are_one_line_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _checkpoint(tmp_path, {})
    out = ["--env", "VMIMO-Small-v0", "--out", str(tmp_path / "eval"), "--no-plots"]
    err = _fails([f"sac:{path}", *out], capsys)
    assert "ppo model, not sac" in err
    for flag in ("-n", "--batch-size"):
        err = _fails(["random", flag, "0", *out], capsys)
        assert flag.lstrip("-").split("-")[0] in err and ">= 1" in err
    err = _fails(["max_wieght", "round_robin", "rondrobin", *out], capsys)
    assert "'max_wieght' (did you mean 'max_weight'?)" in err and "'rondrobin'" in err
    assert "Evaluating" not in capsys.readouterr().out  # validated before anything ran
    err = _fails(["random", "--reference", "greedy", *out], capsys)
    assert "--reference" in err
    err = _fails(["no_such_module_xyz:Policy", *out], capsys)
    assert "no_such_module_xyz" in err


def test_the_command_prints_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    bad = subprocess.run([sys.executable, "-m", "agents.evaluate", "maxweigth", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=root)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "did you mean 'max_weight'" in bad.stderr, bad.stderr



def test_episode_sums_include_the_scenes_closed_with_every_modality() -> None:
    """``closed_full`` is summed per episode like every other info count, and ``full_cover_frac`` divides it by
    the arrived scenes: rebuilt here by stepping the same policy on the same seeds and summing the step infos."""
    from agents.evaluation.runner import make_eval_vector_env, reset_with_seeds
    from agents.registry import make_policy

    seeds = [5, 9]
    res = evaluate.run_policy("coverage", "VMIMO-v1", {"horizon": 30}, seeds)
    env = make_eval_vector_env("VMIMO-v1", {"horizon": 30}, len(seeds))
    policy = make_policy("coverage", env)
    obs, info = reset_with_seeds(env, np.asarray(seeds))
    policy.reset(seeds[0])
    full, arrived = np.zeros(len(seeds)), np.zeros(len(seeds))
    for _ in range(30):
        obs, _, _, _, info = env.step(policy.act(obs, info))
        full += info["closed_full"]
        arrived += info["arrived"]
    np.testing.assert_array_equal(res.episodes["closed_full"], full)
    assert (full > 0).all() and (full <= arrived).all()
    np.testing.assert_allclose(res.episodes["full_cover_frac"], full / arrived)
    rnd = evaluate.run_policy("random", "VMIMO-v1", {"horizon": 30}, seeds)
    # the coverage scheduler exists to close scenes whole: it must do so more often than random actions
    assert res.episodes["full_cover_frac"].mean() > rnd.episodes["full_cover_frac"].mean()


def test_readme_block_holds_the_measured_table_and_its_command(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- v0_table:start -->\nold\n<!-- v0_table:end -->\noutro\n", encoding="utf-8")
    argv = ["random", "round_robin", "--env", "VMIMO-Small-v0", "--env-kwargs", "horizon:20", "-n", "4",
            "--reference", "random", "--out", str(tmp_path / "eval"), "--no-plots", "--readme", str(readme),
            "--block", "v0_table"]
    results = evaluate.main(argv)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n<!-- v0_table:start -->\n") and text.endswith("<!-- v0_table:end -->\noutro\n")
    assert "\nold\n" not in text and "| policy | return |" in text and "Δ return vs random" in text
    rr = results["round_robin"].episodes["return"]
    d, h, _ = paired_difference(rr, results["random"].episodes["return"])
    m, mh = mean_ci(rr)
    row = next(line for line in text.splitlines() if line.startswith("| `round_robin`"))
    assert f"{m:.2f} ± {mh:.2f}" in row and row.endswith(f"| {d:+.2f} ± {h:.2f} |")
    assert "| `random` |" in text and "reference |" in text
    assert "python -m agents.evaluate random round_robin --env VMIMO-Small-v0" in text and "numpy " in text
    assert "seeds 2000000..2000003" in text


def test_readme_without_the_markers_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["random", "--env", "VMIMO-Small-v0", "--env-kwargs", "horizon:10", "-n", "2", "--no-plots",
                       "--out", str(tmp_path / "eval"), "--readme", str(readme)])
    assert exc.value.code == 2 and "<!-- evaluate:start -->" in capsys.readouterr().err
    assert readme.read_text(encoding="utf-8") == "no markers\n"
