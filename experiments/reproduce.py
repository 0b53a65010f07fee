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
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

import pinnflow as pf
import problems as problem_registry
from pinnflow.config import _coerce
from pinnflow.evaluation import evaluate_samples
from pinnflow.train import CHECKPOINT, CONFIG, build, make_loss_fn

__all__ = ["TABLES", "Table", "Cell", "Budget", "run_table", "run_cell", "aggregate", "load_reference", "main"]

HERE = Path(__file__).parent
RESULTS = HERE / "results"
BUDGETS = HERE / "configs" / "reproduce"
REFERENCE = HERE / "reference"
RUNS = Path("runs") / "reproduce"

PROBLEMS = ("gmm", "many_well_5", "many_well_50")
LOSSES = ("log_fp", "log_fp_anneal", "score", "sb", "log_ce", "log_ce_anneal", "ot")  # Table 2's order
BASELINES = ("pis_kl", "pis_lv", "dis_kl", "dis_lv", "smc")


# ---- budgets ------------------------------------------------------------------------------------------


def _flatten(d: dict, prefix: str = "") -> dict:
    """{"optim": {"steps": 3}, "sampler.n_eval": 5} -> {"optim.steps": 3, "sampler.n_eval": 5}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _layer(section: dict | None, problem: str, method: str) -> dict:
    """A section's own keys (flattened to dotted keys), overridden by its `methods.<method>` and then its
    `problems.<problem>` sub-sections (each layered the same way, so `problems.<p>.methods.<m>` wins)."""
    section = dict(section or {})
    by_problem = section.pop("problems", None) or {}
    by_method = section.pop("methods", None) or {}
    out = _flatten(section)
    for sub in (by_method.get(method), by_problem.get(problem)):
        if sub:
            out.update(_layer(sub, problem, method))
    return out


@dataclass
class Budget:
    """A reproduction budget read from YAML (see the module docstring for the layout)."""

    name: str
    data: dict
    path: Path | None = None

    @classmethod
    def load(cls, name_or_path: str | Path) -> Budget:
        """A budget by name (`experiments/configs/reproduce/<name>.yaml`) or by path to a YAML file."""
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml"):
            path = BUDGETS / f"{name_or_path}.yaml"
            if not path.exists():
                known = sorted(p.stem for p in BUDGETS.glob("*.yaml"))
                raise KeyError(f"unknown budget {str(name_or_path)!r}; available: {', '.join(known)} or a YAML path")
        data = _coerce(yaml.safe_load(path.read_text()) or {})
        if not isinstance(data, dict):
            raise ValueError(f"budget {path}: expected a mapping at top level")
        unknown = set(data) - {"seeds", "config", "baseline", "tables", "description"}
        if unknown:
            raise ValueError(f"budget {path}: unknown sections {sorted(unknown)}; "
                             "allowed: seeds, config, baseline, tables, description")
        return cls(path.stem, data, path)

    @property
    def seeds(self) -> int:
        return int(self.data.get("seeds", 1))

    def section(self, name: str, table: str, problem: str, method: str) -> dict:
        """The merged dotted keys of section `name` (config, baseline or params) for one cell."""
        out = _layer(self.data.get(name), problem, method) if name != "params" else {}
        table_sec = (self.data.get("tables") or {}).get(table) or {}
        unknown = set(table_sec) - {"config", "baseline", "params"}
        if unknown:
            raise ValueError(f"budget {self.name}: tables.{table} has unknown sections {sorted(unknown)}")
        out.update(_layer(table_sec.get(name), problem, method))
        return out

    def overrides(self, table: str, problem: str, method: str) -> list[str]:
        """`Config.override` strings of a loss cell."""
        return [f"{k}={json.dumps(v)}" for k, v in self.section("config", table, problem, method).items()]


# ---- cells and tables ---------------------------------------------------------------------------------


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
        path = self.cells_dir / f"{cell.id}.json"
        if not path.exists():
            return None
        rec = json.loads(path.read_text())
        return rec if rec.get("status") == "ok" else None


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


TABLES: pf.Registry[Table] = pf.Registry("table")
"""Tables by name: `TABLES.get("table2")` is a `Table`."""

T2_METRICS = ("delta_log_z", "sinkhorn", "ess", "delta_std", "seconds_per_it")
T34_METRICS = ("loss", "delta_log_z", "sinkhorn", "1-ess", "delta_std", "seconds_per_it")


# ---- what a cell computes -----------------------------------------------------------------------------


def _seconds_per_it(run: pf.Run) -> float:
    """The run's median seconds per step; for a finished run restored from its checkpoint (`pf.train` then
    times nothing) the median over its history's chunks, excluding the first (compilation)."""
    if np.isfinite(run.seconds_per_it):
        return float(run.seconds_per_it)
    h = run.history
    if h is None or len(h) < 2 or "seconds" not in h:
        return float(run.train_seconds / max(run.step, 1))
    return float((h["seconds"].diff() / h["step"].diff()).dropna().median())


