"""Figures of Fokker–Planck solutions (paper 000 Figs. 1–2): the entropy over time by each method against the
exact curve, the moment and score errors over time, and the one-particle density at the final time (a kernel
density estimate of each method's particles beside the exact density where known).

Input is the standard tables of `pinnflow.fpe.methods` ({method: table}) and the final particles ({method:
(n, d) or None}); figures use the object API (headless, no pyplot state), as `pinnflow.viz.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.metrics.kde import kde

__all__ = ["plot_solution", "plot_entropy", "plot_errors", "plot_moments", "plot_one_particle_density",
           "one_particle_density"]


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    return path


def plot_entropy(problem: FokkerPlanckProblem, tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Entropy S_t against t for every method that has one (SBTM: routes (16) solid, (17) dashed), with the
    exact curve where the problem knows it."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    T = max(float(t["t"].max()) for t in tables.values())
    if problem.entropy is not None:
        ts = np.linspace(0.0, T, 200)
        ax.plot(ts, [float(problem.entropy(t)) for t in ts], color="k", lw=2, alpha=0.4, label="exact")
    for name, t in tables.items():
        if t["entropy"].notna().any():
            (line,) = ax.plot(t["t"], t["entropy"], marker=".", label=name)
            if t["entropy_17"].notna().any():
                ax.plot(t["t"], t["entropy_17"], ls="--", color=line.get_color(), label=f"{name} (route 17)")
    ax.set(xlabel="t", ylabel="entropy $-\\int\\rho\\log\\rho$", title=f"{problem.name} (d = {problem.dim})")
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


_ERRORS = (("mean_error", "mean error / $\\sqrt{\\mathrm{tr}\\,C}$"),
           ("cov_error", "relative covariance error"),
           ("one_particle_cov_error", "one-particle covariance error"),
           ("score_error", "relative score error (eq. 22)"))


def plot_errors(problem: FokkerPlanckProblem, tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path | None:
    """The columns of `_ERRORS` that some method filled, one panel each, log scale, against t (None if none)."""
    cols = [(c, lab) for c, lab in _ERRORS if any(t[c].notna().any() for t in tables.values())]
    if not cols:
        return None
    fig = Figure(figsize=(4 * len(cols), 3.5), layout="constrained")
    for ax, (c, lab) in zip(fig.subplots(1, len(cols), squeeze=False)[0], cols, strict=True):
        for name, t in tables.items():
            ok = t[c].notna() & (t[c] > 0)
            if ok.any():
                ax.semilogy(t["t"][ok], t[c][ok], marker=".", label=name)
        ax.set(xlabel="t", title=lab)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"{problem.name}: errors against the exact solution")
    return _save(fig, Path(path))


def plot_moments(problem: FokkerPlanckProblem, tables: Mapping[str, pd.DataFrame], path: str | Path
                 ) -> Path | None:
    """The one-particle mean and covariance entries (`op_mean_*`, `op_cov_*` columns) against t, one panel
    each, every method as a line and the exact curve where known (paper 000 Figs. 1B and 4). None if no
    method reported them."""
    cols = sorted({c for t in tables.values() for c in t.columns if c.startswith(("op_mean_", "op_cov_"))})
    if not cols:
        return None
    exact = None
    if problem.mean is not None and problem.cov is not None:
        from pinnflow.metrics.solutions import one_particle_columns, one_particle_moments

        T = max(float(t["t"].max()) for t in tables.values())
        ts = np.linspace(0.0, T, 101)
        parts = problem.particles or (1, problem.dim)
        rows = [{k: float(v) for k, v in one_particle_columns(
            *one_particle_moments(problem.mean(t), problem.cov(t), parts)).items()} for t in ts]
        exact = pd.DataFrame(rows).assign(t=ts)
    ncol = min(len(cols), 3)
    nrow = -(-len(cols) // ncol)
    fig = Figure(figsize=(4 * ncol, 3 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, c in zip(axes, cols, strict=False):
        if exact is not None and c in exact:
            ax.plot(exact["t"], exact[c], color="k", lw=2, alpha=0.4, label="exact")
        for name, t in tables.items():
            if c in t and t[c].notna().any():
                ax.plot(t["t"], t[c], marker=".", label=name)
        ax.set(xlabel="t", title=c.replace("op_", "one-particle "))
    for ax in axes[len(cols):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{problem.name}: one-particle mean and covariance")
    return _save(fig, Path(path))


def one_particle_density(problem: FokkerPlanckProblem, t: float, points: np.ndarray) -> np.ndarray | None:
    """The exact one-particle density at `points` (m, k), or None when not known. Without particles it is the
    problem's exact density exp log_rho(·, t) (k = d). For a particle system with an exact density, the
    solution is taken to be Gaussian (the exact mean and covariance, as for `harmonic_trap`, the one particle
    system with a closed form) and the one-particle density is the mixture (1/N)Σ_i N(m_i, C_ii)."""
    if problem.log_rho is None:
        return None
    if problem.particles is None:
        x = jnp.asarray(points, jnp.float32)
        return np.asarray(jnp.exp(jax.vmap(problem.log_rho, in_axes=(0, None))(x, jnp.asarray(t, x.dtype))))
    if problem.mean is None or problem.cov is None:
        return None
    N, k = problem.particles
    m = np.asarray(problem.mean(t), np.float64).reshape(N, k)
    C = np.asarray(problem.cov(t), np.float64).reshape(N, k, N, k)
    out = np.zeros(len(points))
    for i in range(N):
        Ci = C[i, :, i, :]
        diff = points - m[i]
        sol = np.linalg.solve(Ci, diff.T).T
        out += np.exp(-0.5 * np.sum(diff * sol, axis=1)) / np.sqrt(np.linalg.det(2 * np.pi * Ci))
    return out / N


def plot_one_particle_density(problem: FokkerPlanckProblem, particles: Mapping[str, np.ndarray | None],
                              t: float, path: str | Path, grid: int = 80) -> Path | None:
    """Heat maps of the one-particle density at time t on the plane of its first two coordinates: the exact
    one where known, then a KDE (`pinnflow.metrics.kde`, Scott's bandwidth) of each method's particles
    (pooled over the N particles of a particle system). None unless the one-particle space is 2-D."""
    k = problem.particles[1] if problem.particles is not None else problem.dim
    pts = {n: np.asarray(p, np.float64).reshape(-1, k) for n, p in particles.items() if p is not None}
    if k != 2 or not pts:
        return None
    allp = np.concatenate(list(pts.values()))
    lo, hi = np.quantile(allp, 0.005, axis=0), np.quantile(allp, 0.995, axis=0)
    pad = 0.15 * (hi - lo)
    gx, gy = (np.linspace(lo[j] - pad[j], hi[j] + pad[j], grid) for j in range(2))
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    at = np.stack([X.ravel(), Y.ravel()], axis=1)
    panels = []
    exact = one_particle_density(problem, t, at)
    if exact is not None:
        panels.append(("exact", exact))
    for name, p in pts.items():
        panels.append((f"{name} (KDE, {len(p)} points)", np.asarray(kde(jnp.asarray(p), jnp.asarray(at)))))
    # one colour scale: the exact density's maximum (else the median panel's), so that a collapsed
    # method (the noise-free dynamics) saturates instead of washing out the others
    vmax = float(np.max(exact)) if exact is not None else float(np.median([np.max(v) for _, v in panels]))
    fig = Figure(figsize=(3.6 * len(panels) + 0.6, 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, v) in zip(axes, panels, strict=True):
        im = ax.pcolormesh(X, Y, v.reshape(X.shape), vmin=0.0, vmax=vmax, shading="auto", cmap="viridis")
        ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    fig.colorbar(im, ax=axes.tolist(), shrink=0.85, label="one-particle density (clipped)")
    fig.suptitle(f"{problem.name} at t = {t:g}")
    return _save(fig, Path(path))


def plot_solution(problem: FokkerPlanckProblem, tables: Mapping[str, pd.DataFrame],
                  particles: Mapping[str, np.ndarray | None], out: str | Path) -> list[Path]:
    """All figures of one or several methods' solutions into directory `out`: entropy.png, errors.png,
    moments.png, one_particle_density.png (those that apply). Returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_end = float(min(t["t"].iloc[-1] for t in tables.values()))
    paths = [plot_entropy(problem, tables, out / "entropy.png"),
             plot_errors(problem, tables, out / "errors.png"),
             plot_moments(problem, tables, out / "moments.png"),
             plot_one_particle_density(problem, particles, t_end, out / "one_particle_density.png")]
    return [p for p in paths if p is not None]
