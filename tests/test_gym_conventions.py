"""Gymnasium conventions: registered episode limits, TimeAwareObservation, horizon overrides, human rendering and
RecordVideo."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeAwareObservation

from vmimo_env import ENV_IDS
from vmimo_env.scenario import make_config

SMALL = "VMIMO-Small-v0"


def _episode_truncations(env: gym.Env, seed: int, max_steps: int = 1000) -> list[int]:
    """Steps (1-based) at which one episode reported truncation; the episode stops at the first."""
    env.reset(seed=seed)
    for t in range(1, max_steps + 1):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        if truncated:
            return [t]
    return []


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_limit_equals_the_horizon(env_id: str) -> None:
    spec = gym.spec(env_id)
    assert spec.max_episode_steps == make_config(ENV_IDS[env_id].get("scenario")).horizon


def test_time_aware_observation_counts_to_the_horizon() -> None:
    env = TimeAwareObservation(gym.make(SMALL))
    horizon = make_config("small").horizon
    assert env.observation_space.shape[0] == gym.make(SMALL).observation_space.shape[0] + 1
    obs, _ = env.reset(seed=0)
    assert obs[-1] == 0
    for t in range(1, horizon + 1):
        obs, _, _, truncated, _ = env.step(env.action_space.sample())
        assert obs[-1] == t and truncated == (t == horizon)


def test_shorter_horizon_override_truncates_once_at_the_horizon() -> None:
    env = gym.make(SMALL, horizon=20)
    env.action_space.seed(0)
    for seed in (0, 1):  # and again after a reset: the TimeLimit's counter follows the env's episodes
        assert _episode_truncations(env, seed) == [20]


def test_longer_horizon_needs_a_matching_limit() -> None:
    registered = gym.spec(SMALL).max_episode_steps
    # documented: without max_episode_steps gym.make's TimeLimit ends the episode at the registered limit
    assert _episode_truncations(gym.make(SMALL, horizon=registered + 30), 0) == [registered]
    assert _episode_truncations(gym.make(SMALL, horizon=registered + 30, max_episode_steps=registered + 30),
                                0) == [registered + 30]


def test_vector_entry_point_takes_the_registered_limit_and_refuses_a_mismatch() -> None:
    registered = gym.spec(SMALL).max_episode_steps
    venv = gym.make_vec(SMALL, num_envs=2, vectorization_mode="vector_entry_point", horizon=10)
    venv.reset(seed=0)
    for t in range(1, 11):
        _, _, _, truncated, _ = venv.step(venv.action_space.sample())
        assert truncated.all() == (t == 10)
    with pytest.raises(ValueError, match=rf"max_episode_steps={registered} is below horizon={registered + 5}"):
        gym.make_vec(SMALL, num_envs=2, vectorization_mode="vector_entry_point", horizon=registered + 5)
    venv = gym.make_vec(SMALL, num_envs=2, vectorization_mode="vector_entry_point", horizon=registered + 5,
                        max_episode_steps=registered + 5)
    assert venv.unwrapped.cfg.horizon == registered + 5


def test_human_mode_prints_the_table_each_step(capsys: pytest.CaptureFixture[str]) -> None:
    env = gym.make(SMALL, render_mode="human")
    assert env.unwrapped.render_mode == "human"  # native: no HumanRendering (pygame) wrapper
    env.reset(seed=0)
    assert "slot 0/50" in capsys.readouterr().out
    env.step(env.action_space.sample())
    out = capsys.readouterr().out
    assert "slot 1/50" in out and " dev modality" in out and out.count("\n") == 2 + 4
    assert env.render() is None


def test_record_video_writes_an_mp4(tmp_path) -> None:
    pytest.importorskip("moviepy", reason="the 'video' extra (moviepy) is not installed")
    from gymnasium.wrappers import RecordVideo

    folder = tmp_path / "videos"  # not yet existing: RecordVideo warns when it overwrites a folder
    env = RecordVideo(gym.make(SMALL, render_mode="rgb_array", horizon=8), str(folder),
                      episode_trigger=lambda ep: True, disable_logger=True)
    env.reset(seed=0)
    truncated = False
    while not truncated:
        _, _, _, truncated, _ = env.step(env.action_space.sample())
    env.close()
    videos = sorted(folder.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    with open(videos[0], "rb") as f:
        assert f.read(12)[4:8] == b"ftyp"  # an MP4 container


def test_rgb_frame_is_a_numpy_image() -> None:
    env = gym.make(SMALL, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == (480, 480, 3)


def test_training_envs_run_to_an_overridden_horizon() -> None:
    from agents.common.envs import gym_make

    env = gym_make("VMIMO-Small-v0", horizon=60)
    env.reset(seed=0)
    steps, trunc = 0, False
    while not trunc:
        _, _, _, trunc, _ = env.step(env.action_space.sample())
        steps += 1
    assert steps == 60
