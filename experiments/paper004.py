"""Reproduce paper 004's experiments (Liu, Li et al., *Neural parametric Fokker–Planck equation*, §6) with
`pinnflow.wgf`, and compare it with pinnflow's other Fokker–Planck solvers on the same problems.

    python -m experiments.paper004 moments --budget cpu      # §6.1: OU 2-D (iso, aniso) and 10-D, moment errors
                                                              #   over time against the closed forms, H decay,
                                                              #   the flat gradient flow's mean path (Fig. 16)
    python -m experiments.paper004 styblinski --budget cpu   # §6.2.1, §6.3: d = 30 marginals vs the 1-D SDE
    python -m experiments.paper004 rosenbrock --budget cpu   # §6.2.2: d = 10 samples (no closed form)
    python -m experiments.paper004 compare --budget cpu      # wgf, sbtm, pinn, sde on the 2-D OU and the 10-D case
    python -m experiments.paper004 report                    # experiments/results/paper004/report_<budget>.md

Each experiment is a YAML file `experiments/configs/paper004/<name>.yaml` with `budgets.<budget>`: per run a
problem, its parameters and `key=value` overrides of `WGFConfig` (`compare` uses `experiments.paper000`'s
runner: `budgets.<budget>.<method>`). Results go to `experiments/results/paper004/<name>_<budget>/`: one
directory per run (the WGF run directory, so a rerun resumes or reuses it, and `history.csv`), CSVs, figures
and `report.md`. Goals (the issue's): ‖µ̂ − µ(T)‖ ≤ 0.05 and ‖Σ̂ − Σ(T)‖_F ≤ 0.05 on the OU cases.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from experiments.framework.report import markdown
from pinnflow.core.config import load_yaml
from pinnflow.wgf import WGFConfig, solve

__all__ = ["run_moments", "run_styblinski", "run_rosenbrock", "run_compare", "write_report", "main",
           "wasserstein1_1d"]

CONFIGS = Path(__file__).parent / "configs" / "paper004"
RESULTS = Path(__file__).parent / "results" / "paper004"
GOAL = 0.05


def _budget(name: str, budget: str) -> dict:
    spec = load_yaml(CONFIGS / f"{name}.yaml")
    if budget not in spec["budgets"]:
        raise KeyError(f"unknown budget {budget!r} for {name}; available: {', '.join(spec['budgets'])}")
    return spec["budgets"][budget]


def _solve(run: dict, out: Path, progress):
    """One WGF run from a budget entry {problem, params, overrides, run_dir}; resumes (or reuses) `out/run`, or
    `RESULTS/<run_dir>` when given (e.g. the same run made by `compare`: its config must be the same)."""
    import problems.fokker_planck as F

    problem = F.get(run["problem"], **dict(run.get("params") or {}))
    cfg = WGFConfig().override(list(run.get("overrides") or []))
    run_dir = RESULTS / run["run_dir"] if run.get("run_dir") else out / "run"
    r = solve(problem, cfg, run_dir=run_dir, resume=True, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    r.history.to_csv(out / "history.csv", index=False)
    return r


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------- moments

def run_moments(budget: str, progress=None) -> pd.DataFrame:
    """§6.1: each run's errors over time; a summary row per run at T; figures."""
    runs = _budget("moments", budget)
    out = RESULTS / f"moments_{budget}"
    rows, results = [], {}
    for name, run in runs.items():
        r = _solve(run, out / name, progress)
        results[name] = r
        last = r.history.iloc[-1]
        rows.append({"run": name, "problem": r.problem.name, "d": r.problem.dim, "scheme": r.config.scheme.kind,
                     "T": float(last["t"]), "mean_abs_error": last.get("mean_abs_error", np.nan),
                     "cov_fro_error": last.get("cov_fro_error", np.nan),
                     "max_mean_abs_error": r.history["mean_abs_error"].max(),
                     "max_cov_fro_error": r.history["cov_fro_error"].max(),
                     "H": last["H"], "H_exact": last.get("H_exact", np.nan), "samples": r.config.eval.samples,
                     "seconds": r.history["seconds"].max(), "seconds_per_step": r.seconds_per_step})
    table = pd.DataFrame(rows)
    table.to_csv(out / "summary.csv", index=False)
    _plot_moments(results, out)
    return table


