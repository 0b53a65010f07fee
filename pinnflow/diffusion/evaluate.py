"""Evaluation of a trained diffusion model as in paper 002's Tables 1–3 and Figs. 1, 4, 5.

`evaluate(run)` draws `eval.samples` samples from the probability-flow ODE and from the reverse SDE and as many
data points, bins each on the same `eval.bins`² grid over [−eval.box, eval.box]² (nearest node; see
`pinnflow.metrics.histogram` for the definitions) and returns W2² for ODE–SDE (Table 1), ODE–data (Table 2) and
SDE–data (Table 3), with

- `residual`: R̃(θ, φ, 0) at the end of training, the mean squared log-FP residual on `eval.points` points
  x ~ U(Ω), s ~ U(0, T) from a fixed key (the same points for every model; the score-FP residual for a score
  network, which has no log-density);
- `dsm`: the DSM objective on `eval.points` fixed draws (t by the training's time sampling);
- `curl`: the mean of ‖J − Jᵀ‖_F/√2 of the score at t = t_min over a grid on Ω (|∂₁s₂ − ∂₂s₁| in 2-D; zero
  up to round-off for a potential network, Fig. 1);
- `kept_ode`, `kept_sde`: the share of the samples inside the histogram box (the W2² are between the
  renormalised histograms of those; the authors' code drops the rest the same way, without reporting it);
- optional noise floors (`floors`): W2² between two independent data draws (`floor_data`) and between two ODE
  runs from independent prior draws (`floor_ode`) at the same sample count — differences below a few floors
  are not resolved (`../shared/design/fp-diffusion-metrics.md`).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.core.precision import precision
from pinnflow.diffusion.losses import REGULARISERS, TIME_SAMPLING, WEIGHTINGS, dsm_point
from pinnflow.diffusion.train import DiffusionRun, collocation_box
from pinnflow.metrics.histogram import HistogramGrid, histogram, w2_squared
from pinnflow.operators import EXACT

__all__ = ["evaluate", "residual_value", "dsm_value", "curl", "mean_curl", "grid_of", "FIXED_EVAL_KEY"]

FIXED_EVAL_KEY = 20_002  # the residual / DSM / curl points: the same for every model


def grid_of(run: DiffusionRun) -> HistogramGrid:
    e = run.config.eval
    if e.box is None:
        lo, hi = run.dataset.box
        return HistogramGrid(tuple(lo), tuple(hi), e.bins)
    return HistogramGrid.square(e.box, e.bins, run.dataset.dim)


def residual_value(run: DiffusionRun, n: int | None = None) -> tuple[float, str]:
    """(R̃, which residual): the mean squared residual on n fixed points of Ω × [0, T]."""
    n = n or run.config.eval.points
    lo, hi = collocation_box(run.dataset, run.config)
    name = "log_fp" if run.parametrisation.scalar else "score_fp"
    with precision(run.config.precision):
        fields = run.fields()
        kx, ks = jax.random.split(jax.random.PRNGKey(FIXED_EVAL_KEY))
        x = jax.random.uniform(kx, (n, lo.size), minval=jnp.asarray(lo), maxval=jnp.asarray(hi))
        s = jax.random.uniform(ks, (n,), minval=0.0, maxval=run.sde.T)
        reg = REGULARISERS.get(name)
        r = jax.jit(jax.vmap(lambda a, b: reg(fields, run.sde, a, b, EXACT)))(x, s)
    return float(jnp.mean(r)), name


def dsm_value(run: DiffusionRun, n: int | None = None) -> float:
    """The DSM objective of the run's loss on n fixed draws (x₀, t, ε)."""
    n = n or run.config.eval.points
    lc = run.config.loss
    with precision(run.config.precision):
        fields = run.fields()
        k0, kt, ke = jax.random.split(jax.random.PRNGKey(FIXED_EVAL_KEY + 1), 3)
        x0 = run.dataset.sample(k0, n)
        t = TIME_SAMPLING.get(lc.time_sampling)(kt, n, lc.t_min, run.sde.T)
        eps = jax.random.normal(ke, x0.shape, x0.dtype)
        w = WEIGHTINGS.get(lc.weighting)
        per = jax.jit(jax.vmap(lambda a, b, c: dsm_point(fields.score, run.sde, w, a, b, c)))(x0, t, eps)
    return float(jnp.mean(per))