def _target(config: pf.Config) -> pf.Target:
    return problem_registry.get(config.problem, **config.problem_params)


def _train(target: pf.Target, config: pf.Config, run_dir: Path, progress: bool) -> pf.Run:
    """`pf.train` in `run_dir`, resuming (or returning at once) if it holds a run of the same config, and
    starting afresh if it holds another."""
    if (run_dir / CHECKPOINT).exists():
        same = (run_dir / CONFIG).exists() and pf.Config.from_yaml(run_dir / CONFIG).to_dict() == config.to_dict()
        if not same:
            shutil.rmtree(run_dir)
    return pf.train(target, config, run_dir=run_dir, resume=True, progress=progress)


def fresh_loss(run: pf.Run, n: int = 16384, seed: int = 1234, chunk: int = 4096) -> float:
    """The run's loss on a fixed fresh batch of n uniform collocation points (the same for every row)."""
    loss, setup, domain, graphdef, _ = build(run.target, run.config)
    fn = jax.jit(make_loss_fn(loss, setup, graphdef, pf.EXACT, run.config.alpha))
    xs, ts = domain.sample(jax.random.PRNGKey(seed), n)
    total = 0.0
    for i in range(0, n, chunk):  # bounded memory
        x, t = xs[i:i + chunk], ts[i:i + chunk]
        total += float(fn(run.params, x, t, jax.random.PRNGKey(0))[0]) * len(t)
    return total / n


def _score(run: pf.Run, loss_n: int = 0, **extra) -> dict:
    """pf.evaluate's metrics of a run (in the run's precision), 1 − ESS, and the fresh-batch loss if loss_n."""
    pf.set_precision(run.config.precision)
    m, _ = pf.evaluate(run)
    m = {k: v for k, v in m.items() if k not in ("problem", "loss")}
    m["seconds_per_it"] = _seconds_per_it(run)
    m["train_loss"] = float(run.history["loss"].iloc[-1]) if "loss" in run.history and len(run.history) else None
    if loss_n:
        m["loss"] = fresh_loss(run, int(loss_n))
    return {**m, **extra}


def _figures(run: pf.Run, cell: Cell, ctx: Context) -> None:
    """Paper 003 Figs. 1–5 for a trained cell (seed 0 only): samples and first marginal vs exact, ODE
    trajectories over time, and (d = 2) the learned density path, as PNG under <cells dir>/figures/."""
    from pinnflow.plotting import plot_density_path, plot_samples, plot_trajectories

    out = ctx.cells_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    samples = pf.sample(run, jax.random.PRNGKey(99), 5000)
    plot_samples(run, np.asarray(samples.x), out / f"{cell.id}_samples.png")
    plot_trajectories(run, out / f"{cell.id}_trajectories.png", n=200, steps=run.config.sampler.steps)
    if run.target.dim == 2:
        plot_density_path(run, out / f"{cell.id}_density_path.png")


def _loss_cell(cell: Cell, ctx: Context, loss: str | None = None) -> dict:
    config = ctx.config(cell, loss or cell.method)
    target = _target(config)
    run = _train(target, config, ctx.run_dir / cell.id, ctx.progress)
    scores = _score(run, ctx.params(cell).get("loss_n", 0))
    if cell.seed == 0 and ctx.figures:
        _figures(run, cell, ctx)
    return scores


