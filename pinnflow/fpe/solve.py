"""Solve a Fokker–Planck problem by a registered method, or compare several on one problem, and write the
result: `solve(problem, method, ...)` -> `Solution` (the standard table of `pinnflow.fpe.methods`),
`compare(problem, {method: overrides})` -> one table with a `method` column.

Output directory (`out`): `table.csv` (one row per saved time), `config.yaml` (the method's config), `run/`
(`sbtm` and `pinn`: the solver's run directory, with checkpoints and exact resume), `particles.npz` (the
final particles, numpy arrays only), `summary.json` (method, problem, wall seconds) and figures
(`pinnflow.viz.fpe`) with `plot=True`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pinnflow.core.checkpoint import atomic_write
from pinnflow.core.config import ConfigBase
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.fpe.methods import METHODS, MethodResult

__all__ = ["Solution", "solve", "compare", "resolve_problem", "make_config", "TABLE", "PARTICLES"]

TABLE = "table.csv"
PARTICLES = "particles.npz"
SUMMARY = "summary.json"


def resolve_problem(problem: FokkerPlanckProblem | str, params: Mapping[str, Any] | None = None
                    ) -> FokkerPlanckProblem:
    """A `FokkerPlanckProblem`, or a registered name (`problems.fokker_planck`, with `params`); an unknown name
    raises `KeyError` listing the choices."""
    if isinstance(problem, FokkerPlanckProblem):
        if params:
            raise ValueError("problem parameters only apply to a problem given by name")
        return problem
    if not isinstance(problem, str):
        raise TypeError(f"problem must be a FokkerPlanckProblem or a registered name, got {type(problem).__name__}")
    import problems.fokker_planck  # the registry lives outside the library (like the sampling targets)

    return problems.fokker_planck.get(problem, **dict(params or {}))


def make_config(method: str, config: ConfigBase | str | Path | None = None,
                overrides: Sequence[str] = ()) -> ConfigBase:
    """The method's config: an instance, a YAML file, or the defaults; then `section.key=value` overrides.
    Validated here (`ConfigError` naming the key), before anything compiles."""
    cls = METHODS.factory(method).config_class
    if config is None:
        cfg = cls()
    elif isinstance(config, str | Path):
        cfg = cls.from_yaml(config)
    elif isinstance(config, cls):
        cfg = config
    else:
        raise TypeError(f"method {method!r} takes a {cls.__name__}, got {type(config).__name__}")
    cfg = cfg.override(list(overrides)) if overrides else cfg
    cfg.validate()
    return cfg


@dataclass
class Solution:
    """One method's solution of one problem: `table` (the standard columns, one row per saved time),
    `particles` (final, (n, d), or None), `seconds` (wall, the whole method), the config and the method's own
    result (`raw`: an `SBTMResult`, an SDE `Ensemble`, ...)."""

    problem: FokkerPlanckProblem
    method: str
    config: ConfigBase
    table: pd.DataFrame
    particles: np.ndarray | None
    seconds: float
    raw: Any = None
    out: Path | None = None


def _write(sol: Solution, out: Path, plot: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / TABLE, sol.table.to_csv(index=False).encode())
    sol.config.to_yaml(out / "config.yaml")
    if sol.particles is not None:
        np.savez(out / PARTICLES, particles=np.asarray(sol.particles), t=np.asarray(sol.table["t"].iloc[-1]))
    summary = {"method": sol.method, "problem": sol.problem.name, "dim": sol.problem.dim,
               "seconds": sol.seconds}
    atomic_write(out / SUMMARY, json.dumps(summary, indent=1).encode())
    if plot:
        from pinnflow.viz.fpe import plot_solution

        plot_solution(sol.problem, {sol.method: sol.table}, {sol.method: sol.particles}, out)


def solve(problem: FokkerPlanckProblem | str, method: str = "sbtm", config: ConfigBase | str | Path | None = None,
          overrides: Sequence[str] = (), *, problem_params: Mapping[str, Any] | None = None,
          out: str | Path | None = None, resume: bool = False, progress: bool | None = None,
          plot: bool = False) -> Solution:
    """Solve `problem` (an instance or a registered name with `problem_params`) by `method` (a name in
    `METHODS`: sbtm, sde, noise_free, pinn, wgf) with `config` (instance, YAML path or None for the defaults) and
    `overrides` (`key=value`). Writes to `out` when given (see the module docstring; `resume=True` continues
    an sbtm/pinn/wgf run there). Bad names, keys and values raise before anything compiles."""
    m = METHODS.factory(method)  # unknown: KeyError listing the methods
    cfg = make_config(method, config, overrides)
    p = resolve_problem(problem, problem_params)
    out = None if out is None else Path(out)
    t0 = time.perf_counter()
    res: MethodResult = m.run(p, cfg, None if out is None else out / "run", resume, progress)
    sol = Solution(p, method, cfg, res.table, res.particles, time.perf_counter() - t0, res.raw, out)
    if out is not None:
        _write(sol, out, plot)
    return sol


def compare(problem: FokkerPlanckProblem | str, methods: Mapping[str, Sequence[str] | ConfigBase | None], *,
            problem_params: Mapping[str, Any] | None = None, out: str | Path | None = None,
            resume: bool = False, progress: bool | None = None, plot: bool = False
            ) -> tuple[pd.DataFrame, dict[str, Solution]]:
    """Solve one problem by several methods ({name: overrides, a config or None}) and return (one table with a
    `method` column, the solutions). With `out`, each method writes to out/<method> and the joint table to
    out/table.csv (figures comparing them with `plot=True`); `resume=True` continues (or reuses) the runs
    there that have run directories (sbtm, pinn, wgf). Every config is validated before any solve."""
    p = resolve_problem(problem, problem_params)
    configs = {}
    for name, spec in methods.items():
        METHODS.factory(name)
        if spec is None or isinstance(spec, ConfigBase):
            configs[name] = make_config(name, spec)
        else:
            configs[name] = make_config(name, None, list(spec))
    out = None if out is None else Path(out)
    sols = {name: solve(p, name, cfg, out=None if out is None else out / name, resume=resume, progress=progress)
            for name, cfg in configs.items()}
    table = pd.concat([s.table.assign(method=name) for name, s in sols.items()], ignore_index=True)
    table = table[["method"] + [c for c in table.columns if c != "method"]]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / TABLE, table.to_csv(index=False).encode())
        if plot:
            from pinnflow.viz.fpe import plot_solution

            plot_solution(p, {n: s.table for n, s in sols.items()}, {n: s.particles for n, s in sols.items()}, out)
    return table, sols
