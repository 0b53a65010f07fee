"""Figures of the deterministic sampler against its baselines (paper 001 Figs. 2–6): the reconstructed density of
each method's final particles beside the target (d ≤ 2; d = 1 a KDE, d = 2 the particles over the target's
contours), and the diagnostics over time — SBTM's Fisher estimate, its predicted and measured KL dissipation,
its KL, and every method's L² density error. Object API only (headless, no pyplot state).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pinnflow.metrics.density import box_grid
from pinnflow.metrics.kde import kde
from pinnflow.target import Target

__all__ = ["plot_sampling", "plot_density", "plot_diagnostics"]

COLORS = {"sbtm": "C0", "ula": "C1"}


def _target_density(target: Target, at: np.ndarray, cell: float) -> np.ndarray:
    logp = np.asarray(jax.vmap(target.log_density)(jnp.asarray(at)), np.float64)
    if target.log_Z is not None:
        return np.exp(logp - target.log_Z)
    p = np.exp(logp - logp.max())
    return p / (p.sum() * cell)  # normalised on the grid


def plot_density(target: Target, particles: Mapping[str, np.ndarray], path: str | Path) -> Path | None:
    """d = 1: a KDE of each method's particles over the target density; d = 2: each method's particles over the
    target's density contours (one panel each). None for d > 2."""
    lo, hi = target.domain
    if target.dim == 1:
        at, cell = box_grid(lo, hi, 400)
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(at[:, 0], _target_density(target, at, cell), "k", lw=2, alpha=0.4, label="target")
        for m, X in particles.items():
            dtype = jnp.result_type(float)  # the current default precision (no float64 request without x64)
            ax.plot(at[:, 0], np.asarray(kde(jnp.asarray(X, dtype), jnp.asarray(at, dtype))), color=COLORS.get(m),
                    label=f"{m} (KDE, n = {len(X)})")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend()
    elif target.dim == 2:
        at, cell = box_grid(lo, hi, 150)
        dens = _target_density(target, at, cell).reshape(150, 150)
        fig = Figure(figsize=(4.2 * len(particles), 4), layout="constrained")
        for i, (m, X) in enumerate(particles.items()):
            ax = fig.add_subplot(1, len(particles), i + 1)
            ax.contour(at[:, 0].reshape(150, 150), at[:, 1].reshape(150, 150), dens, levels=8, colors="k",
                       linewidths=0.6, alpha=0.5)
            ax.scatter(X[:, 0], X[:, 1], s=1, alpha=0.3, color=COLORS.get(m))
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_title(f"{m} (n = {len(X)})")
            ax.set_aspect("equal")
    else:
        return None
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _positive(ax, t, y, **kw):
    y = np.asarray(y, np.float64)
    ok = np.isfinite(y) & (y > 0)
    if ok.any():
        ax.plot(np.asarray(t)[ok], y[ok], **kw)


def plot_diagnostics(histories: Mapping[str, pd.DataFrame], path: str | Path, exact: pd.DataFrame | None = None
                     ) -> Path:
    """Over time (log scale): SBTM's Fisher estimate and predicted dissipation against its measured −dKL/dt
    (and the exact F where known); the KL (SBTM's, and an exact curve `exact` with columns t, kl); every
    method's L² density errors."""
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    ax1, ax2, ax3 = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
    h = histories.get("sbtm")
    if h is not None:
        _positive(ax1, h["t"], h["fisher"], color="C0", label="Fisher estimate mean|s − ∇log π|²")
        _positive(ax1, h["t"], h["dissipation"], color="C2", ls="--", label="predicted −dKL/dt (eq. 4.1)")
        if "kl_rate" in h:
            t_mid = 0.5 * (h["t"] + h["t"].shift())
            _positive(ax1, t_mid, h["kl_rate"], color="C3", ls=":", label="measured −ΔKL/Δt")
        if "fisher_exact" in h:
            _positive(ax1, h["t"], h["fisher_exact"], color="k", alpha=0.4, lw=2, label="F at the particles, exact f_t")
        kl = "kl" if "kl" in h else "kl_minus_log_z"
        if kl in h:
            _positive(ax2, h["t"], h[kl], color="C0", label=f"sbtm ({kl}, log f along trajectories)")
    if exact is not None:
        _positive(ax2, exact["t"], exact["kl"], color="k", alpha=0.4, lw=2, label="exact")
        if "fisher" in exact:
            _positive(ax1, exact["t"], exact["fisher"], color="k", lw=1, ls="-.", label="exact F_t")
    for m, hist in histories.items():
        for col, ls in (("l2_target", "-"), ("l2_exact", "--")):
            if col in hist:
                _positive(ax3, hist["t"], hist[col], color=COLORS.get(m), ls=ls, label=f"{m}: {col}")
    for ax, title in ((ax1, "dissipation"), (ax2, "KL(f_t ‖ π)"), (ax3, "L² density error (KDE)")):
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def plot_sampling(target: Target, histories: Mapping[str, pd.DataFrame], particles: Mapping[str, np.ndarray],
                  out: str | Path, exact: pd.DataFrame | None = None) -> list[Path]:
    """`density.png` (d ≤ 2) and `diagnostics.png` in `out` (`exact`: closed-form KL / Fisher curves, columns
    t, kl, fisher); returns the paths written."""
    out = Path(out)
    paths = [plot_diagnostics(histories, out / "diagnostics.png", exact)]
    p = plot_density(target, particles, out / "density.png")
    return paths + ([p] if p is not None else [])
