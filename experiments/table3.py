"""Reproduce Table 3 of paper 003: Adam only vs Adam + Gauss–Newton for `log_ce`, at equal wall-clock.

    python -m experiments.table3 [--budget smoke|cpu] [--problems gmm many_well_5] [--out runs/table3]

For each problem: Adam for `adam_steps` (time T₁), then Gauss–Newton (time T₂); the Adam-only row is a
separate Adam run given the same total wall-clock, i.e. adam_steps + T₂ / (s/it) steps, and the
Adam+L-BFGS row continues the same Adam run with optax's L-BFGS for T₂ seconds. Both are scored
on the same fresh collocation batch (loss) and the same number of ODE samples (metrics); the paper's rows
are printed beside ours. Writes experiments/results/table3.csv and table3.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

import pinnflow as pf
import problems
from pinnflow.lbfgs import lbfgs
from pinnflow.train import build, make_loss_fn

RESULTS = Path(__file__).parent / "results"
CONFIGS = Path(__file__).parent / "configs"

# Paper 003, Table 3 (loss, ΔlogZ, W_γ², 1 − ESS, Δstd, s/it on a GPU)
PAPER = {
    ("gmm", "Adam"): (4.62e-4, 3.73e-5, 2.03e-2, 3.15e-5, 3.16e-3, 0.007),
    ("gmm", "Adam+GN"): (1.62e-4, 2.91e-6, 2.03e-2, 7.23e-6, 1.33e-3, 6.071),
    ("many_well_5", "Adam"): (3.27e-3, 8.79e-5, 1.18e-1, 6.62e-4, 3.06e-4, 0.008),
    ("many_well_5", "Adam+GN"): (2.57e-3, 2.15e-4, 1.18e-1, 1.56e-4, 1.32e-4, 7.486),
}
COLUMNS = ("loss", "delta_log_z", "sinkhorn", "1-ess", "delta_std", "seconds_per_it")

BUDGETS = {
    "smoke": ["optim.steps=2000", "optim.chunk=500", "optim.checkpoint_every=1000", "gn.steps=3",
              "gn.batch_size=1024", "gn.val_batch_size=2048", "sampler.n_eval=5000", "sampler.sinkhorn_n=200"],
    "cpu": [],
}


def fresh_loss(run, n: int = 16384, seed: int = 1234) -> float:
    """The run's loss on a fixed fresh batch of n collocation points (the same for every row)."""
    loss, setup, domain, graphdef, _ = build(run.target, run.config)
    fn = make_loss_fn(loss, setup, graphdef, pf.EXACT, run.config.alpha)
    xs, ts = domain.sample(jax.random.PRNGKey(seed), n)
    total = 0.0
    for i in range(0, n, 4096):  # bounded memory
        total += float(fn(run.params, xs[i:i + 4096], ts[i:i + 4096], jax.random.PRNGKey(0))[0]) * len(ts[i:i + 4096])
    return total / n


def score(run, label: str, problem: str, wall: float) -> dict:
    pf.set_precision(run.config.precision)  # a float64 fine-tuning is scored in float64
    m, _ = pf.evaluate(run, key=jax.random.PRNGKey(99))
    return {"problem": problem, "optimizer": label, "loss": fresh_loss(run), "delta_log_z": m.get("delta_log_z"),
            "sinkhorn": m.get("sinkhorn"), "1-ess": 1 - m["ess"], "delta_std": m.get("delta_std"),
            "seconds_per_it": run.seconds_per_it, "wall_seconds": wall, "steps": run.step,
            "sinkhorn_def": f"{m.get('sinkhorn_cost')}, eps={m.get('sinkhorn_epsilon')}, n={m.get('sinkhorn_n')}",
            "n_eval": m["n"]}


def run_problem(problem: str, budget: str, out: Path, overrides: list[str] = ()) -> list[dict]:
    config = pf.Config.from_yaml(CONFIGS / f"table3_{problem}.yaml").override(BUDGETS[budget] + list(overrides))
    target = problems.get(config.problem, **config.problem_params)
    shutil.rmtree(out / problem, ignore_errors=True)
    t0 = time.perf_counter()
    adam = pf.train(target, config, run_dir=out / problem / "adam")
    t_adam = time.perf_counter() - t0
    t1 = time.perf_counter()
    gn = pf.gauss_newton(adam, run_dir=out / problem / "adam" / "finetune")
    t_gn = time.perf_counter() - t1
    extra = int(round(t_gn / adam.seconds_per_it))
    chunk = config.optim.chunk
    steps = int(np.ceil((config.optim.steps + extra) / chunk) * chunk)
    long_cfg = config.override([f"optim.steps={steps}", f"optim.checkpoint_every={steps}"])
    t2 = time.perf_counter()
    adam_long = pf.train(target, long_cfg, run_dir=out / problem / "adam_long")
    t_long = time.perf_counter() - t2
    t3 = time.perf_counter()
    lb = lbfgs(adam, steps=10**7, seconds=t_gn, batch_size=config.gn.batch_size, resample_every=100)
    t_lb = time.perf_counter() - t3
    return [score(adam, "Adam (pretraining)", problem, t_adam),
            score(adam_long, "Adam", problem, t_long), score(gn, "Adam+GN", problem, t_adam + t_gn),
            score(lb, "Adam+L-BFGS", problem, t_adam + t_lb)]


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    ap.add_argument("--problems", nargs="*", default=["gmm", "many_well_5"])
    ap.add_argument("--out", default="runs/table3")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every problem")
    args = ap.parse_args(argv)
    rows = []
    for problem in args.problems:
        rows += run_problem(problem, args.budget, Path(args.out), args.set)
        table = write(rows, args)  # after every problem, so a long run keeps what it finished
    return table


def write(rows: list[dict], args) -> pd.DataFrame:
    ours = pd.DataFrame(rows)
    paper = pd.DataFrame([{"problem": p, "optimizer": o, **dict(zip(COLUMNS, v, strict=True))}
                          for (p, o), v in PAPER.items() if p in set(ours["problem"])])
    table = ours.merge(paper, on=["problem", "optimizer"], suffixes=("", " (paper)"), how="left")
    RESULTS.mkdir(exist_ok=True)
    suffix = ("" if args.budget == "cpu" else f"_{args.budget}") + "".join(f"_{p}" for p in ours["problem"].unique())
    table.to_csv(RESULTS / f"table3{suffix}.csv", index=False)
    cols = ["problem", "optimizer"] + [c for col in COLUMNS for c in (col, f"{col} (paper)")] + ["wall_seconds"]
    md = markdown(table[cols])
    (RESULTS / f"table3{suffix}.md").write_text(
        f"# Table 3 (paper 003) on this machine, budget `{args.budget}`\n\n"
        "Adam-only is given the same wall-clock as Adam + Gauss-Newton. Loss on a fixed fresh batch of 16384 points;"
        f" metrics on {int(ours['n_eval'].iloc[0])} ODE samples; Sinkhorn: {ours['sinkhorn_def'].iloc[0]}.\n\n"
        + md + "\n")
    print(table[cols].to_string(index=False))
    return table


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table with numbers to 3 significant digits."""
    fmt = lambda v: ("–" if v != v else f"{v:.3g}") if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