def curl(score, x: jax.Array, t) -> jax.Array:
    """‖J − Jᵀ‖_F/√2 of the score's Jacobian J_ij = ∂_j s_i at one point (|∂₁s₂ − ∂₂s₁| for d = 2)."""
    J = jax.jacfwd(score)(x, t)
    A = J - J.T
    return jnp.sqrt(0.5 * jnp.sum(A * A))


def mean_curl(run: DiffusionRun, t: float | None = None, points: int = 64) -> tuple[float, np.ndarray]:
    """(mean curl, the curl on a points × points grid over Ω) of the run's score at time t (default t_min)."""
    lo, hi = collocation_box(run.dataset, run.config)
    t = run.config.loss.t_min if t is None else t
    with precision(run.config.precision):
        score = run.fields().score
        axes = [np.linspace(a, b, points) for a, b in zip(lo, hi, strict=True)]
        mesh = np.stack(np.meshgrid(*axes[:2], indexing="xy"), -1).reshape(-1, 2)
        if lo.size > 2:  # other coordinates at the box centre
            mesh = np.concatenate([mesh, np.broadcast_to(0.5 * (lo[2:] + hi[2:]), (mesh.shape[0], lo.size - 2))], 1)
        c = jax.jit(jax.vmap(lambda x: curl(score, x, t)))(jnp.asarray(mesh))
    c = np.asarray(c)
    return float(c.mean()), c.reshape(points, points)


def evaluate(run: DiffusionRun, samples: int | None = None, seed: int = 0, floors: tuple[str, ...] = (),
             keep_samples: bool = False) -> tuple[dict, dict]:
    """(row, arrays): the metrics above for one model; `arrays` holds the histograms (and the samples when
    `keep_samples`). `floors` ⊂ {"data", "ode"}."""
    unknown = set(floors) - {"data", "ode"}
    if unknown:
        raise ValueError(f"floors: unknown {sorted(unknown)}; choose from data, ode")
    n = samples or run.config.eval.samples
    grid = grid_of(run)
    row: dict = {"samples": n, "bins": grid.bins, "box": f"[{grid.lo[0]:g}, {grid.hi[0]:g}]^{grid.d}",
                 "w_R": run.config.loss.w_R, "data": run.dataset.name, "seed": run.config.seed,
                 "steps": run.step, "train_seconds": run.train_seconds}
    xs = {}
    for kind in ("ode", "sde"):
        t0 = time.perf_counter()
        xs[kind] = run.sample(kind, n, seed=10 * seed + (1 if kind == "ode" else 2))
        row[f"{kind}_seconds"] = time.perf_counter() - t0
        row[f"{kind}_nonfinite"] = int(np.sum(~np.all(np.isfinite(xs[kind]), axis=1)))
        xs[kind] = xs[kind][np.all(np.isfinite(xs[kind]), axis=1)]
    xs["data"] = run.dataset.draw(10 * seed + 3, n)
    hists = {}
    for k, x in xs.items():  # samples that ran out of the box are a result (kept_*), data outside it an error
        hists[k], row[f"kept_{k}"] = histogram(x, grid, min_kept=0.5 if k == "data" else 0.0)
    t0 = time.perf_counter()
    row["w2_ode_sde"] = w2_squared(hists["ode"], hists["sde"], grid)
    row["w2_ode_data"] = w2_squared(hists["ode"], hists["data"], grid)
    row["w2_sde_data"] = w2_squared(hists["sde"], hists["data"], grid)
    row["w2_seconds"] = (time.perf_counter() - t0) / 3
    if "data" in floors:
        row["floor_data"] = w2_squared(hists["data"], histogram(run.dataset.draw(10 * seed + 4, n), grid)[0], grid)
    if "ode" in floors:
        other = run.sample("ode", n, seed=10 * seed + 5)
        other = histogram(other[np.all(np.isfinite(other), 1)], grid, min_kept=0.0)[0]
        row["floor_ode"] = w2_squared(hists["ode"], other, grid)
    row["residual"], row["residual_kind"] = residual_value(run)
    row["dsm"] = dsm_value(run)
    row["curl"], curl_grid = mean_curl(run)
    arrays = {f"hist_{k}": h.reshape(grid.bins, grid.bins) for k, h in hists.items()} | {"curl": curl_grid}
    if keep_samples:
        arrays |= {f"samples_{k}": x for k, x in xs.items()}
    return row, arrays
