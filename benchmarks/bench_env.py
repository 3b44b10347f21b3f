"""Steps per second of VMIMO (frozen model in the loop), each row against its CartPole counterpart in the same run.

    python benchmarks/bench_env.py [--quick] [--repeats R] [--markdown] [--readme README.md]

Rows (:func:`measure_steps`):

* single environments through ``gym.make`` (checkers and wrappers included, as a user gets them): CartPole-v1 (the
  reference of the single rows), VMIMO-v0 and VMIMO-v1 with the dict and the MultiDiscrete action view, and
  mobile-env's smallest scenario (``mobile-small-central-v0``) when ``import mobile_env`` works (else the row says
  "not installed");
* vector environments: Gymnasium's ``CartPoleVectorEnv`` at N = 1024 (the reference of the vector rows), the native
  ``VMIMOVectorEnv`` through ``gym.make_vec(..., vectorization_mode="vector_entry_point")`` at N in {16, 256, 1024}
  for v0 and v1 (the id picks the action view: ``VMIMO-v0`` dict, ``VMIMO-MultiDiscrete-v0`` MultiDiscrete, also
  at 1024), and the SB3 ``VecEnv`` adapter at N = 256; each on its default threads (``vmimo_env.core.auto_threads``:
  one per core, at least 64 environments each), which the row names, and where that is more than one, the dict
  view at N = 1024 again on one thread.

Method: actions are sampled before timing (a pool of random actions, cycled), each row and its CartPole counterpart
are warmed up, then timed with ``time.perf_counter`` ``--repeats`` times each, in alternation (reference, row,
reference, row, ...: :func:`paired_rates`); the table reports the row's best repeat (the least disturbed by the
rest of a shared machine) and its ratio to the best repeat of the reference timed beside it, the comparable figure
across machines: a drift of the machine's speed during the run moves both sides of a ratio. A reference row gives
the best figure of its reference over the run. Episode ends are included (single rows reset in the loop, vector
rows autoreset).

Construction and shipping (:func:`measure_construction`): each id in a fresh Python process (so "first" really is
the first in a process: model load, scene pool, compiled kernels, for the heterogeneous id the aligner fit), the
time of the first and of a second ``gym.make``, and ``len(pickle.dumps(gym.make(id).unwrapped))``, what a
``SubprocVecEnv`` or a Ray worker receives.

Where a single step's time goes (:func:`step_breakdown`, on ``VMIMO-v1``): each stage ``VMIMOEnv.step`` runs (action
check and decode, the slot, the episode-end check, the info, the observation; :func:`stage_step` runs them in its
order and is tested to give the same trajectory), timed with ``time.perf_counter_ns`` around each; the slot's head
and reward timed again on the same closing scenes (a pure function of them); and the rest, a ``gym.make`` step
timed as the rows above minus the stages.

``--markdown`` prints the tables as Markdown; ``--readme FILE`` replaces the block between
``<!-- bench_env:start -->`` and ``<!-- bench_env:end -->`` of FILE with them, the command, the machine and the
package versions (``agents.common.provenance``). ``--quick`` is a smoke run of a few seconds per row (noisier).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.vector.utils import batch_space

import vmimo_env  # noqa: F401  (registers the ids)
from agents.common import provenance
from vmimo_env.core import auto_threads

MARK_START, MARK_END = "<!-- bench_env:start -->", "<!-- bench_env:end -->"
PROGRAM = "python benchmarks/bench_env.py"
SINGLE, VECTOR = "single", "vector"
CARTPOLE_SINGLE = "CartPole-v1, gym.make (reference of the single rows)"
CARTPOLE_VECTOR = "CartPoleVectorEnv, N=1024 (reference of the vector rows)"
REFERENCE = {SINGLE: CARTPOLE_SINGLE, VECTOR: CARTPOLE_VECTOR}
REFERENCE_VECTOR_N = 1024
SINGLE_IDS = ("VMIMO-v0", "VMIMO-MultiDiscrete-v0", "VMIMO-v1", "VMIMO-MultiDiscrete-v1")
VECTOR_SIZES = (16, 256, 1024)
SB3_N = 256
MOBILE_ENV_ID = "mobile-small-central-v0"  # mobile-env's smallest scenario, one central agent
SHIP_IDS = ("VMIMO-v0", "VMIMO-v1", "VMIMO-Hetero-v1")
ACTION_POOL = 64  # pre-sampled actions (batches for vector rows) cycled through while timing


@dataclass(frozen=True)
class Budget:
    """How long each row is timed: env steps per repeat of a single row, env steps per repeat of a vector row
    (whatever N), warm-up calls, repeats. The CartPole references step 10 (single) and 50 (vector) times more env
    steps per repeat: theirs are that much cheaper, and a reference timed over a few milliseconds would put its
    noise into every ratio."""

    single_steps: int
    vector_env_steps: int
    warmup_calls: int = 10
    repeats: int = 3
    cartpole_single_factor: int = 10
    cartpole_vector_factor: int = 50

    @classmethod
    def full(cls, repeats: int = 3) -> Budget:
        return cls(single_steps=20_000, vector_env_steps=200_000, warmup_calls=20, repeats=repeats)

    @classmethod
    def quick(cls, repeats: int = 2) -> Budget:
        return cls(single_steps=1_000, vector_env_steps=8_192, warmup_calls=3, repeats=repeats)


@dataclass(frozen=True)
class Row:
    """One timed row: ``group`` (single or vector) names its CartPole reference; ``env_steps_per_s`` None when the
    row could not be measured (``note`` says why); ``ref_env_steps_per_s`` the CartPole counterpart timed in
    alternation with the row (:func:`paired_rates`); ``ratio`` to it (else to the group's reference row), filled by
    :func:`with_ratios`."""

    group: str
    what: str
    num_envs: int
    env_steps_per_s: float | None
    ratio: float | None = None
    note: str = ""
    ref_env_steps_per_s: float | None = None  # the reference timed in alternation with this row (None: the group's)


@dataclass(frozen=True)
class ShipRow:
    """Construction and shipping of one id, measured in a fresh process."""

    env_id: str
    first_make_s: float
    second_make_s: float
    pickled_bytes: int


# ---------------------------------------------------------------------------------------------- timing
@dataclass
class Timer:
    """One row's timed loop: ``calls`` calls of ``step`` over the pre-sampled ``actions`` (cycled), each call
    ``env_steps_per_call`` env steps; ``close`` releases what the row opened."""

    step: Callable[[Any], Any]
    actions: Sequence[Any]
    calls: int
    env_steps_per_call: int
    close: Callable[[], None] = lambda: None

    def warm(self, calls: int) -> None:
        for i in range(calls):
            self.step(self.actions[i % len(self.actions)])

    def once(self) -> float:
        """env-steps/s of one timed repeat."""
        step, actions, n = self.step, self.actions, len(self.actions)
        t0 = time.perf_counter()
        for i in range(self.calls):
            step(actions[i % n])
        return self.calls * self.env_steps_per_call / (time.perf_counter() - t0)


def best_rate(timer: Timer, budget: Budget) -> float:
    """The best over ``budget.repeats`` timed repeats of ``timer`` after ``budget.warmup_calls`` untimed calls."""
    timer.warm(budget.warmup_calls)
    return max(timer.once() for _ in range(budget.repeats))


def paired_rates(timer: Timer, reference: Timer, budget: Budget) -> tuple[float, float]:
    """``(row, reference)`` env-steps/s, the two timed in alternation (reference, row, reference, row, ...;
    ``budget.repeats`` each, the best of each kept), so that a change of the machine's speed during the run moves
    both sides of the row's ratio alike."""
    timer.warm(budget.warmup_calls)
    reference.warm(budget.warmup_calls)
    best_row = best_ref = 0.0
    for _ in range(budget.repeats):
        best_ref = max(best_ref, reference.once())
        best_row = max(best_row, timer.once())
    return best_row, best_ref


def single_timer(env_id: str, steps: int, **kwargs: Any) -> Timer:
    """``steps`` steps of one ``gym.make(env_id)`` env under random actions, resetting at episode ends."""
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(ACTION_POOL)]

    def step(action: Any) -> None:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()

    return Timer(step, actions, steps, 1, env.close)


