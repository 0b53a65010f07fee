"""Start-up and evaluation benchmark (issue 12, item 6): how long a user waits for the `pinnflow` command, and
what evaluating a trained run costs next to training it.

- start-up: wall seconds of `pinnflow --help`, `pinnflow list`, `python -c "import pinnflow"` (names load
  on first use), the same touching `pf.train` and `pf.evaluate` (JAX, Flax, optax, pandas loaded) and
  `python -c "pass"` (the interpreter alone), each in a fresh subprocess, best of `--reps`;
- evaluation, per loss on GMM with the default config (`pf.Config(loss=...)`, optim.batch_size 256): the
  seconds of 2000 training steps after compilation (the run's `seconds_per_it` × 2000, from `pf.train` with
  `--steps` steps in chunks of 1000) against the wall seconds of `pf.evaluate(run, n=20000)`: the first call
  (compilation, ott-jax's import and the Sinkhorn solve included) and a second call. Each loss runs in a
  fresh process, as a user's `train` + `evaluate` would.

Goals: `--help` under 2 s; evaluation of 20k samples no slower than 2000 training steps (ratio <= 1).
`--sampler-steps` evaluates with another number of RK4 steps than the default `sampler.steps` (the trade-off
of accuracy against time; the CSV records the steps used).

    python -m experiments.bench_startup_eval [--losses log_ce log_fp] [--n 20000] [--steps 3000] [--reps 3]
        [--sampler-steps K] [--skip-eval] [--out bench_startup_eval.csv]

On a shared machine pin it to one core (`taskset -c 1 python -m experiments.bench_startup_eval`): training and
evaluation then run on the same single core. Prints a table and writes experiments/results/<out>.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
HELP_GOAL_S = 2.0


def _command(args: list[str]) -> list[str]:
    """The installed `pinnflow` console script of this interpreter's environment, or the same entry point."""
    script = Path(sys.executable).with_name("pinnflow")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from pinnflow.cli import main; sys.exit(main())", *args]


def wall_seconds(cmd: list[str], reps: int) -> float:
    """Best wall time of `reps` fresh runs of `cmd` (output discarded; a failing command raises)."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def startup_rows(reps: int) -> list[dict]:
    cases = {
        "pinnflow --help": _command(["--help"]),
        "pinnflow list": _command(["list"]),
        "import pinnflow": [sys.executable, "-c", "import pinnflow"],
        "import pinnflow + pf.train, pf.evaluate": [sys.executable, "-c",
                                                    "import pinnflow as pf; pf.train; pf.evaluate"],
        "python (interpreter alone)": [sys.executable, "-c", "pass"],
    }
    rows = []
    for what, cmd in cases.items():
        s = wall_seconds(cmd, reps)
        row = {"what": what, "loss": "", "seconds": s}
        if what == "pinnflow --help":
            row.update(goal=f"< {HELP_GOAL_S:g} s", met=s < HELP_GOAL_S)
        rows.append(row)
        print(f"{what:<40} {s:6.2f} s (best of {reps})", flush=True)
    return rows


def evaluation_rows(loss: str, n: int, steps: int, sampler_steps: int | None = None) -> list[dict]:
    import pinnflow as pf
    import problems

    target = problems.get("gmm")
    sets = [f"optim.steps={steps}", "optim.chunk=1000", f"optim.checkpoint_every={steps}"]
    if sampler_steps is not None:
        sets.append(f"sampler.steps={sampler_steps}")
    config = pf.Config(loss=loss, problem="gmm").override(sets)
    run = pf.train(target, config, progress=False)
    train_2000 = run.seconds_per_it * 2000
    rows = [{"what": "2000 training steps (after compilation)", "loss": loss, "seconds": train_2000,
             "batch_size": config.optim.batch_size}]
    print(f"{loss}: 2000 training steps {train_2000:.2f} s ({run.seconds_per_it * 1e3:.2f} ms/step, batch "
          f"{config.optim.batch_size})", flush=True)
    for call in ("first", "second"):
        t0 = time.perf_counter()
        metrics, _ = pf.evaluate(run, n=n)
        s = time.perf_counter() - t0
        ratio = s / train_2000
        rows.append({"what": f"evaluate n={n}, {call} call", "loss": loss, "seconds": s, "n": n,
                     "sampler_steps": config.sampler.steps, "ratio_to_2000_steps": ratio, "goal": "ratio <= 1",
                     "met": ratio <= 1.0, "ess": metrics.get("ess")})
        print(f"{loss}: evaluate n={n} ({call} call) {s:.2f} s = {ratio:.2f} x 2000 training steps "
              f"(ESS {metrics.get('ess', float('nan')):.4f})", flush=True)
    return rows


def evaluation_rows_in_subprocess(loss: str, n: int, steps: int, sampler_steps: int | None) -> list[dict]:
    """`evaluation_rows` in a fresh interpreter (its progress lines pass through; its rows come back as JSON)."""
    cmd = [sys.executable, "-m", "experiments.bench_startup_eval", "--one-loss", loss, "--n", str(n),
           "--steps", str(steps)] + ([] if sampler_steps is None else ["--sampler-steps", str(sampler_steps)])
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]).stdout
    lines = out.strip().splitlines()
    print("\n".join(lines[:-1]), flush=True)
    return json.loads(lines[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--losses", nargs="*", default=["log_ce", "log_fp"])
    ap.add_argument("--n", type=int, default=20000, help="evaluation samples")
    ap.add_argument("--steps", type=int, default=3000, help="training steps (the first chunk compiles)")
    ap.add_argument("--reps", type=int, default=3, help="start-up runs per command (best is kept)")
    ap.add_argument("--sampler-steps", type=int, default=None, help="RK4 steps of the evaluation ODE "
                    "(default: the config's sampler.steps)")
    ap.add_argument("--skip-eval", action="store_true", help="start-up times only")
    ap.add_argument("--out", default="bench_startup_eval.csv")
    ap.add_argument("--one-loss", help=argparse.SUPPRESS)  # internal: one loss's evaluation rows as JSON
    args = ap.parse_args(argv)
    if args.one_loss:
        rows = evaluation_rows(args.one_loss, args.n, args.steps, args.sampler_steps)
        print(json.dumps(rows, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
        return rows

    rows = startup_rows(args.reps)
    if not args.skip_eval:
        for loss in args.losses:
            rows += evaluation_rows_in_subprocess(loss, args.n, args.steps, args.sampler_steps)

    import jax
    import pandas as pd

    df = pd.DataFrame(rows)
    df["machine"] = (f"{platform.machine()}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cpus, "
                     f"{jax.devices()[0].platform}")
    df["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(exist_ok=True)
    df.to_csv(RESULTS / args.out, index=False)
    print(df.drop(columns=["machine", "date"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return df


if __name__ == "__main__":
    main()
