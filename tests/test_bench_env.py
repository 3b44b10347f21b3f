"""The environment benchmark (``benchmarks/bench_env.py``) at tiny step counts: its rows, their CartPole ratios,
the construction probe and the README writer (on a temporary file)."""

from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path

import gymnasium as gym
import pytest

import vmimo_env  # noqa: F401  (registers the ids)
from benchmarks import bench_env as BE
from vmimo_env.core import auto_threads

TINY = BE.Budget(single_steps=40, vector_env_steps=2048, warmup_calls=2, repeats=2)
EXPECTED = [  # (group, what, N) in table order
    (BE.SINGLE, BE.CARTPOLE_SINGLE, 1),
    *[(BE.SINGLE, f"{env_id}, gym.make", 1)
      for env_id in ("VMIMO-v0", "VMIMO-MultiDiscrete-v0", "VMIMO-v1", "VMIMO-MultiDiscrete-v1")],
    (BE.SINGLE, "mobile-small-central-v0 (mobile-env), gym.make", 1),
    (BE.VECTOR, BE.CARTPOLE_VECTOR, 1024),
    *[row for v in ("v0", "v1")
      for row in [(BE.VECTOR, BE.vector_label(f"VMIMO-{v} (dict)", n), n) for n in (16, 256, 1024)]
      + ([(BE.VECTOR, f"VMIMOVectorEnv, VMIMO-{v} (dict), N=1024, 1 thread", 1024)] if auto_threads(1024) > 1 else [])
      + [(BE.VECTOR, BE.vector_label(f"VMIMO-MultiDiscrete-{v}", 1024), 1024)]],
    (BE.VECTOR, "VMIMOSB3VecEnv (SB3 adapter, VMIMO-v0 MultiDiscrete), N=256, "
                + BE.threads_text(auto_threads(256)), 256),
]


@pytest.fixture(scope="module")
def rows() -> list[BE.Row]:
    return BE.measure_steps(TINY)


def by_name(rows: list[BE.Row]) -> dict[str, BE.Row]:
    return {r.what: r for r in rows}


def test_every_row_is_there_in_its_group_with_its_batch_size(rows: list[BE.Row]) -> None:
    assert [(r.group, r.what, r.num_envs) for r in rows] == EXPECTED  # each reference opens its group


def test_ratios_are_to_the_cartpole_counterpart_timed_beside_each_row(rows: list[BE.Row]) -> None:
    named = by_name(rows)
    ref = {BE.SINGLE: named[BE.CARTPOLE_SINGLE].env_steps_per_s, BE.VECTOR: named[BE.CARTPOLE_VECTOR].env_steps_per_s}
    assert named[BE.CARTPOLE_SINGLE].ratio == named[BE.CARTPOLE_VECTOR].ratio == 1.0
    for r in rows:
        if r.env_steps_per_s is None or r.what in (BE.CARTPOLE_SINGLE, BE.CARTPOLE_VECTOR):
            continue
        assert math.isfinite(r.env_steps_per_s) and r.env_steps_per_s > 0
        # each row carries the reference timed in alternation with it; the reference row holds the best of them
        assert r.ref_env_steps_per_s is not None and 0 < r.ref_env_steps_per_s <= ref[r.group]
        assert r.ratio == pytest.approx(r.env_steps_per_s / r.ref_env_steps_per_s, rel=1e-12)
    for group in (BE.SINGLE, BE.VECTOR):
        assert ref[group] == max(r.ref_env_steps_per_s for r in rows
                                 if r.group == group and r.ref_env_steps_per_s is not None)
    # tolerant directions a miscounted row would break: CartPole steps are far cheaper than VMIMO's, and a batch of
    # 1024 environments delivers more env steps per second than one environment stepped alone
    for version in ("v0", "v1"):
        single = named[f"VMIMO-{version}, gym.make"]
        batch = named[BE.vector_label(f"VMIMO-{version} (dict)", 1024)]
        assert single.ratio < 0.5 and batch.ratio < 0.5
        assert batch.env_steps_per_s > 2 * single.env_steps_per_s


