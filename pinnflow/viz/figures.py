"""Figures of a trained run, as in paper 003 Figs. 1–5: samples over the target's contours with the first
marginal, ODE trajectories over time, and the learned density path exp V(·, t) beside the model's samples.

Figures are built with the object API (`matplotlib.figure.Figure`, saved with `fig.savefig`), so plotting
works headless and never touches the user's matplotlib backend or pyplot's figure list. For d > 2, densities
and contours are drawn on the plane of (x₁, x₂) through the centre of the target's box (x₃…x_d = centre),
while samples are projected onto (x₁, x₂); the figures say so. Colour bars accompany every colour scale.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure

from pinnflow.core.precision import in_run_precision
from pinnflow.dynamics.integrators import ode_trajectory
from pinnflow.metrics import ess
from pinnflow.pinn.sampling import Samples, sample

__all__ = ["plot_samples", "plot_trajectories", "plot_density_path"]

_EQ10 = ("general", "anneal", "potential")  # parametrisations whose V is eq. (10): V(·,0) = log p₀, V(·,T) = log ρ − z


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _slice_note(dim: int) -> str:
    """How a d > 2 figure reads: densities on the central slice, samples projected ('' for d ≤ 2)."""
    if dim <= 2:
        return ""
    rest = "x₃" if dim == 3 else "x₃…x_d"
    return f"log ρ on the slice {rest} = centre; samples projected"


def _points(samples) -> np.ndarray:
    """Sample coordinates (n, d) as float64 numpy from a `Samples`, anything with `.x`, or an array."""
    x = samples.x if isinstance(samples, Samples) or hasattr(samples, "x") else samples
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def _finite_rows(x: np.ndarray) -> tuple[np.ndarray, int]:
    """(rows of x with all coordinates finite, number dropped)."""
    keep = np.isfinite(x).all(axis=1)
    return x[keep], int((~keep).sum())


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
    if target.dim == 1:
        lp = np.asarray(target.log_prob(grid.reshape(-1, 1).astype(np.float32)))
        dens = np.exp(lp - lp.max())
        return grid, dens / np.trapezoid(dens, grid)
    if target.sample is None:
        return grid, np.full_like(grid, np.nan)
    xs = np.asarray(target.sample(key, 200_000))[:, 0]
    h, edges = np.histogram(xs, bins=120, range=(lo, hi), density=True)
    return 0.5 * (edges[1:] + edges[:-1]), h


# ---- samples ------------------------------------------------------------------------------------------


def _samples_figure(run, samples, title: str | None = None) -> Figure:
    """The figure of `plot_samples` (not saved)."""
    target = run.target
    lo, hi = target.domain
    x = _points(samples)
    if x.shape[1] != target.dim:
        raise ValueError(f"samples have {x.shape[1]} coordinates, the target {target.name!r} has {target.dim}")
    n_all = len(x)
    x, dropped = _finite_rows(x)
    note = _slice_note(target.dim)
    fig = Figure(figsize=(11 if target.dim >= 2 else 5.5, 4.6), layout="constrained")
    axes = fig.subplots(1, 2 if target.dim >= 2 else 1, squeeze=False)[0]
    if target.dim >= 2:
        ax = axes[0]
        X, Y, pts = _plane_grid(target, 200)
        Z = np.asarray(target.log_prob(pts.astype(np.float32)), dtype=np.float64).reshape(X.shape)
        top = np.max(Z[np.isfinite(Z)]) if np.isfinite(Z).any() else 0.0
        cs = ax.contour(X, Y, np.where(np.isfinite(Z), Z, top - 1e3), levels=np.linspace(top - 12, top, 10),
                        cmap="viridis", linewidths=0.8)
        fig.colorbar(cs, ax=ax, label="target log ρ(x)" + (" on the slice" if note else ""))
        ax.scatter(x[:3000, 0], x[:3000, 1], s=2, c="crimson", alpha=0.4,
                   label="samples" + (" (projected)" if note else ""))
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="$x_1$", ylabel="$x_2$")
        ax.set_title("samples over target log ρ contours" + (f"\n({note})" if note else ""), fontsize=10)
        ax.legend(loc="upper right", fontsize=8, markerscale=4)
    ax = axes[-1]
    grid, dens = _first_marginal(target, lo[0], hi[0], jax.random.PRNGKey(123))
    ax.hist(x[:, 0], bins=120, range=(lo[0], hi[0]), density=True, alpha=0.5, color="crimson",
            label=f"{run.loss.name} samples")
    if np.isfinite(dens).any():
        ax.plot(grid, dens, "k-", lw=1.2, label="exact marginal")
    ax.set(xlabel="$x_1$", ylabel="density")
    ax.set_title("first marginal" + (" (projection on $x_1$)" if target.dim > 1 else ""), fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    head = title or f"{run.loss.name} on {target.name}"
    if dropped:
        head += f"\n{dropped} of {n_all} samples with non-finite coordinates dropped"
    fig.suptitle(head)
    return fig


def plot_samples(run, samples, path: str | Path, title: str | None = None) -> Path:
    """Write `path`. Left (d ≥ 2): model samples over the target's log-density contours with a colour bar
    (first two coordinates; for d > 2 contours on the slice x₃…x_d = centre, samples projected). Right: a
    histogram of the first coordinate vs the exact marginal (paper 003 Fig. 2).

    `samples`: what `pf.sample` returns (a `Samples`; its `.x` is used), or an (n, d) jax / numpy array.
    Samples with a non-finite coordinate are dropped, and the title says how many. Returns `path`."""
    return _save(_samples_figure(run, samples, title), path)


# ---- trajectories -------------------------------------------------------------------------------------


@in_run_precision
def _trajectories_figure(run, n: int = 200, steps: int = 100, key=None) -> Figure:
    """The figure of `plot_trajectories` (not saved)."""
    key = jax.random.PRNGKey(7) if key is None else key
    fields, prior, T = run.fields(), run.setup.prior, run.setup.T
    path_x, ts = ode_trajectory(fields.flow, prior.sample(key, n), 0.0, T, steps)
    xs, ts = np.asarray(path_x), np.asarray(ts)
    dim = run.target.dim
    fig = Figure(figsize=(10, 4.3) if dim >= 2 else (5.5, 4.3), layout="constrained")
    axes = fig.subplots(1, 2 if dim >= 2 else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(ts, xs[:, :, 0], lw=0.5, alpha=0.5, color="tab:blue")
    ax.set(xlabel="t", ylabel="$x_1$", title="ODE trajectories, first coordinate")
    if dim >= 2:
        ax = axes[1]
        for i in range(min(n, 100)):
            ax.plot(xs[:, i, 0], xs[:, i, 1], lw=0.5, alpha=0.4, color="tab:blue")
        ax.scatter(xs[-1, :, 0], xs[-1, :, 1], s=4, color="crimson", zorder=3, label="t = T")
        ax.scatter(xs[0, :, 0], xs[0, :, 1], s=4, color="k", zorder=3, label="t = 0")
        ax.set(xlabel="$x_1$", ylabel="$x_2$",
               title="paths in the plane" + (" (projected on $x_1, x_2$)" if dim > 2 else ""))
        ax.legend(fontsize=8)
    fig.suptitle(f"{run.loss.name} on {run.target.name}")
    return fig


def plot_trajectories(run, path: str | Path, n: int = 200, steps: int = 100, key=None) -> Path:
    """Write `path`: ODE paths of the learned flow, first coordinate against time (left), and the first two
    coordinates in the plane (right, d ≥ 2; projected for d > 2), from n prior samples at t = 0 to t = T
    (paper 003 Fig. 1). Returns `path`."""
    return _save(_trajectories_figure(run, n, steps, key), path)


# ---- density path -------------------------------------------------------------------------------------


def _time_title(t: float, T: float, parametrisation: str) -> str:
    """Panel title; the end points fixed by the parametrisation say so (they show nothing learned)."""
    by = "by eq. 10" if parametrisation in _EQ10 else "by construction"
    if np.isclose(t, T):
        return f"t = T = {t:.2f}\n(target {by}, not learned)"
    if np.isclose(t, 0.0) and parametrisation in _EQ10:
        return f"t = 0\n(prior, {by})"
    return f"t = {t:.2f}\n(learned)"


@in_run_precision
def _density_path_figure(run, times=None, grid: int = 120, samples=None, n_samples: int = 5000, key=None,
                         bins: int = 80) -> Figure:
    """The figure of `plot_density_path` (not saved)."""
    fields, T, target = run.fields(), run.setup.T, run.target
    if target.dim < 2:
        raise ValueError(f"plot_density_path needs d >= 2, the target {target.name!r} has d = {target.dim}")
    times = np.linspace(0.0, T, 5) if times is None else np.atleast_1d(np.asarray(times, dtype=float))
    lo, hi = target.domain
    extent = (lo[0], hi[0], lo[1], hi[1])
    X, _, pts = _plane_grid(target, grid)
    pts = jax.numpy.asarray(pts, dtype=jax.numpy.result_type(float))
    V = jax.jit(jax.vmap(fields.V, in_axes=(0, None)))
    note = _slice_note(target.dim)
    fig = Figure(figsize=(3.0 * (len(times) + 1) + 1.0, 3.9), layout="constrained")
    axes = fig.subplots(1, len(times) + 1, squeeze=False)[0]
    shown = dict(origin="lower", extent=extent, cmap="magma", vmin=0.0, vmax=1.0, aspect="auto")
    im = None
    for ax, t in zip(axes[:-1], times, strict=True):
        v = np.asarray(V(pts, jax.numpy.asarray(t, pts.dtype)), dtype=np.float64).reshape(X.shape)
        top = np.max(v[np.isfinite(v)]) if np.isfinite(v).any() else 0.0
        im = ax.imshow(np.nan_to_num(np.exp(v - top)).T, **shown)
        ax.set_title(_time_title(float(t), T, run.loss.parametrisation), fontsize=9)
        ax.set(xticks=[], yticks=[])
    axes[0].set(xlabel="$x_1$", ylabel="$x_2$")

    # what is learned: the model's ODE samples at T, with the ESS of their importance weights
    if samples is None:
        key = jax.random.PRNGKey(11) if key is None else key
        samples = sample(run, key, n_samples, method="ode")
    x, dropped = _finite_rows(_points(samples))
    h, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=bins, range=((lo[0], hi[0]), (lo[1], hi[1])))
    ax = axes[-1]
    im = ax.imshow(h.T / max(h.max(), 1.0), **shown)
    log_w = getattr(samples, "log_w", None)
    label = "model samples at T"
    if log_w is not None:
        lw = np.asarray(log_w, dtype=np.float64)
        lw = lw[np.isfinite(lw)]
        label += f"\n(ESS {float(ess(lw)):.3f})" if lw.size else "\n(ESS n/a: no finite weight)"
    if dropped:
        label += f", {dropped} non-finite dropped"
    ax.set_title(label, fontsize=9)
    ax.set(xticks=[], yticks=[], xlabel="histogram" + (" (projected)" if note else ""))
    fig.colorbar(im, ax=list(axes), shrink=0.85,
                 label="exp(V − max V) per panel;\nlast: counts / max count")
    head = f"learned density path exp V(·, t): {run.loss.name} on {target.name}"
    fig.suptitle(head + (f"\n({note})" if note else ""), fontsize=11)
    return fig


def plot_density_path(run, path: str | Path, times=None, grid: int = 120, *, samples=None, n_samples: int = 5000,
                      key=None) -> Path:
    """Write `path`: the learned density exp V(x, t) over the first two coordinates at several times
    (paper 003 Fig. 5: how the path a loss found distributes the modes over time), then a last panel with
    what the model actually produces: a 2-D histogram of its ODE samples at T and their ESS.

    The t = T panel is the target by construction (eq. 10: V(·, T) = log ρ − z; the t = 0 panel is the
    prior for eq.-10 parametrisations), so the figure labels it; judge the run by the last panel.
    `samples`: ODE samples to show (a `Samples`, as `pf.sample` returns; without them `n_samples` are drawn
    with `key`). For d > 2, densities are on the slice x₃…x_d = centre and samples are projected.
    Returns `path`."""
    return _save(_density_path_figure(run, times, grid, samples, n_samples, key), path)