def _baseline_cell(cell: Cell, ctx: Context) -> dict:
    from pinnflow.baselines import BaselineBudget, run_baseline  # lazily: the baselines may be absent

    config = ctx.config(cell, "log_ce")  # the problem's evaluation settings (n_eval, Sinkhorn), as for losses
    pf.set_precision(config.precision)
    target = _target(config)
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


def _table2_cell(cell: Cell, ctx: Context) -> dict:
    return (_baseline_cell if cell.method in BASELINES else _loss_cell)(cell, ctx)


def _table3_pretrain(cell: Cell, ctx: Context) -> tuple[pf.Run, pf.Target, pf.Config]:
    """The Adam pretraining shared by the adam_pretrain, adam_gn and adam_lbfgs cells of a problem and seed."""
    p = ctx.params(cell)
    config = ctx.config(cell, "log_ce")
    steps = int(p.get("pretrain_steps", config.optim.steps))
    config = config.override([f"optim.steps={steps}"])
    target = _target(config)
    run = _train(target, config, ctx.run_dir / f"{cell.problem}-pretrain-seed{cell.seed}", ctx.progress)
    return run, target, config


def _table3_cell(cell: Cell, ctx: Context) -> dict:
    p = ctx.params(cell)
    loss_n = p.get("loss_n", 16384)
    if cell.method == "adam_pretrain":
        run, _, _ = _table3_pretrain(cell, ctx)
        return _score(run, loss_n)
    if cell.method == "adam_gn":
        run, _, _ = _table3_pretrain(cell, ctx)
        pre = {"pretrain_seconds": run.train_seconds, "pretrain_seconds_per_it": _seconds_per_it(run),
               "pretrain_steps": run.step}
        t0 = time.perf_counter()
        gn_dir = ctx.run_dir / f"{cell.problem}-pretrain-seed{cell.seed}" / "finetune"
        if (gn_dir / CONFIG).exists() and pf.Config.from_yaml(gn_dir / CONFIG).gn != run.config.gn:
            shutil.rmtree(gn_dir)  # a fine-tuning with other settings: start afresh (else resume it)
        gn = pf.gauss_newton(run, run_dir=gn_dir, resume=True, progress=ctx.progress)
        gn_seconds = float(gn.history["seconds"].iloc[-1]) if len(gn.history) else time.perf_counter() - t0
        return _score(gn, loss_n, gn_seconds=gn_seconds, gn_steps=gn.step, **pre)
    gn_rec = ctx.record(Cell(cell.table, cell.problem, "adam_gn", cell.seed)) if p.get("match_wall_clock") else None
    if cell.method == "adam_lbfgs":
        from pinnflow.lbfgs import lbfgs

        run, _, config = _table3_pretrain(cell, ctx)
        seconds = gn_rec["metrics"]["gn_seconds"] if gn_rec else float(p.get("lbfgs_seconds", 60.0))
        lb = lbfgs(run, steps=10**7, seconds=seconds, batch_size=config.gn.batch_size, resample_every=100)
        return _score(lb, loss_n, lbfgs_seconds=seconds, matched_wall_clock=gn_rec is not None)
    if cell.method == "adam":
        config = ctx.config(cell, "log_ce")
        if gn_rec:  # Adam-only gets the wall-clock of pretraining + Gauss-Newton
            g = gn_rec["metrics"]
            chunk = config.optim.chunk
            steps = g["pretrain_steps"] + g["gn_seconds"] / g["pretrain_seconds_per_it"]
            steps = int(math.ceil(steps / chunk) * chunk)
            config = config.override([f"optim.steps={steps}", f"optim.checkpoint_every={steps}"])
        target = _target(config)
        run = _train(target, config, ctx.run_dir / cell.id, ctx.progress)
        return _score(run, loss_n, matched_wall_clock=gn_rec is not None)
    raise KeyError(f"table3: unknown method {cell.method!r}")


def _table4_cell(cell: Cell, ctx: Context) -> dict:
    return _loss_cell(cell, ctx, "log_ce")  # uniform vs uniform + trajectories: the budget's per-method config


