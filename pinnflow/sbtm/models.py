"""Score models s(x) ≈ ∇log ρ_t(x) for SBTM (paper 000 §2.3, §3.1), one network per time step (warm-started).

The time dependence lives in the warm-started parameters θ_t, not in an input: each model is a function of
one point `x (d,)`. Every model offers

- `score(x) -> (d,)`;
- `score_and_trace(x, op, key, D) -> (s(x), Tr(D ∇s(x)))`: the score with the trace the implicit
  score-matching loss (D = None: ∇·s) and the velocity divergence ∇·(D s) (D the diffusion) need, from
  pinnflow's operator backends (`op`; `key` for stochastic ones).

Registered (`SCORE_MODELS`, chosen by `model.kind`):

- `mlp`: s = MLP(x) ∈ R^d; Tr(D∇s) by the backend's divergence of x ↦ D s(x).
- `potential`: s = −∇U with U = MLP(x) ∈ R (paper 000 §3.1); Tr(D∇s) = −Tr(D∇²U) by the backend's Laplacian
  (`pinnflow.operators.derivatives`: ∇U and the trace in one forward-Laplacian pass with `Auto`).
- `pair_potential`: U(x) = Σ_i U₁(x⁽ⁱ⁾) + (1/N) Σ_{i≠j} U₂(x⁽ⁱ⁾, x⁽ʲ⁾) for N particles in k dimensions
  (paper 000 eq. 19; permutation invariant since the sum runs over ordered pairs, so only the symmetric
  part of U₂ matters). With an exact backend and D a scalar, ΔU is summed from k-dimensional Laplacians of
  U₁ and 2k-dimensional ones of U₂ (`../shared/design/sbtm-cost.md`): exact and ~d/(2k) times cheaper
  than a d-dimensional Laplacian of the sum.

Networks are plain MLPs with `depth` hidden layers of `width` units, zero biases and truncated-normal
weights of variance 1/fan_in (paper 000 App. D.1); parameters take the current default dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pinnflow.core.config import ConfigError, Section, check_name, check_positive_ints
from pinnflow.core.precision import default_dtype
from pinnflow.core.registry import Registry
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.nn import ACTIVATIONS, activation
from pinnflow.operators import Backend, derivatives

__all__ = ["ScoreModelConfig", "SCORE_MODELS", "MLP", "ScoreMLP", "Potential", "PairPotential", "build_model",
           "trace_of"]

SCORE_MODELS: Registry[nnx.Module] = Registry("score model")
"""Score models by name: factories `(problem, cfg: ScoreModelConfig, rngs) -> module`."""


@dataclass
class ScoreModelConfig(Section):
    """The score network (paper 000 §3.1, App. D.1: one hidden layer of 100 swish units)."""

    kind: str = "potential"  # a name in SCORE_MODELS: mlp | potential | pair_potential
    width: int = 100
    depth: int = 1  # hidden layers
    activation: str = "swish"

    def validate(self, where: str = "model.") -> None:
        check_name(SCORE_MODELS, self.kind, f"{where}kind")
        check_name(ACTIVATIONS, self.activation, f"{where}activation")
        check_positive_ints(self, where, ("width", "depth"))


def _linear(d_in: int, d_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    """Dense layer: truncated normal weights of variance 1/fan_in, zero bias (paper 000 App. D.1)."""
    return nnx.Linear(d_in, d_out, kernel_init=nnx.initializers.lecun_normal(),
                      bias_init=nnx.initializers.zeros_init(), param_dtype=default_dtype(), rngs=rngs)


class MLP(nnx.Module):
    """x (d_in,) -> (d_out,), or () when `scalar`: `depth` hidden layers of `width` units and `activation`."""

    def __init__(self, d_in: int, d_out: int, width: int, depth: int, act: str, *, scalar: bool = False,
                 rngs: nnx.Rngs):
        sizes = [d_in] + [width] * depth
        self.hidden = nnx.List([_linear(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.out = _linear(width, d_out, rngs)
        self.act = activation(act)
        self.scalar = scalar

    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for layer in self.hidden:
            h = self.act(layer(h))
        y = self.out(h)
        return y[0] if self.scalar else y


def trace_of(op: Backend, f, x: jax.Array, D: jax.Array | None, key: jax.Array | None) -> jax.Array:
    """Tr(D ∇f(x)) for a vector field f: ∇·f (D = None), D·∇·f (scalar D) or ∇·(D f) (a (d, d) matrix D)."""
    if D is None:
        return op.divergence(f, x, key)
    if jnp.ndim(D) == 0:
        return D * op.divergence(f, x, key)
    return op.divergence(lambda y: D @ f(y), x, key)


class ScoreMLP(nnx.Module):
    """`mlp`: s(x) = MLP(x) ∈ R^d."""

    def __init__(self, d: int, cfg: ScoreModelConfig, rngs: nnx.Rngs):
        self.net = MLP(d, d, cfg.width, cfg.depth, cfg.activation, rngs=rngs)

    def score(self, x: jax.Array) -> jax.Array:
        return self.net(x)

    def score_and_trace(self, x, op: Backend, key=None, D=None):
        """(s(x), Tr(D ∇s(x))) with the backend's divergence."""
        return self.net(x), trace_of(op, self.net, x, D, key)


