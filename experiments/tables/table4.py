"""Table 4 of paper 003: `log_ce` with uniform collocation (`uniform`) vs half uniform, half
trajectory-cache points (`uniform_traj`, App. D.1); the budget's per-method config sets the collocation."""

from __future__ import annotations

from experiments.framework.cells import TABLES, Cell, Context, Table
from experiments.tables import LOG_CE_METRICS, PROBLEMS
from experiments.tables.training import loss_cell

__all__ = ["METHODS", "run_cell"]

METHODS = ("uniform", "uniform_traj")


def run_cell(cell: Cell, ctx: Context) -> dict:
    return loss_cell(cell, ctx, "log_ce")  # uniform vs uniform + trajectories: the budget's per-method config


TABLES.register(lambda: Table("table4", "Table 4: log_ce with uniform vs uniform + trajectory collocation",
                              PROBLEMS, METHODS, LOG_CE_METRICS, run_cell), name="table4")