def single_rate(env_id: str, steps: int, budget: Budget, **kwargs: Any) -> float:
    """env-steps/s of one ``gym.make(env_id)`` env under random actions, resetting at episode ends."""
    timer = single_timer(env_id, steps, **kwargs)
    try:
        return best_rate(timer, budget)
    finally:
        timer.close()


def batched_timer(step: Callable[[Any], Any], action_space: gym.Space, num_envs: int, budget: Budget,
                  factor: int = 1, close: Callable[[], None] = lambda: None) -> Timer:
    """A batched ``step`` over pre-sampled batches of ``action_space`` (already batched), timed over ``factor``
    times the budget's vector env steps."""
    action_space.seed(0)
    actions = [action_space.sample() for _ in range(ACTION_POOL)]
    return Timer(step, actions, max(1, factor * budget.vector_env_steps // num_envs), num_envs, close)


def vector_timer(env_id: str, num_envs: int, budget: Budget, num_threads: int | None = None) -> Timer:
    """``gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point")`` (VMIMOVectorEnv), on its
    default threads or ``num_threads``."""
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", num_threads=num_threads)
    expected = auto_threads(num_envs) if num_threads is None else num_threads
    if venv.unwrapped.core.num_threads != expected:  # the row's name (vector_label) says this count
        raise RuntimeError(f"{env_id} at N = {num_envs} steps on {venv.unwrapped.core.num_threads} threads, "
                           f"not the {expected} its row names")
    venv.reset(seed=0)
    return batched_timer(venv.step, venv.action_space, num_envs, budget, close=venv.close)


def threads_text(n: int) -> str:
    return f"{n} thread" + ("s" if n > 1 else "")


def vector_label(what: str, num_envs: int, num_threads: int | None = None) -> str:
    """The row name of a ``VMIMOVectorEnv`` row: id and view, N, and the threads it steps on (None: its default,
    ``vmimo_env.core.auto_threads``)."""
    threads = auto_threads(num_envs) if num_threads is None else num_threads
    return f"VMIMOVectorEnv, {what}, N={num_envs}, {threads_text(threads)}"


def cartpole_vector_timer(num_envs: int, budget: Budget) -> Timer:
    """Gymnasium's own natively batched CartPole."""
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    venv = CartPoleVectorEnv(num_envs=num_envs)
    venv.reset(seed=0)
    return batched_timer(venv.step, venv.action_space, num_envs, budget, budget.cartpole_vector_factor, venv.close)


def sb3_timer(num_envs: int, budget: Budget) -> Timer:
    """The SB3 ``VecEnv`` adapter (VMIMO-v0 scenario, MultiDiscrete actions)."""
    from vmimo_env.sb3 import VMIMOSB3VecEnv

    venv = VMIMOSB3VecEnv(num_envs=num_envs, seed=0)
    venv.reset()
    return batched_timer(venv.step, batch_space(venv.action_space, num_envs), num_envs, budget, close=venv.close)


def paired_row(group: str, what: str, num_envs: int, make: Callable[[], Timer], reference: Timer,
               budget: Budget) -> Row:
    """A row timed in alternation with its group's CartPole reference (:func:`paired_rates`)."""
    timer = make()
    try:
        rate, ref = paired_rates(timer, reference, budget)
    finally:
        timer.close()
    return Row(group, what, num_envs, rate, ref_env_steps_per_s=ref)


def mobile_env_row(budget: Budget, reference: Timer) -> Row:
    """mobile-env's smallest scenario through ``gym.make`` (timed in alternation with ``reference``) when the
    package imports, else a row saying so."""
    what = f"{MOBILE_ENV_ID} (mobile-env), gym.make"
    try:
        import mobile_env  # noqa: F401  (registers its ids)
    except ImportError:
        return Row(SINGLE, what, 1, None, note="not installed")
    return paired_row(SINGLE, what, 1, lambda: single_timer(MOBILE_ENV_ID, budget.single_steps), reference, budget)


BREAKDOWN_ID = "VMIMO-v1"
# the stages of ``VMIMOEnv.step``, in its order (names as the table prints them)
STAGES = ("action check and decode (`FrontEnd.decode`)", "slot (`VMIMOCore.step`)",
          "episode-end check (`FrontEnd.truncated_single`)", "info (`FrontEnd.info`)",
          "observation (`FrontEnd.observation`)")
HEAD_ROW = ("  of the slot: head and reward on the closing scenes (`scoring.slot_score_bound`, timed again on warm "
            "caches: a lower bound)")
REST_ROW = "the rest: `VMIMOEnv.step`'s own lines and Gymnasium's wrappers (the step minus the stages)"
TOTAL_ROW = "one step through `gym.make`"


@dataclass(frozen=True)
class StageRow:
    """One row of the breakdown: mean µs per step of a stage, and its share of the whole step."""

    what: str
    us_per_step: float
    share: float


def stage_step(env: gym.Env, action: Any, clock: Callable[[], int], acc: list[int]) -> tuple[Any, float, bool, dict]:
    """One step of the unwrapped VMIMO env ``env`` through the stages ``VMIMOEnv.step`` runs, in its order, each
    timed into ``acc`` (ns, indexed as :data:`STAGES`; ``acc[len(STAGES)]`` the head re-run). Returns what
    ``VMIMOEnv.step`` returns (``tests/test_bench_env.py`` checks it is the same trajectory)."""
    fe = env.frontend
    t0 = clock()
    native = fe.decode(action)
    t1 = clock()
    res = fe.step(native)
    t2 = clock()
    truncated = fe.truncated_single()
    t3 = clock()
    info = fe.info(res, native)
    t4 = clock()
    obs = fe.observation()
    t5 = clock()
    core = env.core
    if core._score_args is not None and core.bs_aligner is None:  # what the slot ran: a pure function of the
        # slot's closing scenes, timed again
        core._score_entry(core.last_closing, core._score_args)
    t6 = clock()
    for j, dt in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
        acc[j] += dt
    env._last, env._last_action = res, native
    return obs, res.reward_of(0), truncated, info


def step_breakdown(env_id: str, budget: Budget) -> list[StageRow]:
    """Where one single-env step's time goes: each stage of ``VMIMOEnv.step`` timed on its own (mean over the
    steps of the fastest of ``budget.repeats`` repeats, clock calls included), the slot's head and reward timed
    again on the same closing scenes, and the rest against a ``gym.make`` step timed the same way."""
    total_rate = single_rate(env_id, budget.single_steps, budget)
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(ACTION_POOL)]
    clock = time.perf_counter_ns
    best: list[int] | None = None
    for rep in range(budget.repeats + 1):  # the first pass warms up
        acc = [0] * (len(STAGES) + 1)
        for i in range(budget.single_steps):
            if stage_step(env, actions[i % len(actions)], clock, acc)[2]:
                env.reset()
        if rep and (best is None or sum(acc[:len(STAGES)]) < sum(best[:len(STAGES)])):
            best = acc
    env.close()
    assert best is not None
    per = [ns / budget.single_steps / 1e3 for ns in best]
    total = 1e6 / total_rate
    rows = [StageRow(what, us, us / total) for what, us in zip(STAGES, per, strict=False)]
    rows.insert(2, StageRow(HEAD_ROW, per[-1], per[-1] / total))
    rest = total - sum(per[:len(STAGES)])
    return [*rows, StageRow(REST_ROW, rest, rest / total), StageRow(TOTAL_ROW, total, 1.0)]


def measure_steps(budget: Budget, log: Callable[[str], None] = lambda _: None) -> list[Row]:
    """Every row of the steps table, in table order, each timed in alternation with its CartPole counterpart
    (:func:`paired_rates`); a reference row holds the best CartPole figure of its group's pairs."""
    rows: list[Row] = []
    cart = single_timer("CartPole-v1", budget.single_steps * budget.cartpole_single_factor)
    try:
        single: list[Row] = []
        for env_id in SINGLE_IDS:
            single.append(paired_row(SINGLE, f"{env_id}, gym.make", 1,
                                     lambda env_id=env_id: single_timer(env_id, budget.single_steps), cart, budget))
            log(single[-1].what)
        single.append(mobile_env_row(budget, cart))
        log(single[-1].what)
    finally:
        cart.close()
    rows.append(Row(SINGLE, CARTPOLE_SINGLE, 1, max(r.ref_env_steps_per_s or 0.0 for r in single)))
    rows += single
    cart_vec = cartpole_vector_timer(REFERENCE_VECTOR_N, budget)
    try:
        vector: list[Row] = []
        for version in ("v0", "v1"):
            for n in VECTOR_SIZES:
                vector.append(paired_row(VECTOR, vector_label(f"VMIMO-{version} (dict)", n), n,
                                         lambda v=version, n=n: vector_timer(f"VMIMO-{v}", n, budget), cart_vec,
                                         budget))
                log(vector[-1].what)
            n = VECTOR_SIZES[-1]
            if auto_threads(n) > 1:  # the same batch on the calling thread only: what the threads bring
                vector.append(paired_row(VECTOR, vector_label(f"VMIMO-{version} (dict)", n, 1), n,
                                         lambda v=version, n=n: vector_timer(f"VMIMO-{v}", n, budget, 1), cart_vec,
                                         budget))
                log(vector[-1].what)
            vector.append(paired_row(VECTOR, vector_label(f"VMIMO-MultiDiscrete-{version}", n), n,
                                     lambda v=version, n=n: vector_timer(f"VMIMO-MultiDiscrete-{v}", n, budget),
                                     cart_vec, budget))
            log(vector[-1].what)
        vector.append(paired_row(VECTOR, f"VMIMOSB3VecEnv (SB3 adapter, VMIMO-v0 MultiDiscrete), N={SB3_N}, "
                                 f"{threads_text(auto_threads(SB3_N))}", SB3_N,
                                 lambda: sb3_timer(SB3_N, budget), cart_vec, budget))
        log(vector[-1].what)
    finally:
        cart_vec.close()
    rows.append(Row(VECTOR, CARTPOLE_VECTOR, REFERENCE_VECTOR_N, max(r.ref_env_steps_per_s or 0.0 for r in vector)))
    rows += vector
    return with_ratios(rows)


def with_ratios(rows: Sequence[Row]) -> list[Row]:
    """``rows`` with ``ratio`` = env-steps/s over the CartPole counterpart timed with the row
    (``ref_env_steps_per_s``), else over the group's CartPole reference row (1 for it)."""
    ref = {row.group: row.env_steps_per_s for row in rows if row.what == REFERENCE[row.group]}
    if set(ref) != {row.group for row in rows} or not all(ref.values()):
        raise ValueError("every group of rows needs its measured CartPole reference row")
    return [Row(r.group, r.what, r.num_envs, r.env_steps_per_s,
                None if r.env_steps_per_s is None else r.env_steps_per_s / (r.ref_env_steps_per_s or ref[r.group]),
                r.note, r.ref_env_steps_per_s) for r in rows]


# ---------------------------------------------------------------------------------------------- construction
def construction_probe(env_id: str) -> dict[str, Any]:
    """In this process: the first and a second ``gym.make(env_id)`` timed, and the pickled size of the env.

    Meaningful only as the first VMIMO construction of a process (:func:`measure_construction` runs it in a
    fresh one)."""
    t0 = time.perf_counter()
    env = gym.make(env_id)
    t1 = time.perf_counter()
    second = gym.make(env_id)
    t2 = time.perf_counter()
    size = len(pickle.dumps(env.unwrapped))
    env.close()
    second.close()
    return {"env_id": env_id, "first_make_s": t1 - t0, "second_make_s": t2 - t1, "pickled_bytes": size}


def measure_construction(env_ids: Sequence[str] = SHIP_IDS) -> list[ShipRow]:
    """:func:`construction_probe` of each id, each in a fresh interpreter running this script (one at a time)."""
    out = []
    for env_id in env_ids:
        res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe", env_id], check=True,
                             capture_output=True, text=True, env=dict(os.environ))
        out.append(ShipRow(**json.loads(res.stdout.strip().splitlines()[-1])))
    return out