def _plot_moments(results: dict, out: Path) -> None:
    plt = _plt()
    semi = {k: r for k, r in results.items() if r.config.scheme.kind == "semi_implicit"}
    fig, axes = plt.subplots(2, len(semi), figsize=(4.2 * len(semi), 7), squeeze=False)
    for j, (name, r) in enumerate(semi.items()):
        h = r.history
        ax = axes[0, j]
        ax.semilogy(h["t"], h["mean_abs_error"], label="‖µ̂ − µ(t)‖")
        ax.semilogy(h["t"], h["cov_fro_error"], label="‖Σ̂ − Σ(t)‖_F")
        ax.axhline(GOAL, color="k", lw=0.8, ls=":", label="goal 0.05")
        ax.set_title(f"{name} (d = {r.problem.dim})")
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
        ax = axes[1, j]
        ax.plot(h["t"], h["H"], label="H(θ_k)")
        if "H_exact" in h:
            ax.plot(h["t"], h["H_exact"], "k--", label="H(ρ_t) exact")
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "errors_and_free_energy.png", dpi=110)
    plt.close(fig)
    two_d = {k: r for k, r in results.items() if r.problem.dim == 2}
    if two_d:  # the mean path (Figs. 15, 16): Wasserstein vs flat
        fig, ax = plt.subplots(figsize=(5, 4.5))
        for name, r in two_d.items():
            ax.plot(r.history["mean_0"], r.history["mean_1"], ".-", ms=3, label=f"{name}")
        for prob in {r.problem.name: r.problem for r in two_d.values()}.values():
            ts = np.linspace(0, prob.T, 200)
            m = np.array([np.asarray(prob.mean(t)) for t in ts])
            ax.plot(m[:, 0], m[:, 1], "k--", lw=1, label=f"exact {prob.name}")
        ax.set_xlabel("mean x₁")
        ax.set_ylabel("mean x₂")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "mean_paths.png", dpi=110)
        plt.close(fig)


# ---------------------------------------------------------------------------------------------- styblinski

def wasserstein1_1d(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two 1-D samples: ∫|F_a − F_b| (exact for the empirical laws; `scipy`-free)."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    allv = np.concatenate([a, b])
    allv.sort()
    fa = np.searchsorted(a, allv[:-1], side="right") / len(a)
    fb = np.searchsorted(b, allv[:-1], side="right") / len(b)
    return float(np.sum(np.abs(fa - fb) * np.diff(allv)))


def _reference_1d(beta: float, times, n: int, dt: float, seed: int):
    """Samples of the 1-D Styblinski–Tang problem at `times` by Euler–Maruyama (dX = −V′dt + √(2β)dW)."""
    from pinnflow.baselines.sde_ensemble import simulate_ensemble

    ens = simulate_ensemble("styblinski_tang", n, times, jax.random.PRNGKey(seed), dt=dt,
                            problem_params={"d": 1, "beta": beta, "T": float(max(times))})
    return {float(t): np.asarray(ens.particles[i])[:, 0] for i, t in enumerate(ens.times)}


def run_styblinski(budget: str, progress=None) -> pd.DataFrame:
    """§6.2.1 / §6.3: the d = 30 marginals (all coordinates pooled: each has the same law) against the 1-D SDE;
    W1 at each time, with the reference's own noise floor (two independent SDE ensembles)."""
    spec = _budget("styblinski", budget)
    out = RESULTS / f"styblinski_{budget}"
    times = [float(t) for t in spec["times"]]
    ref_n, ref_dt = int(spec["reference"]["n"]), float(spec["reference"]["dt"])
    rows, marg = [], {}
    for name, run in spec["runs"].items():
        r = _solve(run, out / name, progress)
        beta = r.problem.beta
        ref = _reference_1d(beta, times, ref_n, ref_dt, 0)
        ref2 = _reference_1d(beta, times, ref_n, ref_dt, 1)
        for t in times:
            y, _ = r.sample(int(spec["samples"]), jax.random.PRNGKey(5), t=t)
            snap_t = min(r.snapshots, key=lambda s: abs(s - t))
            if abs(snap_t - t) > 1e-9:
                continue
            pooled = y.reshape(-1)
            rows.append({"run": name, "beta": beta, "t": t, "w1": wasserstein1_1d(pooled, ref[t]),
                         "w1_reference_floor": wasserstein1_1d(ref2[t], ref[t]),
                         "mean": float(pooled.mean()), "mean_ref": float(ref[t].mean()),
                         "std": float(pooled.std()), "std_ref": float(ref[t].std()),
                         "coordinate_15_w1": wasserstein1_1d(y[:, min(14, y.shape[1] - 1)], ref[t])})
            marg[(name, t)] = (y[:, min(14, y.shape[1] - 1)], ref[t])
        rows[-1]["seconds"] = float(r.history["seconds"].max())
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "marginals.csv", index=False)
    _plot_marginals(marg, spec["runs"], times, out)
    return table