def test_mobile_env_row_is_measured_only_when_installed(rows: list[BE.Row]) -> None:
    row = by_name(rows)["mobile-small-central-v0 (mobile-env), gym.make"]
    if importlib.util.find_spec("mobile_env") is None:
        assert (row.env_steps_per_s, row.ratio, row.note) == (None, None, "not installed")
    else:
        assert row.env_steps_per_s > 0 and row.ratio is not None


def test_with_ratios_needs_a_measured_reference_per_group() -> None:
    rows = [BE.Row(BE.SINGLE, BE.CARTPOLE_SINGLE, 1, 200.0), BE.Row(BE.SINGLE, "x", 1, 50.0),
            BE.Row(BE.SINGLE, "absent", 1, None, note="not installed"),
            BE.Row(BE.VECTOR, BE.CARTPOLE_VECTOR, 1024, 1000.0), BE.Row(BE.VECTOR, "y", 16, 250.0)]
    out = BE.with_ratios(rows)
    assert [r.ratio for r in out] == [1.0, 0.25, None, 1.0, 0.25]
    paired = BE.with_ratios([rows[0], BE.Row(BE.SINGLE, "x", 1, 50.0, ref_env_steps_per_s=100.0), *rows[3:]])
    assert paired[1].ratio == 0.5  # the reference timed beside the row wins over the group's
    with pytest.raises(ValueError, match="reference"):
        BE.with_ratios(rows[1:])


def test_construction_probe_runs_in_a_fresh_process() -> None:
    (ship,) = BE.measure_construction(("VMIMO-v0",))
    assert ship.env_id == "VMIMO-v0"
    # the first make loads the model and encodes the pool, the second finds them cached
    assert 0 < ship.second_make_s < ship.first_make_s
    assert ship.pickled_bytes == len(pickle.dumps(gym.make("VMIMO-v0").unwrapped))
    assert ship.pickled_bytes < 1_000_000