# ---------------------------------------------------------------------------------------------- report
def _rate(row: Row) -> str:
    return row.note if row.env_steps_per_s is None else f"{row.env_steps_per_s:,.0f}"


def _ratio(row: Row) -> str:
    return "–" if row.ratio is None else f"{row.ratio:.3f}"


def breakdown_markdown(stages: Sequence[StageRow]) -> str:
    """The breakdown table, as Markdown."""
    lines = [f"| where a {BREAKDOWN_ID} step's time goes (single env) | µs per step | share |", "|---|---:|---:|"]
    lines += [f"| {r.what} | {r.us_per_step:.2f} | {100 * r.share:.0f} % |" for r in stages]
    return "\n".join(lines) + "\n"


def markdown_tables(rows: Sequence[Row], ship: Sequence[ShipRow]) -> str:
    """The steps table and the construction table, as Markdown."""
    lines = ["| what | N envs | env-steps/s | vs CartPole counterpart |", "|---|---:|---:|---:|"]
    lines += [f"| {r.what} | {r.num_envs} | {_rate(r)} | {_ratio(r)} |" for r in rows]
    lines += ["", "| env id | first gym.make in a process (s) | second gym.make (ms) | pickled env (MB) |",
              "|---|---:|---:|---:|"]
    lines += [f"| {s.env_id} | {s.first_make_s:.2f} | {1e3 * s.second_make_s:.1f} | {s.pickled_bytes / 1e6:.2f} |"
              for s in ship]
    return "\n".join(lines) + "\n"