def _plot_marginals(marg: dict, runs: dict, times: list[float], out: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(len(runs), len(times), figsize=(2.6 * len(times), 2.3 * len(runs)), squeeze=False)
    for i, name in enumerate(runs):
        for j, t in enumerate(times):
            ax = axes[i, j]
            if (name, t) not in marg:
                ax.axis("off")
                continue
            y, ref = marg[(name, t)]
            lo, hi = np.percentile(np.concatenate([y, ref]), [0.1, 99.9])
            bins = np.linspace(lo, hi, 60)
            ax.hist(ref, bins=bins, density=True, alpha=0.5, color="tab:blue", label="1-D SDE")
            ax.hist(y, bins=bins, density=True, histtype="step", color="tab:red", label="wgf x₁₅")
            ax.set_title(f"{name}, t = {t:g}", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "marginals.png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- rosenbrock

def run_rosenbrock(budget: str, progress=None) -> pd.DataFrame:
    """§6.2.2: samples on the (1, 2), (7, 8), (9, 10) planes over time; H decay (no closed form)."""
    spec = _budget("rosenbrock", budget)
    out = RESULTS / f"rosenbrock_{budget}"
    r = _solve(spec["run"], out / "run_rosenbrock", progress)
    plt = _plt()
    times = [float(t) for t in spec["times"]]
    planes = [(0, 1), (6, 7), (8, 9)]
    fig, axes = plt.subplots(len(planes), len(times), figsize=(2.4 * len(times), 2.4 * len(planes)), squeeze=False)
    for j, t in enumerate(times):
        y, _ = r.sample(3000, jax.random.PRNGKey(3), t=t)
        for i, (a, b) in enumerate(planes):
            axes[i, j].plot(y[:, a], y[:, b], ".", ms=1, alpha=0.4)
            axes[i, j].set_title(f"x{a + 1}-x{b + 1}, t = {t:g}", fontsize=8)
            axes[i, j].tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "samples.png", dpi=110)
    plt.close(fig)
    return r.history[["t", "H", "entropy", "seconds"]]


# ---------------------------------------------------------------------------------------------- compare

def run_compare(budget: str, progress=None, methods: list[str] | None = None,
                only: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """wgf, sbtm, pinn and sde on each problem of `compare.yaml` (experiments.paper000's runner; `methods`: a
    subset to (re)run, the others' earlier results are joined; `only`: a subset of the experiments); adds the
    absolute errors ‖µ̂ − µ‖ and ‖Σ̂ − Σ‖_F from the relative ones for every method."""
    import problems.fokker_planck as F
    from experiments import paper000

    spec = load_yaml(CONFIGS / "compare.yaml")
    tables = {}
    for name in spec["experiments"]:
        if only and name not in only:
            continue
        table, _ = paper000.run(name, budget, methods=methods, progress=progress, configs=CONFIGS, results=RESULTS)
        sub = load_yaml(CONFIGS / f"{name}.yaml")
        problem = F.get(sub["problem"], **dict(sub.get("problem_params") or {}))
        scale_m = np.array([float(np.sqrt(np.trace(np.asarray(problem.cov(t))))) for t in table["t"]])
        scale_c = np.array([float(np.linalg.norm(np.asarray(problem.cov(t)))) for t in table["t"]])
        table["mean_abs_error"] = table["mean_error"] * scale_m
        table["cov_fro_error"] = table["cov_error"] * scale_c
        table.to_csv(RESULTS / f"{name}_{budget}" / "table_abs.csv", index=False)
        tables[name] = table
    return tables


# ---------------------------------------------------------------------------------------------- report

def write_report(budget: str = "cpu") -> str:
    """One markdown report from whatever results exist at `budget`."""
    lines = [f"# Paper 004 (neural parametric Fokker–Planck), budget `{budget}`", "",
             f"Machine: {platform.machine()}, {platform.system()}; 2 cores shared. Regenerate with "
             f"`python -m experiments.paper004 report --budget {budget}`.", ""]
    p = RESULTS / f"moments_{budget}" / "summary.csv"
    if p.exists():
        t = pd.read_csv(p)
        lines += ["## OU cases (§6.1): errors at T against the closed forms", "",
                  f"Goal: both ≤ {GOAL} at T. Moments from the eval samples of one fixed reference draw.", "",
                  markdown(t), ""]
        for _, row in t[t["scheme"] == "semi_implicit"].iterrows():
            ok = row["mean_abs_error"] <= GOAL and row["cov_fro_error"] <= GOAL
            lines.append(f"- {row['run']}: ‖µ̂ − µ(T)‖ = {row['mean_abs_error']:.4f}, ‖Σ̂ − Σ(T)‖_F = "
                         f"{row['cov_fro_error']:.4f}: {'met' if ok else 'NOT met'}")
        lines += ["", f"Figures: `moments_{budget}/errors_and_free_energy.png`, `moments_{budget}/mean_paths.png`.",
                  ""]
    p = RESULTS / f"styblinski_{budget}" / "marginals.csv"
    if p.exists():
        t = pd.read_csv(p)
        lines += ["## Styblinski–Tang d = 30 (§6.2.1, §6.3): marginals against the 1-D SDE", "",
                  "w1: W1 between the flow's marginal (all 30 coordinates pooled) and the 1-D Euler–Maruyama "
                  "reference (drift −V′); w1_reference_floor: W1 between two independent reference ensembles.", "",
                  markdown(t), "", f"Figure: `styblinski_{budget}/marginals.png`.", ""]
    for name in ("compare_quadratic", "compare_quadratic_10d"):
        p = RESULTS / f"{name}_{budget}" / "table_abs.csv"
        if p.exists():
            t = pd.read_csv(p)
            last = t.loc[t.groupby("method")["t"].idxmax()]
            cols = [c for c in ("method", "t", "mean_abs_error", "cov_fro_error", "entropy", "entropy_exact",
                                "seconds", "n_particles") if c in last]
            lines += [f"## Four solvers on `{name[len('compare_'):]}` at T", "",
                      markdown(last[cols]), "", f"Full table and figures: `{name}_{budget}/`.", ""]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"report_{budget}.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.paper004", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["moments", "styblinski", "rosenbrock", "compare", "report"])
    p.add_argument("--budget", default="cpu")
    p.add_argument("--methods", nargs="*", help="compare: a subset of the methods to (re)run")
    p.add_argument("--only", nargs="*", help="compare: a subset of the experiments of compare.yaml")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    progress = False if args.quiet else None
    if args.what == "moments":
        print(run_moments(args.budget, progress).to_string(index=False))
    elif args.what == "styblinski":
        print(run_styblinski(args.budget, progress).to_string(index=False))
    elif args.what == "rosenbrock":
        print(run_rosenbrock(args.budget, progress).to_string(index=False))
    elif args.what == "compare":
        for name, t in run_compare(args.budget, progress, args.methods, args.only).items():
            print(name)
            print(t.to_string(index=False))
    print(write_report(args.budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
