"""Figures of a trained run (matplotlib, headless): samples over target contours and the first marginal."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

__all__ = ["plot_samples"]


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = run.target
    lo, hi = target.domain
    samples = np.asarray(samples)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    ax = axes[0]
    if target.dim >= 2:
        gx, gy = np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200)
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        pts = np.tile(0.5 * (lo + hi), (X.size, 1))
        pts[:, 0], pts[:, 1] = X.ravel(), Y.ravel()
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
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
