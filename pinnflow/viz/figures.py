"""Figures of a trained run (matplotlib, headless), as in paper 003 Figs. 1–5: samples over the target's
contours with the first marginal, ODE trajectories over time, and the learned density path exp V(·, t)."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from pinnflow.core.precision import in_run_precision
from pinnflow.dynamics.integrators import ode_trajectory

__all__ = ["plot_samples", "plot_trajectories", "plot_density_path"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.clf()
    return path


def _plane_grid(target, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, Y, points): an n × n grid over the first two coordinates of the target's box, the other coordinates
    at the box centre; points has shape (n², d)."""
    lo, hi = target.domain
    X, Y = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n), indexing="ij")
    pts = np.tile(0.5 * (lo + hi), (X.size, 1))
    pts[:, 0], pts[:, 1] = X.ravel(), Y.ravel()
    return X, Y, pts


def _first_marginal(target, lo: float, hi: float, key) -> tuple[np.ndarray, np.ndarray]:
    """Exact first-coordinate marginal on a grid: quadrature for d = 2, else a histogram of exact samples."""
    grid = np.linspace(lo, hi, 400)
    if target.dim == 2:
        y = np.linspace(target.domain[0][1], target.domain[1][1], 800)
        X, Y = np.meshgrid(grid, y, indexing="ij")
        lp = np.asarray(target.log_prob(np.stack([X, Y], -1).reshape(-1, 2).astype(np.float32))).reshape(X.shape)
        dens = np.exp(lp - lp.max()).sum(1)
        return grid, dens / np.trapezoid(dens, grid)
    if target.sample is None:
        return grid, np.full_like(grid, np.nan)
    xs = np.asarray(target.sample(key, 200_000))[:, 0]
    h, edges = np.histogram(xs, bins=120, range=(lo, hi), density=True)
    return 0.5 * (edges[1:] + edges[:-1]), h


def plot_samples(run, samples: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """Left: model samples over the target's log-density contours (first two coordinates, other coordinates
    at the domain centre). Right: histogram of the first coordinate vs the exact marginal (paper 003 Fig. 2)."""
    plt = _pyplot()
    target = run.target
    lo, hi = target.domain
    samples = np.asarray(samples)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    ax = axes[0]
    if target.dim >= 2:
        X, Y, pts = _plane_grid(target, 200)
        Z = np.asarray(target.log_prob(pts.astype(np.float32))).reshape(X.shape)
        ax.contour(X, Y, Z, levels=np.linspace(Z.max() - 12, Z.max(), 10), cmap="viridis", linewidths=0.8)
        ax.scatter(samples[:3000, 0], samples[:3000, 1], s=2, c="crimson", alpha=0.4, label="samples")
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="$x_1$", ylabel="$x_2$")
    ax.set_title("samples over target contours")
    ax = axes[1]
    grid, dens = _first_marginal(target, lo[0], hi[0], jax.random.PRNGKey(123))
    ax.hist(samples[:, 0], bins=120, range=(lo[0], hi[0]), density=True, alpha=0.5, color="crimson",
            label=f"{run.loss.name} samples")
    ax.plot(grid, dens, "k-", lw=1.2, label="exact marginal")
    ax.set(xlabel="$x_1$", ylabel="density", title="first marginal")
    ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title or f"{run.loss.name} on {target.name}")
    out = _save(fig, path)
    plt.close(fig)
    return out


@in_run_precision
def plot_trajectories(run, path: str | Path, n: int = 200, steps: int = 100, key=None) -> Path:
    """ODE paths of the learned flow, first coordinate against time (left), and the first two coordinates
    in the plane (right, d ≥ 2), from prior samples at t = 0 to the target at t = T (paper 003 Fig. 1)."""
    plt = _pyplot()
    key = jax.random.PRNGKey(7) if key is None else key
    fields, prior, T = run.fields(), run.setup.prior, run.setup.T
    path_x, ts = ode_trajectory(fields.flow, prior.sample(key, n), 0.0, T, steps)
    xs, ts = np.asarray(path_x), np.asarray(ts)
    fig, axes = plt.subplots(1, 2 if run.target.dim >= 2 else 1, figsize=(10, 4.3), squeeze=False)
    ax = axes[0, 0]
    ax.plot(ts, xs[:, :, 0], lw=0.5, alpha=0.5, color="tab:blue")
    ax.set(xlabel="t", ylabel="$x_1$", title="ODE trajectories")
    if run.target.dim >= 2:
        ax = axes[0, 1]
        for i in range(min(n, 100)):
            ax.plot(xs[:, i, 0], xs[:, i, 1], lw=0.5, alpha=0.4, color="tab:blue")
        ax.scatter(xs[-1, :, 0], xs[-1, :, 1], s=4, color="crimson", zorder=3, label="t = T")
        ax.scatter(xs[0, :, 0], xs[0, :, 1], s=4, color="k", zorder=3, label="t = 0")
        ax.set(xlabel="$x_1$", ylabel="$x_2$", title="paths in the plane")
        ax.legend(fontsize=8)
    fig.suptitle(f"{run.loss.name} on {run.target.name}")
    out = _save(fig, path)
    plt.close(fig)
    return out


@in_run_precision
def plot_density_path(run, path: str | Path, times=None, grid: int = 120) -> Path:
    """The learned density exp V(x, t) over the first two coordinates (others at the domain centre) at
    several times (paper 003 Fig. 5: how the path a loss found distributes the modes over time)."""
    plt = _pyplot()
    fields, T = run.fields(), run.setup.T
    times = np.linspace(0.0, T, 5) if times is None else np.asarray(times)
    lo, hi = run.target.domain
    X, Y, pts = _plane_grid(run.target, grid)
    pts = jax.numpy.asarray(pts, dtype=jax.numpy.result_type(float))
    V = jax.jit(jax.vmap(fields.V, in_axes=(0, None)))
    fig, axes = plt.subplots(1, len(times), figsize=(3.2 * len(times), 3.2), squeeze=False)
    for ax, t in zip(axes[0], times, strict=True):
        v = np.asarray(V(pts, jax.numpy.asarray(t, pts.dtype))).reshape(X.shape)
        ax.imshow(np.exp(v - v.max()).T, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="magma")
        ax.set(title=f"t = {t:.2f}", xticks=[], yticks=[])
    fig.suptitle(f"learned density path exp V(·, t): {run.loss.name} on {run.target.name}")
    out = _save(fig, path)
    plt.close(fig)
    return out