SINGLE_GOAL, VECTOR_GOAL = 0.25, 0.05  # the speed goals: single env vs CartPole-v1, native vector env vs CartPole's


def goals_line(rows: Sequence[Row]) -> str:
    """Which rows of this run meet the speed goals (single ``gym.make`` rows ≥ :data:`SINGLE_GOAL`, the
    ``VMIMOVectorEnv`` rows at N = 1024 on their default threads ≥ :data:`VECTOR_GOAL`), from the ratios."""
    single = [r for r in rows if r.group == SINGLE and r.what.startswith("VMIMO") and r.ratio is not None]
    default = ", " + threads_text(auto_threads(REFERENCE_VECTOR_N))  # the default rows' name ends with it
    vector = [r for r in rows if r.what.startswith("VMIMOVectorEnv") and r.num_envs == REFERENCE_VECTOR_N
              and r.what.endswith(default) and r.ratio is not None]

    def part(name: str, these: Sequence[Row], goal: float) -> str:
        if not these:
            return f"{name}: not measured"
        ratios = [r.ratio or 0.0 for r in these]
        met = sum(x >= goal for x in ratios)
        return (f"{name} ≥ {goal:g}×: {met} of {len(these)} rows meet it in this run (ratios "
                f"{min(ratios):.3f}–{max(ratios):.3f})")

    return ("Goals: " + part("single env via gym.make", single, SINGLE_GOAL) + "; "
            + part(f"native vector env at N = {REFERENCE_VECTOR_N}, default threads", vector, VECTOR_GOAL) + ".")