def test_readme_writer_replaces_only_the_block(rows: list[BE.Row], tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before, after = "# Project\n\n### Environment steps\n\nintro\n\n", "\n\n### Physics slot\n\nmore\n"
    readme.write_text(f"{before}{BE.MARK_START}\n| old | table |\n{BE.MARK_END}{after}", encoding="utf-8")
    ship = [BE.ShipRow("VMIMO-v0", 2.5, 0.001, 485_000)]
    block = BE.readme_block(rows, ship, ["--readme", str(readme)], TINY, 1.5)
    BE.write_readme(readme, block)
    text = readme.read_text(encoding="utf-8")
    assert text == f"{before}{BE.MARK_START}\n{block}{BE.MARK_END}{after}"
    assert "old | table" not in text
    for r in rows:
        assert f"| {r.what} | {r.num_envs} |" in block
    assert "| VMIMO-v0 | 2.50 | 1.0 | 0.48 |" in block
    assert f"Measured by `python benchmarks/bench_env.py --readme {readme}`" in block
    assert "Machine:" in block and "gymnasium" in block and "Best of 2 timed repeats" in block
    BE.write_readme(readme, block)  # rewriting is idempotent
    assert readme.read_text(encoding="utf-8") == text


def test_readme_without_markers_fails_before_any_timing(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bench_env:start"):
        BE.main(["--quick", "--readme", str(readme)])
    assert readme.read_text(encoding="utf-8") == "no markers here\n"


def test_stage_step_is_the_envs_own_step() -> None:
    """The breakdown times the stages ``VMIMOEnv.step`` runs, so stepping through them must be the same step:
    same observations, rewards, episode ends and infos as ``env.step`` on a twin, over an episode end."""
    import numpy as np

    twins = [gym.make(BE.BREAKDOWN_ID, horizon=30, max_episode_steps=30).unwrapped for _ in range(2)]
    for env in twins:
        env.reset(seed=4)
    twins[0].action_space.seed(4)
    acc = [0] * (len(BE.STAGES) + 1)
    for _ in range(45):
        action = twins[0].action_space.sample()
        obs, reward, _, truncated, info = twins[0].step(action)
        obs2, reward2, truncated2, info2 = BE.stage_step(twins[1], action, __import__("time").perf_counter_ns, acc)
        np.testing.assert_array_equal(obs, obs2)
        assert reward == reward2 and truncated == truncated2 and tuple(info) == tuple(info2)
        for key in info:
            if key != "action":
                np.testing.assert_array_equal(np.asarray(info[key]), np.asarray(info2[key]), err_msg=key)
        if truncated:
            for env in twins:
                env.reset()
    assert all(ns > 0 for ns in acc)


def test_breakdown_rows_add_up_to_the_step() -> None:
    stages = BE.step_breakdown(BE.BREAKDOWN_ID, TINY)
    names = [r.what for r in stages]
    assert names == [BE.STAGES[0], BE.STAGES[1], BE.HEAD_ROW, *BE.STAGES[2:], BE.REST_ROW, BE.TOTAL_ROW]
    by = {r.what: r for r in stages}
    assert all(by[name].us_per_step > 0 for name in BE.STAGES)
    assert 0 < by[BE.HEAD_ROW].us_per_step < by[BE.STAGES[1]].us_per_step  # the head is part of the slot
    assert by[BE.TOTAL_ROW].share == 1.0
    table = BE.breakdown_markdown(stages)
    assert table.count("\n") == len(stages) + 2 and f"| {BE.TOTAL_ROW} |" in table


def test_readme_block_carries_the_breakdown(rows: list[BE.Row]) -> None:
    ship = [BE.ShipRow("VMIMO-v0", 2.5, 0.001, 485_000)]
    stages = [BE.StageRow("a stage", 1.0, 0.5), BE.StageRow(BE.TOTAL_ROW, 2.0, 1.0)]
    block = BE.readme_block(rows, ship, ["--readme", "README.md"], TINY, 1.5, stages)
    assert "| a stage | 1.00 | 50 % |" in block and f"| {BE.TOTAL_ROW} | 2.00 | 100 % |" in block
    assert block.index("| VMIMO-v0 | 2.50") < block.index("| a stage |") < block.index("Best of 2 timed repeats")


def test_paired_rates_alternate_the_row_and_its_reference() -> None:
    """``paired_rates`` times reference and row in turn (so both see the same moments of the machine), the best
    of each kept."""
    order: list[str] = []
    row = BE.Timer(lambda a: order.append("row"), [0], 1, 1)
    ref = BE.Timer(lambda a: order.append("ref"), [0], 1, 1)
    budget = BE.Budget(single_steps=1, vector_env_steps=1, warmup_calls=0, repeats=3)
    rate, ref_rate = BE.paired_rates(row, ref, budget)
    assert order == ["ref", "row"] * 3
    assert rate > 0 and ref_rate > 0


def test_goals_line_counts_the_rows_that_meet_each_goal_from_their_ratios() -> None:
    vec = [BE.Row(BE.VECTOR, BE.vector_label("VMIMO-v0 (dict)", 1024), 1024, 1.0, ratio=0.06),
           BE.Row(BE.VECTOR, BE.vector_label("VMIMO-v1 (dict)", 1024), 1024, 1.0, ratio=0.02),
           BE.Row(BE.VECTOR, BE.vector_label("VMIMO-v1 (dict)", 256), 256, 1.0, ratio=0.9)]  # not at N = 1024
    rows = [BE.Row(BE.SINGLE, BE.CARTPOLE_SINGLE, 1, 1.0, ratio=1.0),
            BE.Row(BE.SINGLE, "VMIMO-v0, gym.make", 1, 1.0, ratio=0.30),
            BE.Row(BE.SINGLE, "VMIMO-v1, gym.make", 1, 1.0, ratio=0.24), *vec]
    line = BE.goals_line(rows)
    assert "single env via gym.make ≥ 0.25×: 1 of 2 rows meet it in this run (ratios 0.240–0.300)" in line
    assert "default threads ≥ 0.05×: 1 of 2 rows meet it in this run (ratios 0.020–0.060)" in line
