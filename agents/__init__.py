"""Agents for VMIMO: the policy interface, heuristic schedulers, the causal planner, the clairvoyant oracle, evaluation
and the SB3 training helpers used by ``train_agent.py``.

>>> import gymnasium as gym, vmimo_env
>>> from agents import make_policy
>>> env = gym.make("VMIMO-v0")
>>> policy = make_policy("max_weight", env)
"""

from agents.policies import Policy, SB3Policy, heuristic_names, make_policy, policy_names

__all__ = ["Policy", "SB3Policy", "heuristic_names", "make_policy", "policy_names"]
