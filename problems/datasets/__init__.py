"""Data sets by name (paper 002 §4, Fig. 2), the third kind of problem beside targets and Fokker–Planck problems:
`problems.datasets.get(name, **params)`, `names()`, `register(factory)` (the factory returns a
`pinnflow.Dataset`). Every sampler is seeded by its JAX key.

The paper does not print its data laws; these follow its public code (github.com/teojd/ODESDEGap,
`data_dists.py`), with the same scales:

- `mixture`: 9 equal-weight Gaussians at 0.65·{(±2, ±2), (0, 0), (±4, 0), (0, ±4)}, covariance 0.65²·0.2·I;
  its exact law is in `info["mixture"]`, so the perturbed score is known in closed form.
- `circles`: two concentric rings of radii 1.3 and 2.8, Gaussian radial spread 0.2, uniform angle.
- `checkerboard`: uniform on the 8 dark cells of a 4 × 4 board of 1.5-wide cells covering [−3, 3]².
- `gaussian`: one Gaussian N(mean, std²I) (closed forms for tests).

Boxes: [−3.5, 3.5]² (the reference code's collocation box; it holds all but a negligible share of the data).
"""

import jax
import jax.numpy as jnp
import numpy as np

from pinnflow.core.registry import Registry
from pinnflow.dataset import Dataset

DATASETS: Registry[Dataset] = Registry("data set")
register = DATASETS.register
names = DATASETS.names
get = DATASETS.get

__all__ = ["DATASETS", "register", "names", "get", "gaussian_mixture"]

BOX = ((-3.5, -3.5), (3.5, 3.5))


def gaussian_mixture(name: str, weights, means, covs, box=BOX) -> Dataset:
    """A Gaussian mixture Σ_k w_k N(m_k, C_k), exact law in `info["mixture"]` (weights, means, covs)."""
    w = np.asarray(weights, float)
    w = w / w.sum()
    m = np.asarray(means, float)
    C = np.asarray(covs, float)
    if m.ndim != 2 or C.shape != (m.shape[0], m.shape[1], m.shape[1]) or w.shape != (m.shape[0],):
        raise ValueError(f"mixture {name!r}: expected weights (K,), means (K, d), covs (K, d, d); got "
                         f"{w.shape}, {m.shape}, {C.shape}")
    L = np.linalg.cholesky(C)  # raises for a covariance that is not positive definite
    logw, mj, Lj = jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(L)

    def sampler(key, n):
        kc, kz = jax.random.split(key)
        k = jax.random.categorical(kc, logw, shape=(n,))
        z = jax.random.normal(kz, (n, m.shape[1]), mj.dtype)
        return mj[k] + jnp.einsum("nij,nj->ni", Lj[k], z)

    return Dataset(name, m.shape[1], sampler, box, {"mixture": {"weights": w, "means": m, "covs": C}})


@register(name="mixture")
def mixture(scale: float = 0.65, variance: float = 0.2) -> Dataset:
    centres = np.array([[2, -2], [-2, 2], [2, 2], [-2, -2], [0, 0], [4, 0], [-4, 0], [0, 4], [0, -4]], float)
    covs = np.broadcast_to(scale**2 * variance * np.eye(2), (9, 2, 2))
    return gaussian_mixture("mixture", np.ones(9), scale * centres, covs)


@register(name="gaussian")
def gaussian(mean=(0.5, -0.5), std: float = 0.5, dim: int = 2) -> Dataset:
    m = np.broadcast_to(np.asarray(mean, float), (dim,))
    return gaussian_mixture("gaussian", [1.0], m[None], (std**2 * np.eye(dim))[None],
                            box=(tuple(m - 7 * std), tuple(m + 7 * std)))


@register(name="circles")
def circles(radii=(1.3, 2.8), spread: float = 0.2) -> Dataset:
    r = jnp.asarray(radii, float)

    def sampler(key, n):
        kr, ka, kn = jax.random.split(key, 3)
        ring = jax.random.randint(kr, (n,), 0, r.shape[0])
        rad = r[ring] + spread * jax.random.normal(kn, (n,))
        ang = jax.random.uniform(ka, (n,), maxval=2 * jnp.pi)
        return jnp.stack([rad * jnp.cos(ang), rad * jnp.sin(ang)], axis=1)

    return Dataset("circles", 2, sampler, BOX, {"radii": tuple(radii), "spread": spread})


@register(name="checkerboard")
def checkerboard(cells: int = 4, half_width: float = 3.0) -> Dataset:
    if cells < 2:
        raise ValueError(f"checkerboard: cells must be >= 2, got {cells}")
    side = 2 * half_width / cells
    ij = np.array([(i, j) for i in range(cells) for j in range(cells) if (i + j) % 2 == 0], float)
    corners = jnp.asarray(-half_width + side * ij)

    def sampler(key, n):
        kc, ku = jax.random.split(key)
        c = jax.random.randint(kc, (n,), 0, corners.shape[0])
        return corners[c] + side * jax.random.uniform(ku, (n, 2))

    box = max(3.5, half_width + 0.5)
    return Dataset("checkerboard", 2, sampler, ((-box, -box), (box, box)), {"cells": cells, "side": side})