def text_tables(rows: Sequence[Row], ship: Sequence[ShipRow]) -> str:
    """The same tables as aligned plain text (the default output)."""
    width = max(len(r.what) for r in rows)
    lines = [f"{'what':<{width}}  {'N':>5}  {'env-steps/s':>12}  {'vs CartPole':>11}"]
    lines += [f"{r.what:<{width}}  {r.num_envs:>5}  {_rate(r):>12}  {_ratio(r):>11}" for r in rows]
    lines += ["", f"{'env id':<{width}}  {'first make s':>12}  {'second ms':>9}  {'pickled MB':>10}"]
    lines += [f"{s.env_id:<{width}}  {s.first_make_s:>12.2f}  {1e3 * s.second_make_s:>9.1f}  "
              f"{s.pickled_bytes / 1e6:>10.2f}" for s in ship]
    return "\n".join(lines) + "\n"


def method_line(budget: Budget, load: float | None) -> str:
    """How the figures were taken (the README block says it beside the tables)."""
    load_text = "" if load is None else f"; 1-minute load average {load:.1f} at the start"
    return (f"Best of {budget.repeats} timed repeats per row after a warm-up, random actions sampled before timing "
            f"({budget.single_steps:,} steps per repeat of a single row, {budget.vector_env_steps:,} env steps of a "
            f"vector row, {budget.cartpole_single_factor} and {budget.cartpole_vector_factor} times more for the "
            f"CartPole references); single rows are compared with CartPole-v1 through gym.make, vector rows with "
            f"CartPoleVectorEnv at N = {REFERENCE_VECTOR_N}, each row timed in alternation with its reference "
            f"(reference, row, reference, row, ...: a drift of the machine's speed moves both sides of a ratio), "
            f"the reference rows giving the best reference figure of the run; each construction in a fresh "
            f"process{load_text}.")


