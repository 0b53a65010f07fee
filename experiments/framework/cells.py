"""Tables as cells: a `Table` of paper 003 is a list of cells (problem × method × seed), each computed by
the table's `run(cell, ctx)`; tables register themselves by name in `TABLES`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pinnflow as pf
from experiments.framework import store
from experiments.framework.budget import Budget
from pinnflow.core.registry import Registry

__all__ = ["Cell", "Context", "Table", "TABLES"]


@dataclass(frozen=True)
class Cell:
    table: str
    problem: str
    method: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.problem}-{self.method}-seed{self.seed}"


@dataclass
class Context:
    """What a cell's run function may use: the budget, its run directory, extra overrides, other cells."""

    budget: Budget
    run_dir: Path
    cells_dir: Path
    extra: list[str] = field(default_factory=list)  # --set overrides, after the budget's
    progress: bool = False
    figures: bool = True  # write Figs. 1–5-style PNGs for seed-0 loss cells

    def config(self, cell: Cell, loss: str) -> pf.Config:
        base = pf.Config(loss=loss, problem=cell.problem, seed=cell.seed)
        return base.override(self.budget.overrides(cell.table, cell.problem, cell.method) + self.extra)

    def params(self, cell: Cell) -> dict:
        return self.budget.section("params", cell.table, cell.problem, cell.method)

    def record(self, cell: Cell) -> dict | None:
        """The finished record of another cell of the same table and budget (None if absent or failed)."""
        rec = store.read_record(store.cell_path(self.cells_dir, cell))
        return rec if rec is not None and rec.get("status") == "ok" else None


@dataclass(frozen=True)
class Table:
    """A table of paper 003 as cells. `run(cell, ctx) -> metrics` computes one cell; `methods` is also the
    execution order (a cell may read the records of cells before it); `metrics` are the paper's columns
    (ours beside the paper's), `extras` further columns of ours only."""

    name: str
    title: str
    problems: tuple[str, ...]
    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    run: Callable[[Cell, Context], dict]
    extras: tuple[str, ...] = ("finite_fraction",)

    def cells(self, seeds: int | list[int], problems: list[str] | None = None,
              methods: list[str] | None = None) -> list[Cell]:
        seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        for kind, given, known in (("problem", problems, self.problems), ("method", methods, self.methods)):
            bad = sorted(set(given or ()) - set(known))
            if bad:
                raise KeyError(f"{self.name}: unknown {kind}(s) {', '.join(bad)}; available: {', '.join(known)}")
        ps = [p for p in self.problems if problems is None or p in problems]
        ms = [m for m in self.methods if methods is None or m in methods]
        return [Cell(self.name, p, m, s) for p in ps for s in seeds for m in ms]


TABLES: Registry[Table] = Registry("table")
"""Tables by name: `TABLES.get("table2")` is a `Table` (the modules of `experiments.tables` register them)."""