TABLES.register(lambda: Table("table2", "Table 2: the losses of Table 1 against PIS/DIS (+ SMC)", PROBLEMS,
                              LOSSES + BASELINES, T2_METRICS, _table2_cell,
                              ("delta_log_z_estimate", "finite_fraction")), name="table2")
TABLES.register(lambda: Table("table3", "Table 3: log_ce with Adam only vs Adam + Gauss-Newton",
                              ("gmm", "many_well_5"), ("adam_pretrain", "adam_gn", "adam_lbfgs", "adam"),
                              T34_METRICS, _table3_cell), name="table3")
TABLES.register(lambda: Table("table4", "Table 4: log_ce with uniform vs uniform + trajectory collocation",
                              PROBLEMS, ("uniform", "uniform_traj"), T34_METRICS, _table4_cell), name="table4")


# ---- running a table ----------------------------------------------------------------------------------


def _spec(cell: Cell, budget: Budget, extra: list[str]) -> dict:
    """A cell's inputs; a finished cell is reused only if these are unchanged."""
    return {"cell": [cell.table, cell.problem, cell.method, cell.seed],
            "config": budget.section("config", cell.table, cell.problem, cell.method),
            "baseline": budget.section("baseline", cell.table, cell.problem, cell.method),
            "params": budget.section("params", cell.table, cell.problem, cell.method), "set": list(extra)}


def _hash(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic | np.ndarray) and np.ndim(v) == 0:
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, int | str | bool) or v is None:
        return v
    if isinstance(v, np.ndarray | jax.Array):
        return _jsonable(np.asarray(v).tolist())
    return str(v)


def write_json(path: Path, data: dict) -> None:
    """Atomic: write a temporary file next to `path`, then `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=1, ensure_ascii=False))
    os.replace(tmp, path)


def _usable(path: Path, spec_hash: str, retry_failed: bool) -> dict | None:
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if rec.get("spec_hash") != spec_hash or (retry_failed and rec.get("status") != "ok"):
        return None
    return rec


def _status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, json.JSONDecodeError):
        return None


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def run_table(table: str, budget: str | Path | Budget = "smoke", seeds: int | None = None,
              problems: list[str] | None = None, methods: list[str] | None = None, *,
              results: str | Path = RESULTS, runs: str | Path = RUNS, extra: list[str] = (),
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
    seeds = budget.seeds if seeds is None else int(seeds)
    cells = tab.cells(seeds, problems, methods)
    results = Path(results)
    tag = f"{table}_{budget.name}"
    cells_dir = results / "cells" / tag
    ctx = Context(budget, Path(runs) / tag, cells_dir, list(extra), cell_progress, figures)
    say = log or (lambda s: tqdm.write(s, file=sys.stdout))

    todo = []
    for cell in cells:
        spec = _spec(cell, budget, ctx.extra)
        todo.append((cell, spec, _usable(cells_dir / f"{cell.id}.json", _hash(spec), retry_failed)))
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
            path = cells_dir / f"{cell.id}.json"
            failed_before = retry_failed and path.exists() and _status(path) == "failed"
            record = run_cell(tab, cell, ctx, spec, fresh=failed_before)
            write_json(cells_dir / f"{cell.id}.json", record)
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
              "wall_seconds": time.perf_counter() - t0, "spec_hash": _hash(spec), "spec": spec,
              "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
              "devices": str(jax.devices())}
    if tb:
        record["traceback"] = tb
    return record


# ---- aggregation --------------------------------------------------------------------------------------


def load_reference(table: str) -> pd.DataFrame:
    """The paper's numbers for `table` (tidy: table, problem, method, ours, metric, value, ...)."""
    return pd.read_csv(REFERENCE / f"{table}.csv", dtype={"printed": str})


def load_cells(cells_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(cells_dir).glob("*.json"))]