def readme_block(rows: Sequence[Row], ship: Sequence[ShipRow], argv: Sequence[str], budget: Budget,
                 load: float | None, stages: Sequence[StageRow] = ()) -> str:
    """What goes between the README markers: the tables, the method, the command and the machine."""
    breakdown = "\n" + breakdown_markdown(stages) if stages else ""
    return (markdown_tables(rows, ship) + breakdown + "\n" + goals_line(rows) + "\n\n" + method_line(budget, load)
            + "\n\n"
            + f"Measured by `{provenance.command_line(PROGRAM, argv)}`. "
            + provenance.machine_line(extra_packages=("mobile-env",)) + "\n")


def write_readme(path: Path, block: str) -> None:
    """Replace the bench_env block of ``path`` with ``block`` (the rest of the file untouched)."""
    text = path.read_text(encoding="utf-8")
    path.write_text(provenance.replace_block(text, block, MARK_START, MARK_END), encoding="utf-8")


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run (short rows, noisier figures)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per row, best reported "
                                                                  "(default 3, 2 with --quick)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--readme", default=None, help="replace the bench_env block of this file with the tables")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)  # one construction probe, JSON on stdout
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    warnings.filterwarnings("ignore", message=".*is out of date.*")  # gym.make of a v0 id while v1 exists
    if args.probe:
        print(json.dumps(construction_probe(args.probe)))
        return
    readme = Path(args.readme) if args.readme else None
    if readme is not None:  # fail before minutes of timing, not after
        provenance.replace_block(readme.read_text(encoding="utf-8"), "", MARK_START, MARK_END)
    budget = (Budget.quick if args.quick else Budget.full)(*([args.repeats] if args.repeats else []))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = measure_steps(budget, log=lambda what: print(f"  timed {what}", file=sys.stderr))
    ship = measure_construction()
    stages = step_breakdown(BREAKDOWN_ID, budget)
    print(markdown_tables(rows, ship) if args.markdown else text_tables(rows, ship))
    print(breakdown_markdown(stages))
    print(goals_line(rows))
    print(method_line(budget, load))
    if readme is not None:
        write_readme(readme, readme_block(rows, ship, raw, budget, load, stages))
        print(f"Updated the bench_env block of {readme}")


if __name__ == "__main__":
    main()