class Potential(nnx.Module):
    """`potential`: s = −∇U, U(x) = MLP(x) ∈ R (paper 000 §3.1)."""

    def __init__(self, d: int, cfg: ScoreModelConfig, rngs: nnx.Rngs):
        self.net = MLP(d, 1, cfg.width, cfg.depth, cfg.activation, scalar=True, rngs=rngs)

    def potential(self, x: jax.Array) -> jax.Array:
        return self.net(x)

    def score(self, x: jax.Array) -> jax.Array:
        return -jax.grad(self.net)(x)

    def score_and_trace(self, x, op: Backend, key=None, D=None):
        """(−∇U, −Tr(D∇²U)); ∇U and the trace from `operators.derivatives` (one pass where the backend fuses)."""
        Dw = jnp.ones((), x.dtype) if D is None else D
        der = derivatives(op, lambda y, t: self.net(y), x, jnp.zeros((), x.dtype), Dw, key)
        return -der.grad, -der.trace


class PairPotential(nnx.Module):
    """`pair_potential`: U = Σ_i U₁(x⁽ⁱ⁾) + (1/N) Σ_{i≠j} U₂(x⁽ⁱ⁾, x⁽ʲ⁾), s = −∇U (paper 000 eq. 19).

    x = (x⁽¹⁾, …, x⁽ᴺ⁾) particle-major, x⁽ⁱ⁾ ∈ R^k. Permutation invariant (the pair sum runs over ordered
    pairs). The structured Laplacian (exact backends, D None or scalar) sums per-particle and per-pair
    Laplacians; otherwise the backend's trace of the whole U is used."""

    def __init__(self, n_particles: int, k: int, cfg: ScoreModelConfig, rngs: nnx.Rngs):
        self.n, self.k = int(n_particles), int(k)
        self.one = MLP(k, 1, cfg.width, cfg.depth, cfg.activation, scalar=True, rngs=rngs)
        self.two = MLP(2 * k, 1, cfg.width, cfg.depth, cfg.activation, scalar=True, rngs=rngs)

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        i, j = np.nonzero(~np.eye(self.n, dtype=bool))  # ordered pairs i ≠ j, built at trace time
        return i, j

    def potential(self, x: jax.Array) -> jax.Array:
        xs = x.reshape(self.n, self.k)
        i, j = self._pairs()
        pair_in = jnp.concatenate([xs[i], xs[j]], axis=-1)
        return jnp.sum(jax.vmap(self.one)(xs)) + jnp.sum(jax.vmap(self.two)(pair_in)) / self.n

    def score(self, x: jax.Array) -> jax.Array:
        return -jax.grad(self.potential)(x)

    def score_and_trace(self, x, op: Backend, key=None, D=None):
        """(−∇U, −Tr(D∇²U)); the Laplacian summed from k- and 2k-dimensional terms when exact and D scalar."""
        if op.stochastic or (D is not None and jnp.ndim(D) != 0):
            Dw = jnp.ones((), x.dtype) if D is None else D
            der = derivatives(op, lambda y, t: self.potential(y), x, jnp.zeros((), x.dtype), Dw, key)
            return -der.grad, -der.trace
        xs = x.reshape(self.n, self.k)
        i, j = self._pairs()
        pair_in = jnp.concatenate([xs[i], xs[j]], axis=-1)
        lap = (jnp.sum(jax.vmap(lambda y: op.laplacian(self.one, y))(xs))
               + jnp.sum(jax.vmap(lambda y: op.laplacian(self.two, y))(pair_in)) / self.n)
        tr = lap if D is None else D * lap
        return self.score(x), -tr


@SCORE_MODELS.register(name="mlp")
def _mlp(problem: FokkerPlanckProblem, cfg: ScoreModelConfig, rngs: nnx.Rngs) -> nnx.Module:
    return ScoreMLP(problem.dim, cfg, rngs)


@SCORE_MODELS.register(name="potential")
def _potential(problem: FokkerPlanckProblem, cfg: ScoreModelConfig, rngs: nnx.Rngs) -> nnx.Module:
    return Potential(problem.dim, cfg, rngs)


@SCORE_MODELS.register(name="pair_potential")
def _pair_potential(problem: FokkerPlanckProblem, cfg: ScoreModelConfig, rngs: nnx.Rngs) -> nnx.Module:
    if problem.particles is None:
        raise ConfigError(f"config model.kind: 'pair_potential' needs a particle system; problem {problem.name!r} "
                         "has no `particles` = (N, k)")
    return PairPotential(*problem.particles, cfg, rngs)


def build_model(problem: FokkerPlanckProblem, cfg: ScoreModelConfig, seed: int) -> nnx.Module:
    """The registered model `cfg.kind` for `problem`, initialised from `seed` (in the current precision)."""
    return SCORE_MODELS.factory(cfg.kind)(problem, cfg, nnx.Rngs(seed))
