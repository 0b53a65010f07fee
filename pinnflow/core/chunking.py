"""The gradient of a mean over collocation points, accumulated over chunks of points.

A residual loss is L(θ) = Σ_k w_k mean_i r_k(θ; x_i)² over a batch of points. `mean_value_and_grad` computes
(L, {k: mean_i r_k²}) and ∇_θ L either by one `vmap` over the whole batch or, with `chunk = c`, by a `lax.scan`
over slices of c points that adds up each slice's value and gradient. The two agree to floating-point
round-off (the sums are taken in a different order).

Why chunk: on a CPU the per-point work of a residual (d tangents through every layer, arrays of
batch × d × width) vmapped over thousands of points does not fit in cache, and XLA's CPU kernels then run at
memory speed; for a slice of 16–64 points forward and backward pass stay in cache. Measured by
`experiments/bench_step.py` (the `lean_vmap_s` and `lean_s` columns). On a GPU one vmap over the batch is
faster, and across several devices a scan would serialise the sharded batch, so `resolve_chunk("auto", …)`
chunks only on a single CPU device.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["auto_chunk", "resolve_chunk", "mean_value_and_grad"]


def auto_chunk(dim: int) -> int:
    """Points per slice for "auto" on one CPU device: 2048 // d, clipped to [16, 64] (the working set of a slice
    grows like d × width). Measured with experiments/bench_step.py and the cpu budget's network (width 64):
    at width 64, d = 2 and 5, batch 4096: 64–128 best (2.0× and 1.9× one vmap), 16 the slowest; at width 128,
    log_ce, d = 2 / 5 / 50: 64 / 32–64 / 16–32 best (2.0–2.8× one vmap); within 10% of the best around it."""
    return int(min(64, max(16, 2048 // max(dim, 1))))


def resolve_chunk(chunk: int | str | None, dim: int, n_devices: int = 1, platform: str | None = None) -> int | None:
    """The slice size to use: None means one vmap. "auto" is `auto_chunk(dim)` on a single CPU device and no
    slicing on accelerators or across devices."""
    if chunk == "auto":
        platform = jax.default_backend() if platform is None else platform
        return auto_chunk(dim) if (platform == "cpu" and n_devices == 1) else None
    return chunk


PointTerms = Callable[..., dict[str, jax.Array]]


def mean_value_and_grad(point_terms: PointTerms, weights: Callable[[dict], dict[str, float]], params,
                        args: tuple[jax.Array, ...], chunk: int | None = None):
    """((L, {k: mean_i t_k}), ∇_θ L) with L = Σ_k w_k mean_i t_k(θ, *args_i).

    `point_terms(params, *point_args) -> {name: scalar}` at one point; `args` are arrays whose leading axis is
    the batch (n points); `weights(terms) -> {name: float}` must not depend on the terms' values (L is then
    linear in the per-point terms, which is what makes slices add up). `chunk`: None (one vmap) or the slice
    size; a last, shorter slice takes the remainder.
    """
    n = args[0].shape[0]
    batched = jax.vmap(point_terms, in_axes=(None,) + (0,) * len(args))

    def slice_sum(p, a):  # (Σ_k w_k Σ_i t_ki / n, {k: Σ_i t_ki}) over a slice of points
        sums = {k: jnp.sum(v) for k, v in batched(p, *a).items()}
        w = weights(sums)
        return sum(w[k] * v for k, v in sums.items()) / n, sums

    grad_slice = jax.value_and_grad(slice_sum, has_aux=True)
    if chunk is None or chunk >= n:
        (total, sums), g = grad_slice(params, args)
    else:
        m = (n // chunk) * chunk
        head = tuple(a[:m].reshape((n // chunk, chunk) + a.shape[1:]) for a in args)

        def body(acc, a):
            return jax.tree.map(jnp.add, acc, grad_slice(params, a)), None

        shapes = jax.eval_shape(grad_slice, params, tuple(h[0] for h in head))
        zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        (total, sums), g = jax.lax.scan(body, zero, head)[0]
        if m < n:
            (t2, s2), g2 = grad_slice(params, tuple(a[m:] for a in args))
            total, sums, g = total + t2, jax.tree.map(jnp.add, sums, s2), jax.tree.map(jnp.add, g, g2)
    return (total, {k: v / n for k, v in sums.items()}), g
