"""Policy evaluation on held-out seeds: :mod:`agents.evaluation.runner` runs policies with common random numbers,
:mod:`agents.evaluation.report` turns results into tables and CSV files. The command line is ``python -m
agents.evaluate``."""

from agents.evaluation.report import best_heuristic, comparison_rows, format_table, write_csvs
from agents.evaluation.runner import METRICS, PolicyResult, evaluate_policies, reset_with_seeds, run_policy

__all__ = ["METRICS", "PolicyResult", "best_heuristic", "comparison_rows", "evaluate_policies", "format_table",
           "reset_with_seeds", "run_policy", "write_csvs"]
