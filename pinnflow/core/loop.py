"""The run loop every iterative solver uses (Adam training, Gauss–Newton, L-BFGS, PIS/DIS, ...).

A solver supplies a state (a NamedTuple of arrays: parameters, optimiser state, keys) and a pure
`step(state, aux) -> (state, info)` whose `info` is a dict of scalars. The loop does the rest:

- runs `chunk` steps per compiled call under `lax.scan`, with one host synchronisation per chunk;
- calls `prepare(state, step) -> (state, aux)` on the host before each chunk (e.g. refresh a trajectory cache);
- keeps the history (one row per chunk: the chunk means of `info`, the step, wall seconds, `extra_row`);
- checks `info[finite_key]`: on a non-finite value the last good state is kept (and checkpointed), then
  `TrainingDiverged` is raised (`on_nonfinite="raise"`) or the loop stops (`"stop"`);
- writes atomic checkpoints to a `RunDir` every `checkpoint_every` steps, at the end, and on Ctrl-C;
- resumes exactly from a checkpoint (same state, step, history, RNG stream);
- shows a progress bar (on a terminal; elsewhere a log line to stderr every tenth of the run), and times the
  steps in one place: each chunk length is compiled ahead of time (`compile_seconds`), so a chunk's wall
  time is execution only, and `seconds_per_it` is the median over chunks of (chunk seconds / chunk steps).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from tqdm.auto import tqdm

from pinnflow.core.parallel import DataParallel
from pinnflow.core.rundir import Progress, RunDir

__all__ = ["TrainingDiverged", "LoopResult", "run_loop", "median_step_seconds"]

STATE = "state"  # the checkpoint's tree name for the solver state


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the last good state was kept."""


class LoopResult(NamedTuple):
    """The final state and the progress (step, seconds, history rows, seconds per step)."""

    state: Any
    progress: Progress


def median_step_seconds(history: list[dict]) -> float:
    """The loop's one timing definition: the median over chunks (history rows, across resumes) of seconds per
    step, compilation excluded (it is timed apart); NaN before any chunk."""
    steps = np.diff([0] + [row["step"] for row in history])
    seconds = np.diff([0.0] + [row["seconds"] for row in history])
    return float(np.median(seconds / steps)) if len(history) else float("nan")


def run_loop(
    step: Callable[[Any, Any], tuple[Any, dict]],
    state: Any,
    *,
    steps: int,
    chunk: int = 1,
    name: str = "",
    rundir: RunDir | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    parallel: DataParallel | None = None,
    prepare: Callable[[Any, int], tuple[Any, Any]] | None = None,
    extra_row: Callable[[int], dict] | None = None,
    on_chunk: Callable[[Any, Progress], None] | None = None,
    stop_when: Callable[[Any, Progress], bool] | None = None,
    export: Callable[[Any], dict] | None = None,
    progress: bool | None = None,
    max_seconds: float | None = None,
    finite_key: str = "loss",
    on_nonfinite: str = "raise",
    diverged_hint: str = "",
) -> LoopResult:
    """Iterate `step` from `state` up to `steps` steps (see the module docstring); `steps` counts from 0, so a
    resumed loop runs the remaining ones.

    With `rundir` and `resume`, the state and progress come from its checkpoint when there is one (the state
    is restructured like `state`); `export(state)` adds named trees to every checkpoint (e.g. the parameters, for
loading without the solver state). `on_chunk(state, progress)` sees every accepted chunk; `stop_when(state,
    progress)` (after `on_chunk`) ends the loop early when true (e.g. a convergence criterion); `max_seconds`
    stops after the first chunk that ends past that much wall time of this call."""
    if on_nonfinite not in ("raise", "stop"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'stop', got {on_nonfinite!r}")
    prog = Progress()
    if rundir is not None and resume and rundir.exists():
        trees, prog = rundir.load({STATE: state})
        state = trees[STATE]
    if parallel is not None:
        state = parallel.replicate(state)

    def save():
        if rundir is not None:
            rundir.save({STATE: state, **(export(state) if export is not None else {})}, prog)

    run_chunk = jax.jit(lambda s, aux, n: jax.lax.scan(lambda c, _: step(c, aux), s, None, length=n),
                        static_argnums=2)
    compiled: dict[int, Any] = {}

    def compiled_chunk(state_in, aux, n):
        """The chunk of n steps, compiled ahead of time on first use (timed as compilation, not as steps)."""
        if n not in compiled:
            t0 = time.perf_counter()
            compiled[n] = run_chunk.lower(state_in, aux, n).compile()
            prog.compile_seconds += time.perf_counter() - t0
        return compiled[n]

    tty = sys.stderr.isatty()
    show = tty if progress is None else progress
    log_every = max(1, -(-steps // chunk) // 10) if progress is None and not tty else 0
    bar = tqdm(total=steps, initial=prog.step, disable=not show, desc=name, unit="it", dynamic_ncols=True)
    chunks = 0
    t_start = time.perf_counter()
    try:
        while prog.step < steps:
            if max_seconds is not None and time.perf_counter() - t_start >= max_seconds:
                break
            n = min(chunk, steps - prog.step)
            t0 = time.perf_counter()
            state_in, aux = (state, None) if prepare is None else prepare(state, prog.step)
            dt = time.perf_counter() - t0  # host-side preparation counts as step time
            fn = compiled_chunk(state_in, aux, n)
            t0 = time.perf_counter()
            new_state, info = fn(state_in, aux)
            info = {k: np.asarray(v) for k, v in info.items()}  # one host sync per chunk
            dt += time.perf_counter() - t0
            bad = ~np.isfinite(info[finite_key])
            if np.any(bad):
                first = prog.step + int(np.argmax(bad))
                save()
                if on_nonfinite == "stop":
                    break
                where = f" in {rundir.path}" if rundir is not None else ""
                raise TrainingDiverged(f"{name}: non-finite {finite_key} at step {first}; the state of step "
                                       f"{prog.step} is kept{where}. {diverged_hint}".rstrip())
            state = new_state
            prog.step += n
            prog.seconds += dt
            chunks += 1
            row = {"step": prog.step, **{k: float(np.mean(v)) for k, v in info.items()},
                   **(extra_row(prog.step) if extra_row is not None else {}), "seconds": prog.seconds}
            prog.history.append(row)
            prog.seconds_per_it = median_step_seconds(prog.history)
            if on_chunk is not None:
                on_chunk(state, prog)
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()
                             if k not in ("step", "seconds") and isinstance(v, float)})
            bar.update(n)
            if log_every and (chunks % log_every == 0 or prog.step == steps):
                print(f"{name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in row.items()), file=sys.stderr, flush=True)
            if checkpoint_every and (prog.step % checkpoint_every == 0 or prog.step == steps):
                save()
            if stop_when is not None and stop_when(state, prog):
                break
    except KeyboardInterrupt:
        save()
        raise
    finally:
        bar.close()
    if rundir is not None and (not checkpoint_every or prog.step % checkpoint_every):
        save()  # the final state of a loop stopped early (time limit, non-finite stop)
    return LoopResult(state, prog)
