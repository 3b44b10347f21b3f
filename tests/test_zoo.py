"""The shipped hyperparameter files load into the RL Baselines3 Zoo (run in the Zoo venv: ``make test-zoo``).

Each case runs ``python -m rl_zoo3.train ... -conf agents/hyperparams/<algo>.yml`` on the flat-action id the Zoo
must use for the algorithm, with a tiny budget, and checks that it trained from the file's VMIMO entry (not the
``default`` one) and saved a model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.zoo

pytest.importorskip("rl_zoo3")

ROOT = Path(__file__).resolve().parent.parent

# MaskablePPO is not among rl_zoo3's algorithms (``--algo`` choices), so maskable_ppo.yml is only checked by
# tests/test_zoo_files.py.
# (Zoo algorithm name, hyperparameter file, env id, -params making the run tiny but still update the model)
CASES = [
    ("ppo", "ppo", "VMIMO-MultiDiscrete-v0", ["n_envs:4", "n_steps:16", "batch_size:32"]),
    ("a2c", "a2c", "VMIMO-MultiDiscrete-v0", ["n_envs:4"]),
    ("ppo_lstm", "recurrent_ppo", "VMIMO-MultiDiscrete-v0", ["n_envs:4", "n_steps:16", "batch_size:32"]),
    ("sac", "sac", "VMIMO-Box-v0", ["n_envs:2", "learning_starts:64", "batch_size:32"]),
    ("td3", "td3", "VMIMO-Box-v0", ["n_envs:2", "learning_starts:64", "batch_size:32"]),
    ("ddpg", "ddpg", "VMIMO-Box-v0", ["n_envs:2", "learning_starts:64", "batch_size:32"]),
]


@pytest.mark.parametrize(("zoo_algo", "file", "env_id", "params"), CASES, ids=[c[0] for c in CASES])
def test_zoo_trains_from_the_shipped_file(zoo_algo: str, file: str, env_id: str, params: list[str],
                                          tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", zoo_algo, "--env", env_id, "--gym-packages", "vmimo_env",
           "-conf", f"agents/hyperparams/{file}.yml", "-n", "256", "--eval-freq", "-1", "--seed", "0",
           "--log-folder", str(tmp_path), "-params", *params]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Using 'default' hyperparameters" not in out, "the Zoo fell back to the default entry"
    models = list(tmp_path.glob(f"{zoo_algo}/{env_id}_*/{env_id}.zip"))
    assert models, f"no saved model under {tmp_path}:\n{out[-2000:]}"
