"""Paper 002's Tables 1–3 as cells: data set (`mixture`, `circles`, `checkerboard`) × w_R (`w0`, `w0.1`, `w1`,
`w10`) × seed. A cell trains the diffusion model (`pinnflow.diffusion.train`, resumable in its run directory)
and evaluates it (`pinnflow.diffusion.evaluate.evaluate`): W2² for ODE–SDE (Table 1), ODE–data (Table 2) and
SDE–data (Table 3), the residual R̃ and DSM at the end (Figs. 4–5), the curl, the kept fractions of the
histogram box, and the noise floors named in the budget.

The budget's `tables.paper002.params` are `DiffusionConfig` overrides (nested mappings or dotted keys), plus
`floors` (a list ⊂ {data, ode}: the estimator's noise floors to measure in each cell, e.g. `data` everywhere
and `ode` only under `methods.w0`) and `seeds`; `--set` overrides apply after them. Each cell's four
histograms (ODE, SDE, data, and the curl grid) go to `<cells>/histograms/<cell>.npz` for the figures.
"""

from __future__ import annotations

import json

import numpy as np

from experiments.framework.cells import TABLES, Cell, Context, Table

__all__ = ["PROBLEMS", "METHODS", "METRICS", "W_R", "config_of", "run_cell"]

PROBLEMS = ("mixture", "circles", "checkerboard")
W_R = {"w0": 0.0, "w0.1": 0.1, "w1": 1.0, "w10": 10.0}
METHODS = tuple(W_R)
METRICS = ("w2_ode_sde", "w2_ode_data", "w2_sde_data")
EXTRAS = ("residual", "dsm", "floor_data", "floor_ode", "kept_ode", "kept_sde", "kept_data", "ode_nonfinite",
          "sde_nonfinite", "curl", "seconds_per_it", "ode_seconds", "sde_seconds", "w2_seconds")
OWN = ("floors", "seeds")  # params keys that are not DiffusionConfig overrides


def config_of(cell: Cell, ctx: Context):
    """The cell's `DiffusionConfig` (budget params, then --set) and its floors."""
    from pinnflow.diffusion import DiffusionConfig

    params = ctx.params(cell)
    floors = tuple(params.get("floors") or ())
    over = [f"{k}={json.dumps(v)}" for k, v in params.items() if k not in OWN]
    base = DiffusionConfig(seed=cell.seed, data={"name": cell.problem}, loss={"w_R": W_R[cell.method]})
    return base.override(over + list(ctx.extra)), floors


def run_cell(cell: Cell, ctx: Context) -> dict:
    import problems.datasets as datasets
    from pinnflow.diffusion import train
    from pinnflow.diffusion.evaluate import evaluate

    cfg, floors = config_of(cell, ctx)
    run = train(datasets.get(cell.problem, **cfg.data.params), cfg, run_dir=ctx.run_dir / cell.id, resume=True,
                progress=ctx.progress)
    row, arrays = evaluate(run, seed=cell.seed, floors=floors)
    out = ctx.cells_dir / "histograms"
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"{cell.id}.npz", **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    row["seconds_per_it"] = run.seconds_per_it
    return {k: v for k, v in row.items() if not isinstance(v, str)} | {"residual_kind": row["residual_kind"]}


TABLES.register(lambda: Table("paper002", "Paper 002, Tables 1-3: W2² of the ODE and SDE samplers by w_R",
                              PROBLEMS, METHODS, METRICS, run_cell, extras=EXTRAS), name="paper002")
