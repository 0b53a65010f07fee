"""Reproduce paper 000's Fokker–Planck experiments: one problem, several methods (SBTM, the SDE, the noise-free
dynamics, the PINN route), one table, one set of figures, and the issue's goals checked in a report.

    python -m experiments.paper000 harmonic_trap --budget cpu      # paper 000 §3.1.1, Figs. 1B, 2
    python -m experiments.paper000 harmonic_trap --budget smoke    # seconds: a check of the pipeline

The experiment is a YAML file `experiments/configs/paper000/<name>.yaml`: `problem`, `problem_params`,
`check_times` (where the report compares with the exact solution), `goals` (bounds on the report's columns),
`reference` (a method the others' one-particle moments are compared with, for problems without a closed form)
and `budgets.<budget>.<method>: [key=value, ...]` (overrides of the method's config; a budget may also
override `problem_params` and `check_times`). Results go to
`experiments/results/paper000/<name>_<budget>/`: the joint `table.csv`, each method's directory (its table,
particles, config, checkpoints), the figures and `report.md`. A rerun resumes the SBTM/PINN runs there (or
reuses them when finished); `--methods` runs a subset and joins the others' earlier results. The report
gives, at the check times: entropy error, score error, one-particle moments and their errors (or differences
from the reference method); wall seconds and particle counts; each goal marked met or not, with the measured
number.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.framework.report import markdown
from pinnflow.core.config import load_yaml
from pinnflow.fpe import compare
from pinnflow.fpe.solve import PARTICLES, SUMMARY, TABLE
from pinnflow.viz.fpe import plot_solution

__all__ = ["run", "report", "main"]

CONFIGS = Path(__file__).parent / "configs" / "paper000"
RESULTS = Path(__file__).parent / "results" / "paper000"

REPORTED = ("entropy", "entropy_exact", "entropy_rel_error", "score_error", "mean_error", "cov_error",
            "one_particle_cov_error", "op_mean_0", "op_mean_1", "op_cov_00", "op_cov_01", "op_cov_11")


def _particles(d: Path) -> np.ndarray | None:
    """The final particles a method wrote (numpy arrays only, no pickle), or None."""
    if not (d / PARTICLES).exists():
        return None
    with np.load(d / PARTICLES, allow_pickle=False) as z:
        return z["particles"]


def _rows_at(table: pd.DataFrame, times) -> pd.DataFrame:
    """The rows of `table` at the saved times nearest to `times` (each within 1e-6 relative)."""
    idx = []
    for t in times:
        i = int(np.argmin(np.abs(table["t"].to_numpy() - t)))
        if abs(table["t"].iloc[i] - t) < 1e-6 * max(1.0, abs(t)):  # a float32 clock (pinn) is within 1e-7
            idx.append(i)
    return table.iloc[idx]


def _op_cov(row: pd.Series) -> np.ndarray | None:
    """The one-particle covariance matrix from a row's `op_cov_<i><j>` entries (None if absent)."""
    keys = [c for c in row.index if c.startswith("op_cov_") and pd.notna(row[c])]
    if not keys:
        return None
    k = 1 + max(int(c[-1]) for c in keys)
    C = np.zeros((k, k))
    for c in keys:
        i, j = int(c[-2]), int(c[-1])
        C[i, j] = C[j, i] = row[c]
    return C


def _reference_section(table: pd.DataFrame, ref: str, times) -> list[str]:
    """Per method and check time: the one-particle covariance's relative Frobenius difference from the
    reference method's (the SDE with many particles, for problems without a closed form) and the mean's
    distance in units of the reference spread."""
    refs = _rows_at(table[table["method"] == ref], times).set_index("t")
    rows = []
    for method, t in table.groupby("method", sort=False):
        if method == ref:
            continue
        for _, r in _rows_at(t, times).iterrows():
            if r["t"] not in refs.index:
                continue
            R = refs.loc[r["t"]]
            C, Cr = _op_cov(r), _op_cov(R)
            if C is None or Cr is None:
                continue
            means = sorted(c for c in r.index if c.startswith("op_mean_"))
            dm = np.array([r[c] - R[c] for c in means])
            rows.append({"method": method, "t": r["t"],
                         "op_cov_rel_diff": np.linalg.norm(C - Cr) / np.linalg.norm(Cr),
                         "op_mean_diff": np.linalg.norm(dm) / np.sqrt(np.trace(Cr))})
    if not rows:
        return []
    return [f"## One-particle moments against `{ref}`", "",
            "op_cov_rel_diff = ‖C − C_ref‖_F / ‖C_ref‖_F, op_mean_diff = ‖m − m_ref‖ / √tr C_ref", "",
            markdown(pd.DataFrame(rows)), ""]


