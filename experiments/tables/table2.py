"""Table 2 of paper 003: every loss of Table 1 (`log_fp`, `log_fp_anneal`, `score`, `sb`, `log_ce`,
`log_ce_anneal`, `ot`; `pf.train` then `pf.evaluate`) and the baselines `pis_kl`, `pis_lv`, `dis_kl`,
`dis_lv`, `smc` (`pinnflow.baselines.run_baseline`, then `evaluate_samples`: the same metric definitions)."""

from __future__ import annotations

import math

import jax

from experiments.framework.cells import TABLES, Cell, Context, Table
from experiments.tables import PROBLEMS
from experiments.tables.training import loss_cell, make_target
from pinnflow.core.precision import precision
from pinnflow.metrics import evaluate_samples

__all__ = ["LOSSES", "BASELINES", "METRICS", "run_cell"]

LOSSES = ("log_fp", "log_fp_anneal", "score", "sb", "log_ce", "log_ce_anneal", "ot")  # Table 2's order
BASELINES = ("pis_kl", "pis_lv", "dis_kl", "dis_lv", "smc")
METRICS = ("delta_log_z", "sinkhorn", "ess", "delta_std", "seconds_per_it")


def _baseline_cell(cell: Cell, ctx: Context) -> dict:
    from pinnflow.baselines import BaselineBudget, run_baseline  # lazily: the baselines may be absent

    config = ctx.config(cell, "log_ce")  # the problem's evaluation settings (n_eval, Sinkhorn), as for losses
    with precision(config.precision):
        target = make_target(config)
        fields = {"n_eval": config.sampler.n_eval, **ctx.budget.section("baseline", cell.table, cell.problem,
                                                                        cell.method)}
        extra = {k.split(".", 1)[1]: fields.pop(k) for k in list(fields) if k.startswith("extra.")}
        budget = BaselineBudget(**fields, extra=extra)
        res = run_baseline(cell.method, target, budget, jax.random.PRNGKey(cell.seed), progress=ctx.progress)
        m = evaluate_samples(target, res.samples, res.log_weights, jax.random.PRNGKey(cell.seed + 1),
                             sinkhorn_n=config.sampler.sinkhorn_n, sinkhorn_epsilon=config.sampler.sinkhorn_epsilon,
                             train_seconds=res.train_seconds,
                             seconds_per_it=res.seconds_per_step if res.seconds_per_step is not None else math.nan,
                             log_Z_estimate=res.log_Z_estimate)
    info = {f"info_{k}": v for k, v in (res.info or {}).items() if isinstance(v, int | float | str | bool)}
    return {**m, "steps": res.steps, **info}


def run_cell(cell: Cell, ctx: Context) -> dict:
    """A baseline cell, or a loss cell of the method's loss."""
    return (_baseline_cell if cell.method in BASELINES else loss_cell)(cell, ctx)


TABLES.register(lambda: Table("table2", "Table 2: the losses of Table 1 against PIS/DIS (+ SMC)", PROBLEMS,
                              LOSSES + BASELINES, METRICS, run_cell, ("delta_log_z_estimate", "finite_fraction")),
                name="table2")
