"""The hyperparameter files split into a Zoo-loadable part and a project-only overlay (no rl_zoo3 needed).

``tests/data/hyperparams_before_split/<algo>.yml`` are the files as they were before the split (one file per
algorithm, project-only keys inline): train_agent.py must resolve exactly the same settings from the split files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agents.common.envs import ALGOS, action_view_for
from agents.common.hyperparams import (
    HYPERPARAMS_DIR,
    PROJECT_KEYS,
    check_zoo_entry,
    load_hyperparams,
    project_hyperparams_path,
    read_hyperparams_file,
)

BEFORE = Path(__file__).resolve().parent / "data" / "hyperparams_before_split"
FLAT_IDS = {"multidiscrete": "VMIMO-MultiDiscrete-v0", "box": "VMIMO-Box-v0"}


@pytest.mark.parametrize("algo", ALGOS)
def test_zoo_file_entries_only_hold_keys_the_zoo_and_the_algorithm_accept(algo: str) -> None:
    from agents.policies import algo_class

    path = HYPERPARAMS_DIR / f"{algo}.yml"
    for key, entry in read_hyperparams_file(path).items():
        check_zoo_entry(entry, algo_class(algo), f"{path.name} ({key})")


def test_zoo_entry_check_rejects_project_keys_and_unresolvable_policies() -> None:
    from stable_baselines3 import PPO

    check_zoo_entry({"policy": "MlpPolicy", "n_envs": 4, "normalize": True, "n_steps": 8}, PPO, "x")
    check_zoo_entry({"policy": "agents.common.device_policy.DevicePolicy"}, PPO, "x")  # the Zoo imports dotted names
    for key in PROJECT_KEYS:
        with pytest.raises(ValueError, match=f"'{key}'.*overlay"):
            check_zoo_entry({key: 1}, PPO, "x")
    with pytest.raises(ValueError, match="policy 'DevicePolicy'"):
        check_zoo_entry({"policy": "DevicePolicy"}, PPO, "x")


@pytest.mark.parametrize("algo", ALGOS)
def test_every_zoo_file_has_the_flat_id_the_zoo_uses_with_the_vmimo_entry(algo: str) -> None:
    data = read_hyperparams_file(HYPERPARAMS_DIR / f"{algo}.yml")
    assert data[FLAT_IDS[action_view_for(algo)]] == data["VMIMO-v0"]


@pytest.mark.parametrize("algo", ALGOS)
def test_merged_entries_equal_the_entries_before_the_split(algo: str) -> None:
    before = read_hyperparams_file(BEFORE / f"{algo}.yml")
    for key, entry in before.items():
        merged, used = load_hyperparams(algo, key)
        assert used == key
        assert merged == entry, key
    overlay = project_hyperparams_path(algo)
    if overlay.is_file():  # an overlay entry without a Zoo entry would never be read
        assert set(read_hyperparams_file(overlay)) <= set(read_hyperparams_file(HYPERPARAMS_DIR / f"{algo}.yml"))


def test_overlay_follows_the_conf_file_and_replaces_keys(tmp_path: Path) -> None:
    (tmp_path / "mine.yml").write_text("X-v0: {n_envs: 4, policy: MlpPolicy}\ndefault: {n_envs: 2}\n")
    (tmp_path / "vmimo").mkdir()
    (tmp_path / "vmimo" / "mine.yml").write_text("X-v0: {policy: DevicePolicy, eval_freq: 10}\n")
    assert load_hyperparams("ppo", "X-v0", tmp_path / "mine.yml") == (
        {"n_envs": 4, "policy": "DevicePolicy", "eval_freq": 10}, "X-v0")
    assert load_hyperparams("ppo", "Y-v0", tmp_path / "mine.yml") == ({"n_envs": 2}, "default")
    (tmp_path / "vmimo" / "mine.yml").write_text("X-v0: [1, 2]\n")
    with pytest.raises(ValueError, match="entry 'X-v0' must be a mapping"):
        load_hyperparams("ppo", "X-v0", tmp_path / "mine.yml")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("env_id", ["VMIMO-v0", "VMIMO-Small-v0"])
def test_train_agent_resolves_the_same_settings_as_before_the_split(algo: str, env_id: str, tmp_path: Path) -> None:
    import train_agent

    def resolve(extra: list[str]) -> train_agent.RunSettings:
        args = train_agent.parse_args(["--algo", algo, "--env", env_id, "--log-folder", str(tmp_path),
                                       "--run-name", "r", *extra])
        return train_agent.resolve_settings(args, None)

    now = resolve([])
    before = resolve(["-conf", str(BEFORE / f"{algo}.yml")])
    assert now.hyperparams_file == HYPERPARAMS_DIR / f"{algo}.yml"
    assert dataclasses.replace(before, hyperparams_file=now.hyperparams_file) == now
