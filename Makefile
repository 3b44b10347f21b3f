# Two commands do everything on a fresh clone (both create/reuse .venv):
#   make demo   installs and runs the main job: a short PPO training with the shipped defaults
#   make test   installs and runs the test suite
.PHONY: venv demo test test-slow lint bench model

venv:
	bash scripts/setup_venv.sh

demo: venv
	.venv/bin/python train_agent.py --algo ppo

test: venv
	.venv/bin/python -m pytest

test-slow: venv
	.venv/bin/python -m pytest -m slow

lint: venv
	.venv/bin/ruff check .

bench: venv
	.venv/bin/python benchmarks/bench_physics.py --compiled
	.venv/bin/python benchmarks/bench_semantic.py
	.venv/bin/python benchmarks/bench_env.py
	.venv/bin/python benchmarks/bench_training.py --markdown

model: venv
	.venv/bin/python -m semantic_models.build
	.venv/bin/python -m semantic_models.build_variant

# Ray/RLlib live in their own venv (RLlib pins its own gymnasium): created on first use
RAY_VENV ?= .venv-ray
.PHONY: venv-ray test-ray bench-ray
venv-ray:
	test -x $(RAY_VENV)/bin/python || python3 -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/python -m pip install --quiet -c constraints.txt torch  # the pinned CPU build, before anything pulls a CUDA one
	$(RAY_VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[rllib,dev]"

test-ray: venv-ray
	$(RAY_VENV)/bin/python -m pytest -m ray

bench-ray: venv-ray
	$(RAY_VENV)/bin/python benchmarks/bench_rllib.py --runners 1 2 --envs-per-runner 8

# The RL Baselines3 Zoo and torchrl live in their own venv (Optuna, the Hugging Face hub, tensordict...): created on
# first use
ZOO_VENV ?= .venv-zoo
.PHONY: venv-zoo test-zoo
venv-zoo:
	test -x $(ZOO_VENV)/bin/python || python3 -m venv $(ZOO_VENV)
	$(ZOO_VENV)/bin/python -m pip install --quiet -c constraints.txt torch  # the pinned CPU build, before anything pulls a CUDA one
	$(ZOO_VENV)/bin/python -m pip install --quiet -c constraints.txt rl_zoo3 torchrl -e ".[dev]"

test-zoo: venv-zoo
	$(ZOO_VENV)/bin/python -m pytest -m zoo
