"""Time to quality: 1 − ESS against optimisation wall seconds for Adam only, and Adam + Gauss–Newton and
Adam + L-BFGS from the same Adam pretraining, on the problems of Table 3 (log_ce at the `cpu` budget's
Table 3 setting: 40k Adam steps of batch 256 as the pretraining).

- `adam`: one Adam run whose learning-rate schedule spans the whole time budget (steps estimated from the
  pretraining's seconds per step), so its last point is the Adam-only row of Table 3 at that wall-clock.
  Its first `pretrain_steps` are not the pretraining (another schedule horizon); both start at step 0.
- `adam_gn…`: the pretraining, then Gauss–Newton in segments of a few steps, resumed exactly from its
  checkpoint (damping and last direction included), one variant per `--gn` entry (`GN_VARIANTS`: batch size,
  precision).
- `adam_lbfgs`: the pretraining, then L-BFGS in segments of `--lbfgs-every` steps (each segment a fresh
  L-BFGS memory, as after every batch redraw).

The x axis is the time the optimisers ran (the loop's execution seconds: compilation and evaluation excluded);
every point is evaluated with `pf.evaluate` on `--n-eval` ODE samples (same key for every point).

    python -m experiments.time_to_quality [--problems gmm many_well_5] [--seconds 300] [--out NAME]

Writes experiments/results/<NAME>.csv (one row per point; rows of other problems in an existing CSV are kept)
and <NAME>.png (one panel per problem). The committed results ran one process per problem, each on its own
core (`--out time_to_quality_gmm` / `_mw5`), and `--replot` drew the joint figure `time_to_quality.png`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import pinnflow as pf
from experiments.framework.budget import Budget
from experiments.tables.training import fresh_loss, make_target, seconds_per_it
from pinnflow.core.precision import precision
from pinnflow.pinn.finetune import lbfgs

RESULTS = Path(__file__).parent / "results"
GN_VARIANTS = {  # name -> (gn overrides, steps per evaluated segment); "gn" is the cpu budget's Table 3 setting
    "gn": ([], 4),  # N = 4096, float64: 11.5-12.6 s a step here, most of it the 4096 x 4096 Gramian JJᵀ
    "gn_n1024": (["gn.batch_size=1024"], 20),  # a Gramian 16x cheaper
    "gn_n1024_f32": (["gn.batch_size=1024", "gn.precision=float32"], 40),
}


def base_config(problem: str, budget: str) -> pf.Config:
    b = Budget.load(budget)
    cfg = pf.Config(loss="log_ce", problem=problem, seed=0)
    return cfg.override(b.overrides("table3", problem, "adam_gn"))


def point(run: pf.Run, method: str, problem: str, seconds: float, step: int, n_eval: int, loss_n: int) -> dict:
    with precision(run.config.precision):
        m, _ = pf.evaluate(run, n=n_eval, key=jax.random.PRNGKey(7))
        loss = fresh_loss(run, loss_n) if loss_n else np.nan
    row = {"problem": problem, "method": method, "seconds": seconds, "step": step, "one_minus_ess": 1 - m["ess"],
           "delta_log_z": m.get("delta_log_z", np.nan), "loss": loss}
    print(f"{problem:>12} {method:>14} {seconds:8.1f}s step {step:>7}  1-ESS {row['one_minus_ess']:.3g}  "
          f"loss {loss:.4g}", flush=True)
    return row


def curves(problem: str, args) -> list[dict]:
    cfg = base_config(problem, args.budget)
    pre_steps = args.pretrain_steps or cfg.optim.steps
    target = make_target(cfg)
    work = Path(tempfile.mkdtemp(prefix=f"ttq-{problem}-"))
    rows = []
    try:
        pre_cfg = cfg.override([f"optim.steps={pre_steps}", f"optim.checkpoint_every={pre_steps}"])
        pre = pf.train(target, pre_cfg, progress=False)
        t_pre, spi = pre.train_seconds, seconds_per_it(pre)
        rows.append(point(pre, "pretrain", problem, t_pre, pre.step, args.n_eval, args.loss_n))

        for name in args.gn:
            overrides, every = GN_VARIANTS[name]
            gn_cfg = pre.config.override(overrides)
            gdir, done, gn_run = work / name, 0, pre
            while True:
                done += every
                gn_run = pf.gauss_newton(pre, config=gn_cfg.override([f"gn.steps={done}"]), run_dir=gdir,
                                         resume=done > every, progress=False)
                s = float(gn_run.history["seconds"].iloc[-1])
                rows.append(point(gn_run, f"adam_{name}", problem, t_pre + s, gn_run.step, args.n_eval,
                                  args.loss_n))
                if s >= args.seconds:
                    break

        lb, s, done = pre, 0.0, 0
        while s < args.seconds:
            lb = lbfgs(lb, steps=args.lbfgs_every, batch_size=cfg.gn.batch_size, resample_every=100)
            s, done = lb.train_seconds - t_pre, done + lb.step
            rows.append(point(lb, "adam_lbfgs", problem, lb.train_seconds, done, args.n_eval, args.loss_n))

        total = pre_steps + int(args.seconds / spi)
        every = max(cfg.optim.chunk, int(round(total / args.adam_points / cfg.optim.chunk)) * cfg.optim.chunk)
        total = int(np.ceil(total / every) * every)
        adam_cfg = cfg.override([f"optim.steps={total}", f"optim.checkpoint_every={total}"])
        pf.train(target, adam_cfg, progress=False, monitor=lambda r: r.step % every or rows.append(
            point(r, "adam", problem, r.train_seconds, r.step, args.n_eval, args.loss_n)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(df["problem"]))
    fig, axes = plt.subplots(1, len(problems), figsize=(5.5 * len(problems), 4), squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        d = df[df["problem"] == problem]
        pre = d[d["method"] == "pretrain"]
        for method, g in d[d["method"] != "pretrain"].groupby("method", sort=False):
            if method != "adam":  # continuations start from the pretraining point
                g = pd.concat([pre, g])
            ax.plot(g["seconds"], g["one_minus_ess"], marker="o", ms=3, label=method)
        ax.plot(pre["seconds"], pre["one_minus_ess"], "k*", ms=10, label="pretraining (40k Adam)")
        ax.set_yscale("log")
        ax.set_xlabel("optimisation wall seconds (one CPU core)")
        ax.set_ylabel("1 − ESS")
        ax.set_title(problem)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", nargs="*", default=["gmm", "many_well_5"])
    ap.add_argument("--budget", default="cpu", help="budget whose Table 3 setting is used")
    ap.add_argument("--pretrain-steps", type=int, default=0, help="0: the budget's")
    ap.add_argument("--seconds", type=float, default=300.0, help="optimisation seconds after the pretraining")
    ap.add_argument("--gn", nargs="*", default=list(GN_VARIANTS), choices=list(GN_VARIANTS))
    ap.add_argument("--lbfgs-every", type=int, default=800)
    ap.add_argument("--adam-points", type=int, default=10)
    ap.add_argument("--n-eval", type=int, default=20000)
    ap.add_argument("--loss-n", type=int, default=16384)
    ap.add_argument("--out", default="time_to_quality")
    ap.add_argument("--replot", nargs="*", metavar="CSV",
                    help="only draw <out>.png from these CSVs of earlier runs (e.g. one per problem)")
    args = ap.parse_args(argv)
    if args.replot:
        df = pd.concat([pd.read_csv(p) for p in args.replot])
        plot(df, RESULTS / f"{args.out}.png")
        return df
    t0 = time.perf_counter()
    rows = [r for p in args.problems for r in curves(p, args)]
    df = pd.DataFrame(rows)
    df["machine_note"] = "one process per problem, pinned to one core (taskset), 2-core x86_64 CPU"
    df["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.out}.csv"
    if out.exists():
        old = pd.read_csv(out)
        df = pd.concat([old[~old["problem"].isin(args.problems)], df])
    df.to_csv(out, index=False)
    plot(df, RESULTS / f"{args.out}.png")
    print(f"wrote {out} and {out.with_suffix('.png')} in {time.perf_counter() - t0:.0f} s")
    return df


if __name__ == "__main__":
    main()
