"""Reproduce Tables 2, 3 and 4 of paper 003 cell by cell, with restarts, and set our numbers beside the paper's.

    python -m experiments.reproduce table2 --budget smoke [--seeds K] [--problems gmm ...] [--methods log_ce ...]
    pinnflow reproduce table3 --budget cpu

A table is a list of cells (problem × method × seed), registered in `TABLES`:

- `table2` — every loss of Table 1 (`log_fp`, `log_fp_anneal`, `score`, `sb`, `log_ce`, `log_ce_anneal`, `ot`;
  `pf.train` then `pf.evaluate`) and the baselines `pis_kl`, `pis_lv`, `dis_kl`, `dis_lv`, `smc`
  (`pinnflow.baselines.run_baseline`, then `evaluate_samples`: the same metric definitions).
- `table3` — `log_ce` with Adam only (`adam`) vs Adam pretraining + Gauss–Newton (`adam_gn`); also the
  pretraining itself (`adam_pretrain`) and Adam + L-BFGS (`adam_lbfgs`). With `match_wall_clock` (cpu
  budget) Adam-only and L-BFGS get the wall-clock of Adam + Gauss–Newton; without (paper budget) Adam-only
  runs `optim.steps` and the pretraining `pretrain_steps`, as in the paper (200k vs 100k + 500 GN).
- `table4` — `log_ce` with uniform collocation (`uniform`) vs half uniform, half trajectory-cache points
  (`uniform_traj`, App. D.1).

A budget is a YAML file (`experiments/configs/reproduce/<name>.yaml`, or any path): `config` holds
`pinnflow.Config` overrides (dotted keys as in `Config.override`, or nested mappings) for every loss cell,
`baseline` the `BaselineBudget` fields of every baseline cell (`extra.<key>` for its `extra`); each section
may have `methods: {<method>: {...}}` and `problems: {<problem>: {...}}` sub-sections applied on top (and
nested: `problems.<p>.methods.<m>`), and `tables: {<table>: {config, baseline, params}}` repeats the same
per table (`params`: the table's own knobs, e.g. `pretrain_steps`). Later layers win:
section < its methods < its problems < tables.<t>.section < its methods < its problems.

Each finished cell is written atomically to `<results>/cells/<table>_<budget>/<cell>.json` with its inputs'
hash; a later invocation reuses every finished cell whose inputs are unchanged (a killed reproduction
restarts where it stopped; a killed training resumes from its checkpoint under `<runs>/<table>_<budget>/`).
A cell that raises (e.g. `TrainingDiverged`) is recorded as failed with the message (`--retry-failed` runs
it again). The aggregate — mean ± std over seeds per (problem, method, metric), the paper's value beside
each — goes to `<results>/<table>_<budget>.csv` and `.md`.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import jax
import pandas as pd
from tqdm.auto import tqdm

from experiments.framework import store
from experiments.framework.aggregate import aggregate
from experiments.framework.budget import Budget
from experiments.framework.cells import TABLES, Cell, Context, Table
from experiments.tables import paper002, table2, table3, table4  # noqa: F401  (importing registers a table)

__all__ = ["RUNS", "run_table", "run_cell", "build_parser", "main"]

RUNS = Path("runs") / "reproduce"
PROG = "python -m experiments.reproduce"


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def run_table(table: str, budget: str | Path | Budget = "smoke", seeds: int | None = None,
              problems: list[str] | None = None, methods: list[str] | None = None, *,
              results: str | Path = store.RESULTS, runs: str | Path = RUNS, extra: list[str] = (),
              retry_failed: bool = False, progress: bool | None = None, cell_progress: bool = False,
              figures: bool = True, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run (or reuse) every cell of `table` under `budget`, then aggregate; returns the aggregate table.

    `extra`: Config overrides for every loss cell after the budget's (part of each cell's inputs).
    `progress`: the bar over cells (default: if stderr is a terminal); `cell_progress`: each cell's own
    training bar; `figures`: PNGs (samples and marginal, trajectories, density path) for seed-0 loss cells
    under `<results>/cells/<table>_<budget>/figures/`. A line per computed cell (`cell i/n <id>: ok in ... s;
    elapsed, ETA`) goes to `log`."""
    tab = TABLES.get(table)
    budget = budget if isinstance(budget, Budget) else Budget.load(budget)
    seeds = budget.seeds_for(table) if seeds is None else int(seeds)
    cells = tab.cells(seeds, problems, methods)
    results = Path(results)
    tag = store.tag(table, budget.name)
    cells_dir = store.cells_dir(results, table, budget.name)
    ctx = Context(budget, Path(runs) / tag, cells_dir, list(extra), cell_progress, figures)
    say = log or (lambda s: tqdm.write(s, file=sys.stdout))

    todo = []
    for cell in cells:
        spec = store.cell_spec(cell, budget, ctx.extra)
        todo.append((cell, spec, store.usable(store.cell_path(cells_dir, cell), store.spec_hash(spec), retry_failed)))
    n, reused = len(todo), sum(rec is not None for *_, rec in todo)
    say(f"{tag}: {n} cells, {reused} finished before; cells in {cells_dir}")
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=n, initial=reused, disable=not show, unit="cell", dynamic_ncols=True, desc=tag)
    t_start, done_new = time.perf_counter(), 0
    try:
        for i, (cell, spec, rec) in enumerate(todo, 1):
            if rec is not None:
                continue
            bar.set_description(f"cell {i}/{n} {cell.id}")
            path = store.cell_path(cells_dir, cell)
            failed_before = retry_failed and store.status(path) == "failed"
            record = run_cell(tab, cell, ctx, spec, fresh=failed_before)
            store.write_json(path, record)
            done_new += 1
            elapsed = time.perf_counter() - t_start
            eta = elapsed / done_new * (n - reused - done_new)
            m = record["metrics"]
            summary = (", ".join(f"{k} {m[k]:.4g}" for k in tab.metrics if isinstance(m.get(k), float))
                       if record["status"] == "ok" else record["error"])
            say(f"cell {i}/{n} {cell.id}: {record['status']} in {record['wall_seconds']:.1f} s ({summary}); "
                f"elapsed {_fmt_seconds(elapsed)}, ETA {_fmt_seconds(eta)}")
            bar.update(1)
    finally:
        bar.close()
    agg = aggregate(tab, budget, results, extra=ctx.extra)
    say(f"wrote {results / (tag + '.csv')} and {results / (tag + '.md')}")
    return agg


