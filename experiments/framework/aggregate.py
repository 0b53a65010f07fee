"""Aggregation: mean ± std over seeds per (problem, method, metric) of a table's stored cells, with the
paper's values (`experiments/reference/<table>.csv`) beside ours; written to `<results>/<table>_<budget>.csv`
and `.md`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.framework import store
from experiments.framework.budget import Budget
from experiments.framework.cells import TABLES, Cell, Table
from experiments.framework.report import markdown_report

__all__ = ["REFERENCE", "load_reference", "load_cells", "aggregate"]

REFERENCE = Path(__file__).parents[1] / "reference"


def load_reference(table: str) -> pd.DataFrame:
    """The paper's numbers for `table` (tidy: table, problem, method, ours, metric, value, ...)."""
    return pd.read_csv(REFERENCE / f"{table}.csv", dtype={"printed": str})


def load_cells(cells_dir: str | Path) -> list[dict]:
    """Every readable record in a cells folder, in file-name order."""
    return [r for p in sorted(Path(cells_dir).glob("*.json")) if (r := store.read_record(p)) is not None]


def aggregate(table: Table | str, budget: Budget | str, results: str | Path = store.RESULTS,
              extra: list[str] = ()) -> pd.DataFrame:
    """Mean ± std over seeds per (problem, method, metric) of the finished cells on disk whose inputs match
    the budget (and `extra` overrides) now, the paper's values in adjacent columns; writes
    `<results>/<table>_<budget>.csv` and `.md`."""
    table = TABLES.get(table) if isinstance(table, str) else table
    budget = budget if isinstance(budget, Budget) else Budget.load(budget)
    results = Path(results)
    tag = store.tag(table.name, budget.name)
    records = [r for r in load_cells(store.cells_dir(results, table.name, budget.name))
               if r.get("problem") in table.problems and r.get("method") in table.methods
               and r.get("spec_hash") == store.spec_hash(
                   store.cell_spec(Cell(table.name, r["problem"], r["method"], r["seed"]), budget, list(extra)))]
    ref = load_reference(table.name)
    paper = {(r.problem, r.ours, r.metric): r.value for r in ref.itertuples()}
    paper_name = {r.ours: r.method for r in ref.itertuples()}
    shown = list(table.metrics) + list(table.extras) + ["wall_seconds", "train_seconds"]
    rows = []
    for problem, method in [(p, m) for p in table.problems for m in table.methods]:
        recs = [r for r in records if r["problem"] == problem and r["method"] == method]
        if not recs:
            continue
        ok = [r for r in recs if r["status"] == "ok"]
        failed = [r for r in recs if r["status"] != "ok"]
        row: dict = {"problem": problem, "method": method, "paper_method": paper_name.get(method, ""),
                     "seeds": len(ok), "failed": len(failed), "error": failed[0]["error"] if failed else ""}
        for metric in shown:
            vals = [(r["wall_seconds"] if metric == "wall_seconds" else r["metrics"].get(metric)) for r in ok]
            vals = np.array([v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)], float)
            row[metric] = float(vals.mean()) if len(vals) else math.nan
            row[f"{metric} std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            if metric in table.metrics:
                row[f"{metric} (paper)"] = paper.get((problem, method, metric), math.nan)
        rows.append(row)
    df = pd.DataFrame(rows)
    results.mkdir(parents=True, exist_ok=True)
    df.to_csv(results / f"{tag}.csv", index=False)
    (results / f"{tag}.md").write_text(markdown_report(table, budget, df, records))
    return df
