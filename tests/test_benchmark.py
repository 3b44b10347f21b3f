"""The benchmark command (``agents.benchmark``) and its statistics (``agents.common.stats``: IQM, stratified
bootstrap): hand-computable cases, coverage on synthetic data, and the command end to end on a tiny budget."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from scipy.stats import trim_mean

import train_agent
from agents import benchmark as B
from agents.callbacks import read_history
from agents.common.stats import iqm, paired_difference, stratified_bootstrap_ci, two_way_bootstrap_ci
from agents.evaluation.runner import PolicyResult
from agents.registry import heuristic_names, policy_names
from vmimo_env import scenario_env_id
from vmimo_env.scenario import TIERS

# the tiny training budget is meant to be tiny
pytestmark = pytest.mark.filterwarnings("ignore:only about .* RL rollouts will run:UserWarning")


# ---------------------------------------------------------------------------- statistics
def test_iqm_hand_computed_cases() -> None:
    assert iqm(np.arange(1, 9)) == 4.5  # 8 values: 2 cut from each end, mean of 3, 4, 5, 6
    assert iqm([1.0, 2.0, 3.0, 100.0]) == 2.5  # the outlier is cut
    assert iqm([7.0, 1.0, 4.0]) == 4.0  # fewer than 4 values: nothing cut, the mean
    np.testing.assert_allclose(iqm(np.arange(24.0).reshape(2, 12), axis=1), [5.5, 17.5])
    x = np.random.default_rng(0).normal(size=37)
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25))  # the rliable / SciPy convention


def test_stratified_bootstrap_hand_case_and_determinism() -> None:
    # 2 runs x 1 task, scores 0 and 1: a replicate's mean is 0, 0.5 or 1 with odds 1:2:1, so the 95% percentile
    # interval is [0, 1] around the point estimate 0.5
    point, lo, hi = stratified_bootstrap_ci(np.array([[0.0], [1.0]]), np.mean, reps=4000)
    assert (point, lo, hi) == (0.5, 0.0, 1.0)
    # one score per task: nothing to resample, the interval collapses onto the estimate
    assert stratified_bootstrap_ci(np.array([[3.0, 1.0, 2.0, 9.0]])) == (2.5, 2.5, 2.5)
    data = np.random.default_rng(1).normal(size=(5, 16))
    assert stratified_bootstrap_ci(data, seed=3) == stratified_bootstrap_ci(data, seed=3)
    assert stratified_bootstrap_ci(data, seed=3) != stratified_bootstrap_ci(data, seed=4)
    # resampling stays within each task (column): a task's scores never move to another
    shifted = data + 100.0 * np.arange(16)
    _, lo, hi = stratified_bootstrap_ci(shifted, np.mean, reps=500)
    assert shifted.mean() - 1.0 < lo < hi < shifted.mean() + 1.0
    with pytest.raises(ValueError):
        stratified_bootstrap_ci(np.zeros((0, 3)))


def test_stratified_bootstrap_ci_covers_the_true_iqm() -> None:
    # scores symmetric about 2.0, so the population IQM is 2.0; 95% intervals should contain it about 95% of the time
    rng = np.random.default_rng(7)
    hits = 0
    trials = 100
    for t in range(trials):
        scores = 2.0 + rng.standard_t(df=5, size=(5, 20))
        _, lo, hi = stratified_bootstrap_ci(scores, reps=500, seed=t)
        hits += lo <= 2.0 <= hi
    assert 0.85 <= hits / trials <= 1.0


# ---------------------------------------------------------------------------- tiers and policies
def test_two_way_bootstrap_hand_cases_and_determinism() -> None:
    const = np.full((4, 6), 2.5)
    assert two_way_bootstrap_ci(const) == (2.5, 2.5, 2.5)
    grid = np.arange(12.0).reshape(3, 4)
    point, lo, hi = two_way_bootstrap_ci(grid, seed=1)
    assert point == grid.mean() and lo < point < hi and grid.min() <= lo and hi <= grid.max()
    assert two_way_bootstrap_ci(grid, seed=1) == (point, lo, hi)
    with pytest.raises(ValueError, match="non-empty"):
        two_way_bootstrap_ci(np.zeros((0, 3)))


def test_two_way_bootstrap_covers_a_mean_with_run_and_task_effects() -> None:
    """Scores = run effect + task effect + noise, five runs and 16 tasks: over repeated draws the interval covers
    the true mean close to 95 % of the time (a little less with so few runs), where the stratified one, blind to
    the task draw, covers far less."""
    rng = np.random.default_rng(0)
    hits_two_way = hits_strat = 0
    trials = 200
    for t in range(trials):
        s = rng.normal(0, 1, (5, 1)) + rng.normal(0, 3, (1, 16)) + rng.normal(0, 1, (5, 16))
        _, lo, hi = two_way_bootstrap_ci(s, reps=400, seed=t)
        hits_two_way += lo <= 0.0 <= hi
        _, lo, hi = stratified_bootstrap_ci(s, np.mean, reps=400, seed=t)
        hits_strat += lo <= 0.0 <= hi
    assert 0.88 <= hits_two_way / trials <= 1.0
    assert hits_strat / trials < 0.75


def test_every_tier_has_one_owner_and_a_registered_env_id() -> None:
    import benchmarks.headroom as H

    assert H.TIERS is TIERS and {"default", "dense", "mobility"} <= set(TIERS)
    for scenario in TIERS.values():
        env_id = scenario_env_id(scenario)
        assert gym.spec(env_id).kwargs == {"scenario": scenario}
    assert scenario_env_id("default") == "VMIMO-v0"
    with pytest.raises(ValueError, match="no registered env id"):
        scenario_env_id("nonexistent")


def test_baselines_come_from_the_registry_and_the_flags() -> None:
    everything = B.baseline_names(B.parse_args([]))
    expected = [n for n in heuristic_names() if n not in (B.PLANNER, B.ORACLE)]
    assert set(expected) <= set(everything) and everything[0] == "random"
    for extra in (B.PLANNER, B.ORACLE):
        assert (extra in everything) == (extra in policy_names())
    picked = B.baseline_names(B.parse_args(["--baselines", "round_robin,FractionalPower", "--no-oracle",
                                            "--no-planner"]))
    assert picked == ["random", "round_robin", "fractional_power"]
    with pytest.raises(ValueError, match="did you mean 'round_robin'"):
        B.baseline_names(B.parse_args(["--baselines", "round_robni"]))


def test_readme_block_is_replaced_between_the_markers_only() -> None:
    text = f"intro\n{B.MARK_START}\nold table\n{B.MARK_END}\noutro\n"
    new = B.replace_block(text, "| a |\n")
    assert new == f"intro\n{B.MARK_START}\n| a |\n{B.MARK_END}\noutro\n"
    assert B.replace_block(new, "| a |\n") == new
    with pytest.raises(ValueError, match="markers"):
        B.replace_block("no markers here", "x")


def test_each_set_of_tiers_writes_its_own_readme_block() -> None:
    assert B.readme_markers(["default"]) == (B.MARK_START, B.MARK_END)
    dense = B.readme_markers(["dense"])
    assert dense == ("<!-- benchmark_dense:start -->", "<!-- benchmark_dense:end -->")
    assert B.readme_markers(["default", "mobility"])[0] == "<!-- benchmark_default_mobility:start -->"
    text = f"{B.MARK_START}\nmain\n{B.MARK_END}\n{dense[0]}\nold\n{dense[1]}\n"
    new = B.replace_block(text, "dense table\n", dense)
    assert new == f"{B.MARK_START}\nmain\n{B.MARK_END}\n{dense[0]}\ndense table\n{dense[1]}\n"
    with pytest.raises(ValueError, match="markers"):  # the dense run never falls back to the main block
        B.replace_block(f"{B.MARK_START}\nmain\n{B.MARK_END}\n", "x", dense)


@pytest.mark.parametrize(("delta", "lo", "hi", "above", "word"), [
    (4.0, 1.5, 6.0, 5, "beats"), (0.92, -2.1, 3.9, 0, "ties"), (-0.5, -1.2, 0.1, 0, "ties"),
    (-7.0, -9.0, -5.0, 0, "falls short of")])
def test_verdict_follows_the_two_way_interval(delta: float, lo: float, hi: float, above: int, word: str) -> None:
    agent = {"algo": "ppo", "delta": delta, "delta_lo": lo, "delta_hi": hi, "delta_ci": 0.01,
             "delta_pct": 100 * delta / 120.0, "seeds": [0, 10_000, 20_000, 30_000, 40_000], "seeds_above": above}
    text = B.verdict(agent, "coverage")
    assert text.startswith(f"PPO **{word}** coverage: Δ {delta:+.2f} [{lo:+.2f}, {hi:+.2f}] over 5 training seeds")
    assert f"({100 * delta / 120.0:+.1f} %)" in text and f"{above} of 5 seeds above it" in text
    assert "validation" not in text  # no training history: nothing to quote
    agent["val_delta_per_seed"] = [-3.0, -2.0, float("nan"), -1.0, -2.0]
    assert "the tested models were Δ -2.00 from coverage (seeds -3.00 to -1.00;" in B.verdict(agent, "coverage")


def test_agent_interval_includes_the_shared_luck_of_the_test_episodes() -> None:
    """Five seeds that agree exactly, on episodes whose differences scatter: the spread over seeds is zero, the
    two-way interval is as wide as the episodes make it, and the verdict does not call a tie a win."""
    rng = np.random.default_rng(3)
    ref = rng.normal(120.0, 9.0, size=16)
    episode_luck = rng.normal(1.0, 6.0, size=16)
    runs = [B.TrainedRun("ppo", i * 10_000, Path("."), Path("m.zip"), "trained") for i in range(5)]
    for r in runs:
        r.result = PolicyResult("ppo", np.arange(16), {"return": ref + episode_luck}, kind="model")
    a = B.agent_summary("ppo", runs, ref, zero=0.0, hundred=120.0)
    assert a["delta_ci"] == pytest.approx(0.0, abs=1e-9)  # seeds alone: no spread at all
    half_paired = paired_difference(ref + episode_luck, ref)[1]
    assert a["delta_lo"] < a["delta"] < a["delta_hi"]
    assert (a["delta_hi"] - a["delta_lo"]) / 2 == pytest.approx(half_paired, rel=0.35)
    assert ("ties" in B.verdict(a, "coverage")) == (a["delta_lo"] <= 0 <= a["delta_hi"])


# ---------------------------------------------------------------------------- the command end to end
TINY = ["--tier", "default", "--timesteps", "512", "--episodes", "2", "--horizon", "20",
        "--baselines", "round_robin,fractional_power", "--no-oracle", "--no-planner",
        "--train-args", "--n-envs 4 --eval-freq 256 --eval-episodes 2 --save-freq 0 "
                        "-params n_steps=32 batch_size=64 n_epochs=1"]


def test_the_default_launcher_runs_train_agent_in_a_subprocess(capfd: pytest.CaptureFixture[str]) -> None:
    assert B.subprocess_launcher(["--help"]) == 0
    assert "Train a Stable-Baselines3 agent on VMIMO" in capfd.readouterr().out


def in_process(argv: list[str]) -> int:
    """Train in this process (the command's default is a subprocess; the same flags, minus the interpreter start)."""
    train_agent.main(argv)
    return 0


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench")
    readme = root / "README.md"
    readme.write_text(f"# Project\n\n## Benchmark\n\n{B.MARK_START}\nnot measured yet\n{B.MARK_END}\n\nMore.\n")
    argv = [*TINY, "--seeds", "2", "--out", str(root / "out"), "--markdown", str(root / "docs" / "benchmark.md"),
            "--readme", str(readme)]
    reports = B.run(argv, launcher=in_process)
    return {"root": root, "argv": argv, "report": reports[0], "readme": readme}


def _episodes(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["policy"], []).append(float(row["return"]))
    return {k: np.array(v) for k, v in out.items()}


def test_benchmark_end_to_end_writes_tables_figures_and_readme(bench: dict[str, Any]) -> None:
    root, rep = bench["root"], bench["report"]
    assert rep.env_id == "VMIMO-v1" and rep.env_kwargs == {"horizon": 20}
    assert rep.seeds == [2_000_000, 2_000_001] and not rep.top_is_planner
    # every figure comes from the episodes on disk: recompute the reference and the agent's statistics from them
    eps = _episodes(root / "out" / "default" / "episodes.csv")
    assert set(eps) == {"random", "round_robin", "fractional_power", "ppo_s0", "ppo_s10000"}
    ref = max(("round_robin", "fractional_power"), key=lambda n: eps[n].mean())
    assert rep.reference == rep.top == ref
    (agent,) = rep.agents
    assert agent["seeds"] == [0, 10_000]
    scores = np.stack([eps["ppo_s0"], eps["ppo_s10000"]])
    np.testing.assert_allclose(agent["per_seed"], scores.mean(axis=1))
    np.testing.assert_allclose(agent["per_seed_delta"], [paired_difference(s, eps[ref])[0] for s in scores])
    assert agent["iqm"] == pytest.approx(iqm(scores)) and agent["iqm_lo"] <= agent["iqm"] <= agent["iqm_hi"]
    span = eps[ref].mean() - eps["random"].mean()
    assert agent["score"] == pytest.approx(np.mean(100 * (scores.mean(axis=1) - eps["random"].mean()) / span))
    rows = {r["policy"]: r for r in rep.rows}
    assert rows[ref]["score"] == pytest.approx(100) and rows["random"]["score"] == pytest.approx(0)
    # the learning curve's difference is the paired one training logged against the same baseline, both with the
    # reference's tuned parameters (as on the test seeds); with its defaults it is another curve
    for run in agent["runs"]:
        hist = read_history(Path(run["run_dir"]) / "eval" / "evaluations.csv")
        logged = {int(h["timesteps"]): h["diff_vs_best_heuristic"] for h in hist}
        trained = B.TrainedRun("ppo", run["seed"], Path(run["run_dir"]), Path(), "x")
        curve = B.learning_curve(trained, ref, "VMIMO-v1", {}, {"tuned": True})
        assert curve is not None and list(curve[0]) == sorted(logged)
        np.testing.assert_allclose(curve[1], [logged[s] for s in curve[0]], atol=1e-9)
        # the validation difference the verdict quotes is the best model's: the highest point of that curve
        assert agent["val_delta_per_seed"][agent["seeds"].index(run["seed"])] == pytest.approx(float(np.max(curve[1])))
        untuned = B.learning_curve(trained, ref, "VMIMO-v1", {})
        assert untuned is not None and not np.allclose(untuned[1], curve[1])
    assert "On the validation seeds the tested models were Δ" in B.verdict(agent, ref)
    # figures, report and the README block
    for key in ("forest", "learning"):
        path = root / "docs" / "figures" / f"benchmark_default_{key}.png"
        assert rep.figures[key] == path and path.stat().st_size > 10_000
    md = (root / "docs" / "benchmark.md").read_text()
    table = B.tables(rep)
    assert f"- {B.verdict(agent, ref)}" in table  # the generated sentence, not a hand-typed one
    assert table in md and "figures/benchmark_default_forest.png" in md and "numpy " in md
    assert B.command_line(bench["argv"]) in md
    readme = bench["readme"].read_text()
    assert readme.startswith("# Project\n\n## Benchmark\n\n" + B.MARK_START)
    assert readme.endswith(B.MARK_END + "\n\nMore.\n")
    assert table in readme and "not measured yet" not in readme and "docs/benchmark.md" in readme
    data = json.loads((root / "out" / "default" / "benchmark.json").read_text())
    assert data["reference"] == ref and data["agents"][0]["per_seed"] == agent["per_seed"]


def test_benchmark_resume_skips_finished_seeds_and_trains_only_the_new_one(bench: dict[str, Any]) -> None:
    root = bench["root"]
    runs = root / "out" / "default" / "runs" / "ppo"
    stamps = {p.name: (p / "final_model.zip").stat().st_mtime_ns for p in runs.iterdir()}
    launched: list[list[str]] = []

    def launcher(argv: list[str]) -> int:
        launched.append(argv)
        return in_process(argv)

    (rep,) = B.run([*TINY, "--seeds", "3", "--out", str(root / "out"), "--figures", str(root / "fig2"),
                    "--markdown", str(root / "docs2" / "benchmark.md")], launcher=launcher)
    assert len(launched) == 1 and launched[0][launched[0].index("--seed") + 1] == "20000"
    assert [r["status"] for r in rep.agents[0]["runs"]] == ["reused", "reused", "trained"]
    assert {p: (runs / p / "final_model.zip").stat().st_mtime_ns for p in stamps} == stamps
    md = (root / "docs2" / "benchmark.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("Training: "))
    assert line.count("in an earlier run (reused)") == 2 and line.count("(trained)") == 1
    # the same test results for the reused seeds as in the first run (deterministic evaluation)
    assert rep.agents[0]["per_seed"][:2] == bench["report"].agents[0]["per_seed"]
    # another budget for a finished run is refused rather than silently mixed in
    with pytest.raises(ValueError, match="--force"):
        B.run([*TINY[:2], "--timesteps", "1024", *TINY[4:], "--seeds", "1", "--out", str(root / "out")],
              launcher=launcher)


def test_a_finished_run_of_another_recipe_is_not_reused(bench: dict[str, Any], tmp_path: Path) -> None:
    """A run trained before the hyperparameter files changed is refused (retrain with --force), not mixed in."""
    import shutil

    import yaml

    from agents.common.hyperparams import changed_hyperparams

    out = tmp_path / "out"
    shutil.copytree(bench["root"] / "out", out)
    config_path = out / "default" / "runs" / "ppo" / "ppo_s0" / "config.yml"
    config = yaml.safe_load(config_path.read_text())
    assert changed_hyperparams(config) == []  # the run is the files' recipe (with its --hyperparams overrides)
    config["hyperparams"]["ent_coef"] = 0.123
    config["hyperparams"]["policy_kwargs"] = {"net_arch": [7]}
    config_path.write_text(yaml.safe_dump(config))
    assert changed_hyperparams(config) == ["ent_coef", "policy_kwargs"]
    launched: list[list[str]] = []
    with pytest.raises(ValueError, match=r"other hyperparameters .*\(ent_coef, policy_kwargs\).*--force"):
        B.run([*TINY, "--seeds", "1", "--out", str(out)], launcher=lambda argv: launched.append(argv) or 0)
    assert launched == []


def test_run_status_and_an_interrupted_run_is_resumed(tmp_path: Path) -> None:
    run_dir = tmp_path / "ppo" / "ppo_s0"
    assert B.run_status(run_dir) == "absent"
    run_dir.mkdir(parents=True)
    assert B.run_status(run_dir) == "empty"
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "ckpt_000000000256.zip").write_bytes(b"")
    assert B.run_status(run_dir) == "partial"
    (run_dir / "final_model.zip").write_bytes(b"")
    (run_dir / "summary.yml").write_text("interrupted: true\n")  # Ctrl-C also writes a final model: not finished
    assert B.run_status(run_dir) == "partial"
    launched: list[list[str]] = []

    def failing(argv: list[str]) -> int:
        launched.append(argv)
        return 1

    args = B.parse_args(["--timesteps", "512", "--train-args", "--n-envs 4"])
    with pytest.raises(RuntimeError, match="exit code 1"):
        B.train_seed("ppo", 0, "VMIMO-v1", {"horizon": 20}, tmp_path, "fractional_power", args, failing)
    (argv,) = launched
    assert argv[argv.index("--resume") + 1] == str(run_dir) and argv[-2:] == ["--n-envs", "4"]
    assert argv[argv.index("--env-kwargs") + 1] == "horizon:20" and argv[argv.index("--baselines") + 1] == \
        "fractional_power"
    (run_dir / "summary.yml").write_text("interrupted: false\n")
    assert B.run_status(run_dir) == "finished"


def test_baselines_only_benchmark_has_no_learning_panel(tmp_path: Path) -> None:
    (rep,) = B.run(["--tier", "default", "--algos", "--episodes", "1", "--horizon", "10", "--baselines", "round_robin",
                    "--no-oracle", "--no-planner", "--out", str(tmp_path)])
    assert rep.reference == "round_robin" and not rep.agents and set(rep.figures) == {"forest"}
    assert {r["policy"] for r in rep.rows} == {"random", "round_robin"}
    assert "Learned agents" not in B.tables(rep)


def test_recorded_command_writes_paths_inside_the_working_directory_relative(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inside = str(tmp_path / "runs" / "bench")
    outside = str(tmp_path.parent / "elsewhere")
    line = B.command_line(["--tier", "default", "--out", inside, "--figures", outside])
    assert line == f"python -m agents.benchmark --tier default --out runs/bench --figures {outside}"


def test_baselines_are_stored_and_read_back_under_their_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run with the same key reads every baseline back (the same episodes, no evaluation); a changed key
    (here: other seeds, or a stored key that no longer matches) or --fresh-baselines runs them again."""
    argv = ["--tier", "default", "--algos", "--episodes", "2", "--horizon", "10", "--baselines", "round_robin",
            "--no-oracle", "--no-planner", "--out", str(tmp_path)]
    (first,) = B.run(argv)
    folder = tmp_path / "default" / "baselines"
    assert sorted(p.name for p in folder.iterdir()) == ["random.json", "random.npz", "round_robin.json",
                                                       "round_robin.npz"]
    ran: list[str] = []
    real = B.run_policy

    def counting(spec: Any, *a: Any, **kw: Any) -> PolicyResult:
        ran.append(str(spec))
        return real(spec, *a, **kw)

    monkeypatch.setattr(B, "run_policy", counting)
    (again,) = B.run(argv)
    assert ran == [] and again.rows == first.rows
    B.run([*argv, "--fresh-baselines"])
    assert sorted(ran) == ["random", "round_robin"]
    ran.clear()
    meta = json.loads((folder / "round_robin.json").read_text())
    (folder / "round_robin.json").write_text(json.dumps({**meta, "key": "0" * 64}))
    B.run(argv)
    assert ran == ["round_robin"]
    ran.clear()
    B.run([*argv[:4], "3", *argv[5:]])  # three episodes: another key for both
    assert sorted(ran) == ["random", "round_robin"]


def test_source_digest_follows_the_bytes_of_the_listed_sources(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "one.py").write_text("y = 2\n")
    base = B.source_digest(tmp_path, ("pkg", "one.py"))
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert B.source_digest(tmp_path, ("pkg", "one.py")) == base  # compiled files do not count
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert B.source_digest(tmp_path, ("pkg", "one.py")) != base
    assert B.source_digest() == B.source_digest()  # the project's own sources: stable between calls