def run_cell(tab: Table, cell: Cell, ctx: Context, spec: dict, fresh: bool = False) -> dict:
    """Compute one cell; returns its record (status ok, or failed with the error message)."""
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    if fresh and (ctx.run_dir / cell.id).exists():
        shutil.rmtree(ctx.run_dir / cell.id)  # a failed run's last checkpoint would fail again on resume
    metrics, status, error, tb = {}, "ok", None, None
    try:
        metrics = tab.run(cell, ctx)
        if isinstance(metrics.get("ess"), float):
            metrics["1-ess"] = 1.0 - metrics["ess"]
    except Exception as err:  # a failed cell is recorded, not fatal to the table
        status, error, tb = "failed", f"{type(err).__name__}: {err}", traceback.format_exc(limit=-6)
    record = {"id": cell.id, "table": cell.table, "budget": ctx.budget.name, "problem": cell.problem,
              "method": cell.method, "seed": cell.seed, "status": status, "error": error, "metrics": metrics,
              "wall_seconds": time.perf_counter() - t0, "spec_hash": store.spec_hash(spec), "spec": spec,
              "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
              "devices": str(jax.devices())}
    if tb:
        record["traceback"] = tb
    return record


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", help=f"one of {', '.join(TABLES.names())}")
    ap.add_argument("--budget", default="smoke",
                    help="smoke, cpu, recipes, paper (experiments/configs/reproduce/) or the path of a budget YAML")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..K-1 (default: the budget's `seeds`)")
    ap.add_argument("--problems", nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="Config overrides for every loss cell, after the budget's")
    ap.add_argument("--results", default=str(store.RESULTS), help="where cells/ and the aggregate tables go")
    ap.add_argument("--runs", default=str(RUNS), help="run directories (checkpoints)")
    ap.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    ap.add_argument("--cell-progress", action="store_true", help="show each cell's training progress bar")
    ap.add_argument("--no-figures", action="store_true", help="skip the PNG figures of seed-0 loss cells")
    ap.add_argument("--aggregate-only", action="store_true", help="only aggregate the finished cells")
    return ap


def main(argv: list[str] | None = None, prog: str = PROG) -> pd.DataFrame:
    """The command line (`python -m experiments.reproduce`, and `pinnflow reproduce` through the entry point
    `experiments.reproduce:main` of the group `pinnflow.commands`)."""
    args = build_parser(prog).parse_args(argv)
    if args.aggregate_only:
        df = aggregate(args.table, args.budget, args.results, extra=args.set)
    else:
        df = run_table(args.table, args.budget, args.seeds, args.problems, args.methods, results=args.results,
                       runs=args.runs, extra=args.set, retry_failed=args.retry_failed,
                       cell_progress=args.cell_progress, figures=not args.no_figures)
    if not df.empty:
        cols = ["problem", "method", "seeds", "failed"] + [c for m in TABLES.get(args.table).metrics
                                                           for c in (m, f"{m} (paper)")]
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return df


if __name__ == "__main__":
    main()
