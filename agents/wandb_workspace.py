"""The VMIMO W&B workspace as code (``wandb-workspaces``): build it offline, publish it with a key.

    python -m agents.wandb_workspace --dry-run                      # print the workspace spec (JSON), no server
    python -m agents.wandb_workspace --dry-run --out workspace.json # and save it
    python -m agents.wandb_workspace --publish --entity ME --project vmimo   # needs WANDB_API_KEY

Sections (every key is one ``train_agent.py`` logs):

- **Reward parts**: ``episode/*`` reward parts (accuracy, energy per scene, expired fraction) and the return over
  ``global_step``.
- **Δ vs best baseline**: ``eval/diff_vs_best_heuristic`` with its CI, the held-out return against each reference
  heuristic (``eval/ref/*``).
- **Accuracy–energy**: scatter of the runs' final ``eval/accuracy`` against ``eval/energy_per_scene_mj`` (one
  point per run), and the per-evaluation figure ``eval/figures/accuracy_energy``.
- **Per-tier table**: the runs table grouped by scenario tier (``env_id``: Small / default / Large / ...), with the
  best held-out return and the difference to the best heuristic as columns, plus the latest ``eval/table``.
- **Allocation and media**: the histograms and the rendered episode of ``agents.wandb_extras``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REWARD_PARTS = ("episode/accuracy", "episode/energy_per_scene_mj", "episode/expired_frac", "rollout/ep_rew_mean")
DELTA_KEYS = ("eval/diff_vs_best_heuristic", "eval/diff_ci95")
TABLE_COLUMNS = ("config:env_id", "config:algo", "summary:best_mean_reward", "summary:diff_vs_best_heuristic",
                 "summary:best_heuristic", "summary:eval/accuracy", "summary:eval/energy_per_scene_mj")
HIST_KEYS = tuple(f"eval_episode/dist/{k}" for k in ("sinr_db", "queue", "power_dbm", "prefix", "group_size"))


def build_workspace(entity: str = "my-entity", project: str = "vmimo", name: str = "VMIMO training") -> Any:
    """The workspace object (no server needed until it is saved)."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    x = "global_step"
    sections = [
        ws.Section(name="Reward parts", is_open=True, panels=[
            wr.LinePlot(title="Episode return (training)", x=x, y=["rollout/ep_rew_mean"]),
            wr.LinePlot(title="Accuracy (correct / arrived)", x=x, y=["episode/accuracy", "eval/accuracy"]),
            wr.LinePlot(title="Energy per scene (mJ)", x=x,
                        y=["episode/energy_per_scene_mj", "eval/energy_per_scene_mj"]),
            wr.LinePlot(title="Expired-empty fraction", x=x, y=["episode/expired_frac", "eval/expired_frac"]),
        ]),
        ws.Section(name="Δ vs best baseline", is_open=True, panels=[
            wr.LinePlot(title="Held-out return − best heuristic (paired)", x=x, y=list(DELTA_KEYS)),
            wr.LinePlot(title="Held-out return vs references", x=x, y=["eval/mean_reward", "eval/ref/*"]),
            wr.ScalarChart(title="Best held-out return", metric="eval/best_mean_reward"),
        ]),
        ws.Section(name="Accuracy–energy", is_open=True, panels=[
            wr.ScatterPlot(title="Accuracy vs energy per scene (one point per run)", x="eval/energy_per_scene_mj",
                           y="eval/accuracy"),
            wr.MediaBrowser(title="Accuracy–energy of the policies", media_keys=["eval/figures/accuracy_energy"]),
        ]),
        ws.Section(name="Per-tier table", is_open=True, panels=[
            wr.BarPlot(title="Best held-out return by scenario tier", metrics=["eval/best_mean_reward"],
                       groupby="env_id"),
            wr.BarPlot(title="Δ vs best heuristic by scenario tier", metrics=["diff_vs_best_heuristic"],
                       groupby="env_id"),
            wr.WeavePanelSummaryTable(table_name="eval/table"),
        ]),
        ws.Section(name="Allocation and media", panels=[
            *[wr.LinePlot(title=k.rsplit("/", 1)[1], x=x, y=[k]) for k in HIST_KEYS],
            wr.MediaBrowser(title="Rendered episode", media_keys=["eval_episode/video", "eval_episode/frames"]),
        ]),
    ]
    return ws.Workspace(
        entity=entity, project=project, name=name, sections=sections,
        settings=ws.WorkspaceSettings(x_axis=x),
        runset_settings=ws.RunsetSettings(groupby=[ws.Config("env_id")], pinned_columns=list(TABLE_COLUMNS)),
    )


def workspace_spec(workspace: Any) -> dict[str, Any]:
    """The workspace as the JSON view spec W&B stores (built locally; nothing is sent)."""
    return json.loads(workspace._to_model().model_dump_json(by_alias=True, exclude_none=True))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="build and print the spec, no server (default)")
    mode.add_argument("--publish", action="store_true", help="save the workspace to W&B (needs an API key)")
    p.add_argument("--entity", default=os.environ.get("WANDB_ENTITY", "my-entity"))
    p.add_argument("--project", default=os.environ.get("WANDB_PROJECT", "vmimo"))
    p.add_argument("--name", default="VMIMO training")
    p.add_argument("--out", default=None, help="also write the spec (JSON) to this file")
    args = p.parse_args(argv)

    workspace = build_workspace(args.entity, args.project, args.name)
    spec = workspace_spec(workspace)
    if args.out:
        Path(args.out).write_text(json.dumps(spec, indent=2), encoding="utf-8")
    if args.publish:
        from agents.wandb_logging import api_key_configured

        if not api_key_configured():
            raise SystemExit("--publish needs a W&B API key (WANDB_API_KEY or `wandb login`)")
        workspace.save()
        print(f"workspace saved: {workspace.url}")
    else:
        json.dump(spec, sys.stdout, indent=2)
        print()
    return spec


if __name__ == "__main__":
    main()
