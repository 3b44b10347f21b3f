"""torchrl's own checks on VMIMO (run in the Zoo venv: ``make test-zoo``): ``GymEnv`` builds the env (it passes
keywords such as ``frameskip`` and retries without them on a ``TypeError``), its specs pass ``check_env_specs`` and a
rollout runs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.zoo

torchrl_envs = pytest.importorskip("torchrl.envs")


@pytest.mark.parametrize("env_id", ["VMIMO-MultiDiscrete-v0", "VMIMO-Box-v0"])
def test_torchrl_gym_env_passes_its_spec_check(env_id: str) -> None:
    from torchrl.envs.utils import check_env_specs

    import vmimo_env  # noqa: F401

    env = torchrl_envs.GymEnv(env_id)
    check_env_specs(env)
    rollout = env.rollout(5)
    assert tuple(rollout.batch_size) == (5,)
    assert rollout["next", "reward"].shape[0] == 5
