"""Table 3 of paper 003: `log_ce` with Adam only (`adam`) vs Adam pretraining + Gauss–Newton (`adam_gn`);
also the pretraining itself (`adam_pretrain`) and Adam + L-BFGS (`adam_lbfgs`), which continues the same
pretraining. With the table param `match_wall_clock` (cpu budget) Adam-only and L-BFGS get the wall-clock of
Adam + Gauss–Newton; without (paper budget) Adam-only runs `optim.steps` and the pretraining
`pretrain_steps`, as in the paper (200k vs 100k + 500 GN). The loss column is evaluated on a fixed fresh
batch of `loss_n` uniform points."""

from __future__ import annotations

import math
import shutil
import time

import pinnflow as pf
from experiments.framework.cells import TABLES, Cell, Context, Table
from experiments.tables import LOG_CE_METRICS
from experiments.tables.training import make_target, score, seconds_per_it, train_run
from pinnflow.pinn.finetune import FINETUNE_DIR, lbfgs
from pinnflow.pinn.train import CONFIG

__all__ = ["PROBLEMS", "METHODS", "run_cell"]

PROBLEMS = ("gmm", "many_well_5")
METHODS = ("adam_pretrain", "adam_gn", "adam_lbfgs", "adam")  # execution order: adam_gn before those it times


def _pretrain(cell: Cell, ctx: Context) -> tuple[pf.Run, pf.Target, pf.Config]:
    """The Adam pretraining shared by the adam_pretrain, adam_gn and adam_lbfgs cells of a problem and seed."""
    p = ctx.params(cell)
    config = ctx.config(cell, "log_ce")
    steps = int(p.get("pretrain_steps", config.optim.steps))
    config = config.override([f"optim.steps={steps}"])
    target = make_target(config)
    run = train_run(target, config, ctx.run_dir / f"{cell.problem}-pretrain-seed{cell.seed}", ctx.progress)
    return run, target, config


def run_cell(cell: Cell, ctx: Context) -> dict:
    p = ctx.params(cell)
    loss_n = p.get("loss_n", 16384)
    if cell.method == "adam_pretrain":
        run, _, _ = _pretrain(cell, ctx)
        return score(run, loss_n)
    if cell.method == "adam_gn":
        run, _, _ = _pretrain(cell, ctx)
        pre = {"pretrain_seconds": run.train_seconds, "pretrain_seconds_per_it": seconds_per_it(run),
               "pretrain_steps": run.step}
        t0 = time.perf_counter()
        gn_dir = ctx.run_dir / f"{cell.problem}-pretrain-seed{cell.seed}" / FINETUNE_DIR
        if (gn_dir / CONFIG).exists() and pf.Config.from_saved(gn_dir / CONFIG).gn != run.config.gn:
            shutil.rmtree(gn_dir)  # a fine-tuning with other settings: start afresh (else resume it)
        gn = pf.gauss_newton(run, run_dir=gn_dir, resume=True, progress=ctx.progress)
        gn_seconds = float(gn.history["seconds"].iloc[-1]) if len(gn.history) else time.perf_counter() - t0
        return score(gn, loss_n, gn_seconds=gn_seconds, gn_steps=gn.step, **pre)
    gn_rec = ctx.record(Cell(cell.table, cell.problem, "adam_gn", cell.seed)) if p.get("match_wall_clock") else None
    if cell.method == "adam_lbfgs":
        run, _, config = _pretrain(cell, ctx)
        seconds = gn_rec["metrics"]["gn_seconds"] if gn_rec else float(p.get("lbfgs_seconds", 60.0))
        lb = lbfgs(run, steps=10**7, seconds=seconds, batch_size=config.gn.batch_size, resample_every=100)
        return score(lb, loss_n, lbfgs_seconds=seconds, matched_wall_clock=gn_rec is not None)
    if cell.method == "adam":
        config = ctx.config(cell, "log_ce")
        if gn_rec:  # Adam-only gets the wall-clock of pretraining + Gauss-Newton
            g = gn_rec["metrics"]
            chunk = config.optim.chunk
            steps = g["pretrain_steps"] + g["gn_seconds"] / g["pretrain_seconds_per_it"]
            steps = int(math.ceil(steps / chunk) * chunk)
            config = config.override([f"optim.steps={steps}", f"optim.checkpoint_every={steps}"])
        target = make_target(config)
        run = train_run(target, config, ctx.run_dir / cell.id, ctx.progress)
        return score(run, loss_n, matched_wall_clock=gn_rec is not None)
    raise KeyError(f"table3: unknown method {cell.method!r}")


TABLES.register(lambda: Table("table3", "Table 3: log_ce with Adam only vs Adam + Gauss-Newton", PROBLEMS, METHODS,
                              LOG_CE_METRICS, run_cell), name="table3")