def aggregate(table: Table | str, budget: Budget | str, results: str | Path = RESULTS,
              extra: list[str] = ()) -> pd.DataFrame:
    """Mean ± std over seeds per (problem, method, metric) of the finished cells on disk whose inputs match
    the budget (and `extra` overrides) now, the paper's values in adjacent columns; writes
    `<results>/<table>_<budget>.csv` and `.md`."""
    table = TABLES.get(table) if isinstance(table, str) else table
    budget = budget if isinstance(budget, Budget) else Budget.load(budget)
    results = Path(results)
    tag = f"{table.name}_{budget.name}"
    records = [r for r in load_cells(results / "cells" / tag)
               if r.get("problem") in table.problems and r.get("method") in table.methods
               and r.get("spec_hash") == _hash(_spec(Cell(table.name, r["problem"], r["method"], r["seed"]),
                                                     budget, list(extra)))]
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
    (results / f"{tag}.md").write_text(_markdown_report(table, budget, df, records))
    return df


def _num(v: float) -> str:
    if v is None or v != v:
        return "–"
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.3g}" if 1e-3 <= a < 1e4 else f"{v:.2e}"


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table of strings/numbers (numbers to 3 significant digits)."""
    fmt = lambda v: _num(v) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _markdown_report(table: Table, budget: Budget, df: pd.DataFrame, records: list[dict]) -> str:
    head = (f"# {table.title} — budget `{budget.name}`\n\n"
            f"Ours: mean ± std over seeds (the `seeds` column); paper 003's value in the adjacent column. "
            "`delta_log_z` is the error of the lower bound E[log w] (the paper's ΔlogZ); "
            "`delta_log_z_estimate` that of a sampler's own estimate (SMC has no importance weights); "
            "`finite_fraction`: share of samples with a finite log-weight (the others are dropped before the "
            "metrics); Sinkhorn as named below; s/it (median seconds per training step after compilation) and "
            f"wall seconds (train + evaluate) measured here ({platform.machine()}, {os.cpu_count()} CPUs, shared). "
            f"Written by `python -m experiments.reproduce {table.name} --budget {budget.name}`.\n\n")
    if df.empty:
        return head + "No finished cells.\n"
    out = pd.DataFrame({"problem": df["problem"], "method": df["method"], "paper": df["paper_method"],
                        "seeds": df["seeds"].astype(str)})
    for metric in table.metrics + table.extras:
        out[metric] = [_num(m) if s != s else f"{_num(m)} ± {_num(s)}"
                       for m, s in zip(df[metric], df[f"{metric} std"], strict=True)]
        if metric in table.metrics:
            out[f"{metric} (paper)"] = df[f"{metric} (paper)"].map(_num)
    out["wall s"] = df["wall_seconds"].map(_num)
    out["status"] = [("ok" if not f else f"{f} failed: {e[:80]}") for f, e in zip(df["failed"], df["error"],
                                                                               strict=True)]
    sink = next((r["metrics"] for r in records if r.get("status") == "ok" and "sinkhorn_n" in r["metrics"]), None)
    note = ""
    if sink:
        note = (f"\n\nSinkhorn: cost {sink.get('sinkhorn_cost')}, ε = {sink.get('sinkhorn_epsilon')}, "
                f"n = {sink.get('sinkhorn_n')}, debiased = {sink.get('sinkhorn_debiased')}.")
    return head + markdown(out) + note + "\n"


# ---- command line -------------------------------------------------------------------------------------


def build_parser(prog: str = "python -m experiments.reproduce") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", help=f"one of {', '.join(TABLES.names())}")
    ap.add_argument("--budget", default="smoke",
                    help="smoke, cpu, paper (experiments/configs/reproduce/) or the path of a budget YAML")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..K-1 (default: the budget's `seeds`)")
    ap.add_argument("--problems", nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="Config overrides for every loss cell, after the budget's")
    ap.add_argument("--results", default=str(RESULTS), help="where cells/ and the aggregate tables go")
    ap.add_argument("--runs", default=str(RUNS), help="run directories (checkpoints)")
    ap.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    ap.add_argument("--cell-progress", action="store_true", help="show each cell's training progress bar")
    ap.add_argument("--no-figures", action="store_true", help="skip the PNG figures of seed-0 loss cells")
    ap.add_argument("--aggregate-only", action="store_true", help="only aggregate the finished cells")
    return ap


def main(argv: list[str] | None = None, prog: str = "python -m experiments.reproduce") -> pd.DataFrame:
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
