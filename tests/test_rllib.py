"""RLlib smoke test (run in the Ray venv: ``make test-ray``): plain VMIMO ids in remote env runners, PPO on the
new API stack with 2 env runners, checkpoint and restore."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_register_rllib_registers_every_id(ray_session):
    from ray.tune.registry import ENV_CREATOR, _global_registry

    import vmimo_env
    from vmimo_env.rllib import make_env_creator, register_rllib

    names = register_rllib()
    assert names == list(vmimo_env.ENV_IDS)
    assert all(_global_registry.contains(ENV_CREATOR, n) for n in names)
    with pytest.raises(ValueError, match="unknown"):
        register_rllib(["CartPole-v1"])
    from ray.rllib.env.env_context import EnvContext

    env = make_env_creator("VMIMO-Small-v0")(EnvContext({"horizon": 7}, worker_index=1, vector_index=0))
    assert env.unwrapped.cfg.horizon == 7
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_ppo_two_env_runners_checkpoint_restore(ray_session, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.algorithms.ppo import PPOConfig

    from vmimo_env.rllib import register_rllib

    register_rllib()
    config = (
        PPOConfig()
        .environment("VMIMO-MultiDiscrete-v0", env_config={"num_devices": 4, "horizon": 25})
        .env_runners(num_env_runners=2, rollout_fragment_length=50)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=100, minibatch_size=50, num_epochs=1)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        assert algo.env_runner_group.num_remote_env_runners() == 2
        for _ in range(3):
            res = algo.train()
        assert res["env_runners"]["num_episodes_lifetime"] >= 8  # 300 steps of 25-slot episodes
        assert np.isfinite(res["env_runners"]["episode_return_mean"])
        algo.save_to_path(str(tmp_path / "ckpt"))
        before = algo.get_module().get_state()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path / "ckpt"))
    try:
        after = restored.get_module().get_state()
        assert before.keys() == after.keys()
        for k in before:
            np.testing.assert_array_equal(before[k], after[k])
        assert restored.train()["training_iteration"] == 4  # resumes from the saved iteration
    finally:
        restored.stop()


@pytest.mark.parametrize("mode", ["SYNC", "VECTOR_ENTRY_POINT"])
def test_episodes_keep_every_transition(ray_session, mode):
    """RLlib sees whole episodes (length = horizon) both with its own SYNC vectorisation and with the native vector
    env (VECTOR_ENTRY_POINT), which needs the NEXT_STEP autoreset the native env declares."""
    from ray.rllib.algorithms.ppo import PPOConfig

    from vmimo_env.rllib import register_rllib

    register_rllib()
    config = (
        PPOConfig()
        .environment("VMIMO-MultiDiscrete-v0", env_config={"num_devices": 4, "horizon": 10})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=40,
                     gym_env_vectorize_mode=getattr(gym.VectorizeMode, mode))
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=80, minibatch_size=40, num_epochs=1)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        res = algo.train()
        assert res["env_runners"]["num_episodes"] >= 4
        assert res["env_runners"]["episode_len_mean"] == 10
    finally:
        algo.stop()


def test_multiagent_creator_wraps_the_parallel_env():
    pytest.importorskip("pettingzoo")
    from vmimo_env.rllib import make_multiagent_creator

    env = make_multiagent_creator()({"num_devices": 3, "horizon": 4})
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"device_0", "device_1", "device_2"}
    obs, rew, _, trunc, _ = env.step({a: env.action_space[a].sample() for a in obs})
    assert len(set(rew.values())) == 1 and trunc["__all__"] is False  # one team reward; episode goes on