def report(spec: dict, table: pd.DataFrame, seconds: dict[str, float], budget: str) -> str:
    """Markdown: per method, the reported columns at the check times, then each goal met or not."""
    lines = [f"# {spec['problem']} ({spec.get('problem_params', {})}), budget `{budget}`", "",
             f"Machine: {platform.machine()}, {platform.system()}; seconds per method (the whole call, or the "
             "recorded time steps of a reused run if longer): "
             + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items()), ""]
    times = spec.get("check_times")
    for method, t in table.groupby("method", sort=False):
        rows = _rows_at(t, times) if times else t
        cols = ["t", "n_particles"] + [c for c in REPORTED if c in rows and rows[c].notna().any()]
        lines += [f"## {method}", "", markdown(rows[cols]), ""]
    ref = spec.get("reference")
    if ref is not None and ref in set(table["method"]):
        lines += _reference_section(table, ref, times)
    goals = spec.get("goals", {})
    if goals:
        gm = spec.get("goals_method", "sbtm")
        lines += [f"## Goals (method {gm})", ""]
        sb = table[table["method"] == gm]
        sb = _rows_at(sb, times) if times else sb
        for col, bound in goals.items():
            if col == "seconds":
                measured = seconds.get(gm, float("nan"))
            else:
                measured = float(sb[col].max()) if col in sb else float("nan")
            ok = measured <= bound
            lines.append(f"- max {col} = {measured:.4g} {'<=' if ok else '>'} {bound}: {'met' if ok else 'NOT met'}")
    return "\n".join(lines) + "\n"


def run(name: str, budget: str, out: Path | None = None, methods: list[str] | None = None,
        progress: bool | None = None, configs: Path = CONFIGS, results: Path = RESULTS) -> tuple[pd.DataFrame, str]:
    """Run experiment `name` (`configs/<name>.yaml`) at `budget`; returns (the joint table, the report) and writes
    both to `out` (default `results/<name>_<budget>`). `goals_method` in the spec: whose rows the goals check
    (default sbtm)."""
    spec = load_yaml(configs / f"{name}.yaml")
    if budget not in spec["budgets"]:
        raise KeyError(f"unknown budget {budget!r} for {name}; available: {', '.join(spec['budgets'])}")
    b = dict(spec["budgets"][budget])
    params = dict(spec.get("problem_params", {}))
    params.update(b.pop("problem_params", {}))
    spec["check_times"] = b.pop("check_times", spec.get("check_times"))
    chosen = {m: list(v) for m, v in b.items() if methods is None or m in methods}
    out = results / f"{name}_{budget}" if out is None else Path(out)
    earlier = [m for m in b if m not in chosen and (out / m / TABLE).exists()]
    table, sols = compare(spec["problem"], chosen, problem_params=params, out=out, resume=True, progress=progress,
                          plot=not earlier)  # with earlier results the figures are drawn once, below, for all
    seconds = {m: s.seconds for m, s in sols.items()}
    if earlier:  # a subset was run: the budget's other methods come from their earlier results in `out`
        tables = {m: pd.read_csv(out / m / TABLE) for m in earlier}
        for m in earlier:
            seconds[m] = json.loads((out / m / SUMMARY).read_text())["seconds"]
        table = pd.concat([table] + [t.assign(method=m) for m, t in tables.items()], ignore_index=True)
        table = table[["method"] + [c for c in table.columns if c != "method"]]
        table.to_csv(out / TABLE, index=False)
        problem = next(iter(sols.values())).problem
        plot_solution(problem, {m: t.drop(columns="method") for m, t in table.groupby("method", sort=False)},
                      {**{m: s.particles for m, s in sols.items()}, **{m: _particles(out / m) for m in earlier}}, out)
    for m, t in table.groupby("method"):  # a reused (resumed, finished) run: its recorded step seconds
        recorded = float(t["seconds"].max()) if t["seconds"].notna().any() else 0.0
        seconds[m] = max(seconds[m], recorded)
    text = report({**spec, "problem_params": params}, table, seconds, budget)
    (out / "report.md").write_text(text)
    return table, text


def main(argv: list[str] | None = None, prog: str = "python -m experiments.paper000") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("experiment", choices=sorted(f.stem for f in CONFIGS.glob("*.yaml")))
    p.add_argument("--budget", default="cpu")
    p.add_argument("--methods", nargs="*", help="a subset of the budget's methods")
    p.add_argument("--out", help=f"output directory (default {RESULTS}/<experiment>_<budget>)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    _, text = run(args.experiment, args.budget, args.out, args.methods, False if args.quiet else None)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
