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
  part of U₂ matters). With one hidden layer (the paper's model) U, ∇U and ΔU are in closed form (below);
  deeper networks sum ΔU from k-dimensional Laplacians of U₁ and 2k-dimensional ones of U₂ with an exact
  backend and D a scalar (`../shared/design/sbtm-cost.md`), and stochastic backends or a matrix D take the
  backend's trace of U.
- `noisy_mlp`: for a rank-deficient D, only the score's components on the noisy coordinates (paper 000 §3.2);
  entropy route (17) is then unavailable (it needs the whole score).

The closed form (one hidden layer, `PairPotential.value_grad_laplacian`). Write U₂(z) = w·σ(zW + b) + c with
W = [W_a; W_b] ∈ R^{2k×m} split by the slot z = (x⁽ⁱ⁾, x⁽ʲ⁾) it acts on. The first layer of every pair is

    H_ij = A_i + B_j,   A = X W_a + b,   B = X W_b     (X the (N, k) particle positions; A, B ∈ R^{N×m}),

so all N(N−1) pre-activations are one broadcast sum: two (N, k)·(k, m) products instead of N(N−1)
concatenated pair inputs. Then, with sums over i ≠ j (and ⊙ the product per hidden unit),

    Σ U₂ = (Σ_{ij} σ(H_ij))·w + N(N−1) c,
    ∇_{x⁽ⁱ⁾} Σ U₂ = W_a (w ⊙ P_i) + W_b (w ⊙ Q_i),   P_i = Σ_{j≠i} σ'(H_ij),  Q_j = Σ_{i≠j} σ'(H_ij)
                   (particle i sits in the first slot of the pairs (i, ·) and in the second of (·, i)),
    Δ Σ U₂ = (Σ_{ij} σ''(H_ij))·(w ⊙ |W|²),   |W|²_u = Σ_r W_ru²  (the Laplacian of w_u σ(z·W_u + b_u) in
                   all 2k inputs of the pair is w_u σ''(·) |W_u|²),

and the same for U₁ with one particle per term. The work is elementwise on (N, N, m) plus (N, m) matrix
products: the network weights w multiply only after the pair sums, and the bias is folded into A, so the
reverse pass differentiates σ', σ'' on the pairs once (the activation's derivatives come from
`derivative_stack`: written out for swish/silu, tanh and softplus, nested JVPs for the others). The pair
sums run over blocks of rows i (`PAIR_BLOCK`), each recomputed in the backward pass (`jax.checkpoint`), so
that vmapped over the samples a block stays in cache (experiments/bench_sbtm.py measures the cost).

Networks are plain MLPs with `depth` hidden layers of `width` units, zero biases and truncated-normal
weights of variance 1/fan_in (paper 000 App. D.1); parameters take the current default dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pinnflow.core.config import ConfigError, Section, check_name, check_positive_ints
from pinnflow.core.precision import default_dtype
from pinnflow.core.registry import Registry
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.nn import ACTIVATIONS, activation
from pinnflow.nn.networks import Activation
from pinnflow.operators import Backend, derivatives

__all__ = ["ScoreModelConfig", "SCORE_MODELS", "MLP", "ScoreMLP", "Potential", "PairPotential", "build_model",
           "trace_of", "CLOSED_FORM_LADDERS", "autodiff_ladder", "derivative_stack", "activation_derivatives",
           "OneHidden", "PairSums", "pair_sums", "PAIR_BLOCK", "NoisyScore", "noisy_coordinates"]

SCORE_MODELS: Registry[nnx.Module] = Registry("score model")
"""Score models by name: factories `(problem, cfg: ScoreModelConfig, rngs) -> module`."""


@dataclass
class ScoreModelConfig(Section):
    """The score network (paper 000 §3.1, App. D.1: one hidden layer of 100 swish units)."""

    kind: str = "potential"  # a name in SCORE_MODELS: mlp | potential | pair_potential
    width: int = 100
    depth: int = 1  # hidden layers
    activation: str = "swish"
    # pair_potential with depth 1: U, ∇U, ΔU in closed form (False: autodiff over the pairs, the baseline)
    closed_form: bool = True

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


# ---------------------------------------------------------------------------------------------------
# The pair potential, and its closed form for one hidden layer
# ---------------------------------------------------------------------------------------------------

Ladder = Callable[[jax.Array], tuple[jax.Array, jax.Array, jax.Array, jax.Array]]
"""u ↦ (σ(u), σ'(u), σ''(u), σ'''(u)) elementwise."""


def _sigmoid(u: jax.Array) -> jax.Array:
    """The logistic function as ½(1 + tanh(u/2)): the same function, but XLA's CPU tanh (a rational
    approximation) is ~1.4× faster than its exp-and-divide logistic, which dominates the pair loop."""
    return 0.5 + 0.5 * jnp.tanh(0.5 * u)


def _swish_ladder(u: jax.Array):
    s = _sigmoid(u)
    q, t = s * (1 - s), 1 - 2 * s  # σ_sig' = q, σ_sig'' = q t
    return u * s, s * (1 + u * (1 - s)), q * (2 + u * t), q * (t * (3 + u * t) - 2 * u * q)


def _tanh_ladder(u: jax.Array):
    th = jnp.tanh(u)
    c = 1 - th * th
    return th, c, -2 * th * c, c * (6 * th * th - 2)


def _softplus_ladder(u: jax.Array):
    s = _sigmoid(u)
    q = s * (1 - s)
    return jax.nn.softplus(u), s, q, q * (1 - 2 * s)


CLOSED_FORM_LADDERS: dict[str, Ladder] = {"swish": _swish_ladder, "silu": _swish_ladder, "tanh": _tanh_ladder,
                                          "softplus": _softplus_ladder}
"""Activations (by `ACTIVATIONS` name) whose derivatives up to third order are written out; every other
activation gets them by nested forward mode (`autodiff_ladder`)."""


def autodiff_ladder(act: Activation) -> Ladder:
    """σ, σ', σ'', σ''' of an elementwise activation by three nested unit-tangent JVPs (any activation of
    `pinnflow.nn.ACTIVATIONS`, custom JVP rules included)."""

    def ladder(u: jax.Array):
        one = jnp.ones_like(u)

        def d1(v):
            return jax.jvp(act, (v,), (one,))

        def d2(v):
            return jax.jvp(d1, (v,), (one,))

        ((s0, s1), (_, s2)), (_, (_, s3)) = jax.jvp(d2, (u,), (one,))
        return s0, s1, s2, s3

    return ladder


@functools.cache
def derivative_stack(name: str) -> Callable[[jax.Array], tuple[jax.Array, jax.Array, jax.Array]]:
    """u ↦ (σ(u), σ'(u), σ''(u)) for the activation `name`, with the JVP rule du ↦ (σ', σ'', σ''')·du.

    The rule makes reverse mode through the stack one multiply per output (no re-differentiation of the
    formulas); it is itself plain JAX, so higher derivatives stay exact. One object per name (cached), so
    models built separately share compiled programs."""
    ladder = CLOSED_FORM_LADDERS.get(name) or autodiff_ladder(activation(name))

    @jax.custom_jvp
    def stack(u):
        return ladder(u)[:3]

    @stack.defjvp
    def _stack_jvp(primals, tangents):
        (u,), (du,) = primals, tangents
        s0, s1, s2, s3 = ladder(u)
        return (s0, s1, s2), (s1 * du, s2 * du, s3 * du)

    return stack


def activation_derivatives(name: str, u: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """σ(u), σ'(u), σ''(u) elementwise for the activation registered as `name`."""
    return derivative_stack(name)(u)


class OneHidden(NamedTuple):
    """The parameters of a one-hidden-layer scalar network f(z) = w·σ(zW + b) + c, W (d_in, width)."""

    W: jax.Array
    b: jax.Array
    w: jax.Array
    c: jax.Array

    @classmethod
    def of(cls, net: MLP) -> OneHidden:
        (layer,) = net.hidden
        return cls(layer.kernel[...], layer.bias[...], net.out.kernel[...][:, 0], net.out.bias[...][0])


class PairSums(NamedTuple):
    """Sums over the ordered pairs i ≠ j of the activation (and derivatives) at H_ij (module docstring);
    None where not asked for."""

    s0: jax.Array | None  # Σ_{i≠j} σ(H_ij), (width,)
    p: jax.Array | None  # P_i = Σ_{j≠i} σ'(H_ij), (N, width)
    q: jax.Array | None  # Q_j = Σ_{i≠j} σ'(H_ij), (N, width)
    s2: jax.Array | None  # Σ_{i≠j} σ''(H_ij), (width,)


PAIR_BLOCK = 16384
"""Pair pre-activations per point evaluated at once by the closed form (a block of whole rows i of H,
r·N·width ≤ PAIR_BLOCK): vmapped over n points the block stays in cache, where the whole (n, N, N, width)
tensor would not (measured by experiments/bench_sbtm.py)."""


def _rows_per_block(n: int, width: int) -> int:
    """The largest divisor r of N with r·N·width ≤ PAIR_BLOCK (at least 1)."""
    fits = [r for r in range(1, n + 1) if n % r == 0 and r * n * width <= PAIR_BLOCK]
    return max(fits, default=1)


def pair_sums(name: str, A: jax.Array, B: jax.Array, *, value: bool, grad: bool, laplacian: bool) -> PairSums:
    """`PairSums` at H_ij = A_i + B_j (A, B (N, width); the bias goes into A, so that its gradient is a sum
    over N rows rather than over N² pairs) for the activation `name`, by blocks of rows
    (`PAIR_BLOCK`); each block is rematerialised in the backward pass rather than stored."""
    n, width = A.shape
    stack = derivative_stack(name)
    cols = jnp.arange(n)

    def block(carry, blk):
        Ab, rows = blk
        H = Ab[:, None, :] + B[None, :, :]  # (r, N, width)
        s0, s1, s2 = stack(H)
        off = (rows[:, None] != cols[None, :])[:, :, None]  # i ≠ j
        s0_acc, q_acc, s2_acc = carry
        p_rows = None
        if value:
            s0_acc = s0_acc + jnp.sum(jnp.where(off, s0, 0), (0, 1))
        if grad:
            s1 = jnp.where(off, s1, 0)
            q_acc, p_rows = q_acc + jnp.sum(s1, 0), jnp.sum(s1, 1)
        if laplacian:
            s2_acc = s2_acc + jnp.sum(jnp.where(off, s2, 0), (0, 1))
        return (s0_acc, q_acc, s2_acc), p_rows

    zero_w = jnp.zeros((width,), A.dtype)
    init = (zero_w if value else None, jnp.zeros_like(B) if grad else None, zero_w if laplacian else None)
    r = _rows_per_block(n, width)
    rows = jnp.arange(n)
    if r == n:
        (s0, q, s2), p = block(init, (A, rows))
    else:
        (s0, q, s2), p = jax.lax.scan(jax.checkpoint(block), init, (A.reshape(n // r, r, width),
                                                                     rows.reshape(n // r, r)))
        p = None if p is None else p.reshape(n, width)
    return PairSums(s0, p, q, s2)


class PairPotential(nnx.Module):
    """`pair_potential`: U = Σ_i U₁(x⁽ⁱ⁾) + (1/N) Σ_{i≠j} U₂(x⁽ⁱ⁾, x⁽ʲ⁾), s = −∇U (paper 000 eq. 19).

    x = (x⁽¹⁾, …, x⁽ᴺ⁾) particle-major, x⁽ⁱ⁾ ∈ R^k. Permutation invariant (the pair sum runs over ordered
    pairs). With one hidden layer and `closed_form` (`fused`), U, ∇U and ΔU come in closed form from the
    broadcast pair pre-activations (`value_grad_laplacian`, module docstring) for the value, the score and
    the exact traces alike. Otherwise (deeper networks, or `closed_form=False`): U by autodiff over the
    concatenated pair inputs, and for exact backends with D None or scalar the Laplacian summed from
    per-particle and per-pair Laplacians. Stochastic backends and matrix D take the backend's trace of U."""

    def __init__(self, n_particles: int, k: int, cfg: ScoreModelConfig, rngs: nnx.Rngs):
        self.n, self.k = int(n_particles), int(k)
        self.one = MLP(k, 1, cfg.width, cfg.depth, cfg.activation, scalar=True, rngs=rngs)
        self.two = MLP(2 * k, 1, cfg.width, cfg.depth, cfg.activation, scalar=True, rngs=rngs)
        self.activation = cfg.activation
        self.closed_form = bool(cfg.closed_form)

    @property
    def one_hidden(self) -> bool:
        return len(self.one.hidden) == 1 and len(self.two.hidden) == 1

    @property
    def fused(self) -> bool:
        """Whether the closed form is used: asked for (`closed_form`) and one hidden layer in U₁ and U₂."""
        return self.closed_form and self.one_hidden

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        i, j = np.nonzero(~np.eye(self.n, dtype=bool))  # ordered pairs i ≠ j, built at trace time
        return i, j

    def potential(self, x: jax.Array) -> jax.Array:
        if self.fused:
            return self._closed(x, value=True, grad=False, laplacian=False)[0]
        return self.potential_autodiff(x)

    def potential_autodiff(self, x: jax.Array) -> jax.Array:
        """U(x) from the networks on the concatenated pair inputs (any depth; the reference for the closed form)."""
        xs = x.reshape(self.n, self.k)
        i, j = self._pairs()
        pair_in = jnp.concatenate([xs[i], xs[j]], axis=-1)
        return jnp.sum(jax.vmap(self.one)(xs)) + jnp.sum(jax.vmap(self.two)(pair_in)) / self.n

    def value_grad_laplacian(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(U(x), ∇U(x) (d,), ΔU(x)) in closed form (one hidden layer; the module docstring has the formulas)."""
        return self._closed(x, value=True, grad=True, laplacian=True)

    def _closed(self, x: jax.Array, *, value: bool, grad: bool, laplacian: bool):
        """(U, ∇U, ΔU) in closed form, each None unless asked for."""
        if not self.one_hidden:
            raise ValueError("PairPotential: the closed form needs one hidden layer (model.depth = 1)")
        n, k = self.n, self.k
        xs = x.reshape(n, k)
        p1, p2 = OneHidden.of(self.one), OneHidden.of(self.two)
        t0, t1, t2 = activation_derivatives(self.activation, xs @ p1.W + p1.b)  # (N, width)
        Wa, Wb = p2.W[:k], p2.W[k:]  # the rows of U₂'s first layer acting on x⁽ⁱ⁾ and on x⁽ʲ⁾
        ps = pair_sums(self.activation, xs @ Wa + p2.b, xs @ Wb, value=value, grad=grad, laplacian=laplacian)
        U = g = lap = None
        if value:
            U = jnp.sum(t0, 0) @ p1.w + n * p1.c + (ps.s0 @ p2.w + n * (n - 1) * p2.c) / n
        if grad:
            g = (t1 * p1.w) @ p1.W.T + ((ps.p * p2.w) @ Wa.T + (ps.q * p2.w) @ Wb.T) / n
            g = g.reshape(-1)
        if laplacian:
            lap = (jnp.sum(t2, 0) @ (p1.w * jnp.sum(p1.W**2, 0))
                   + ps.s2 @ (p2.w * jnp.sum(p2.W**2, 0)) / n)
        return U, g, lap

    def score(self, x: jax.Array) -> jax.Array:
        if self.fused:
            return -self._closed(x, value=False, grad=True, laplacian=False)[1]
        return -jax.grad(self.potential_autodiff)(x)

    def score_and_trace(self, x, op: Backend, key=None, D=None):
        """(−∇U, −Tr(D∇²U)). Exact backend and D None or scalar: the closed form (`fused`), else the Laplacian
        summed from k- and 2k-dimensional terms; otherwise the backend's trace of U."""
        if op.stochastic or (D is not None and jnp.ndim(D) != 0):
            Dw = jnp.ones((), x.dtype) if D is None else D
            der = derivatives(op, lambda y, t: self.potential(y), x, jnp.zeros((), x.dtype), Dw, key)
            return -der.grad, -der.trace
        if self.fused:
            _, g, lap = self._closed(x, value=False, grad=True, laplacian=True)
            return -g, -(lap if D is None else D * lap)
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


class NoisyScore(nnx.Module):
    """`noisy_mlp`: for a rank-deficient D, only the score's components on the noisy coordinates enter the
    probability flow v = b − D s (paper 000 §3.2: the active swimmer's score is learned as a map R² → R).

    s(x) = E MLP(x) with MLP(x) ∈ R^m the components on the m noisy coordinates (those where D's diagonal is
    nonzero; D must vanish on the other rows and columns) and E the embedding into R^d (zeros elsewhere).
    The implicit loss |s|² + 2∇·s then equals |s_v|² + 2∇_v·s_v, whose minimiser is the noisy part of
    ∇log ρ. The other components of the score are unknown to this model, so the entropy route (17), which
    needs the whole score, is not available (its column is NaN); route (16) only needs ∇·v and stays exact."""

    full_score = False

    def __init__(self, d: int, noisy: tuple[int, ...], cfg: ScoreModelConfig, rngs: nnx.Rngs):
        self.noisy = tuple(int(i) for i in noisy)
        self.d = int(d)
        self.net = MLP(d, len(self.noisy), cfg.width, cfg.depth, cfg.activation, rngs=rngs)

    def score(self, x: jax.Array) -> jax.Array:
        return jnp.zeros(self.d, x.dtype).at[jnp.asarray(self.noisy)].set(self.net(x))

    def project(self, g: jax.Array) -> jax.Array:
        """The part of vectors g (..., d) this model represents: the noisy components, zeros elsewhere."""
        keep = jnp.zeros(self.d, bool).at[jnp.asarray(self.noisy)].set(True)
        return jnp.where(keep, g, jnp.zeros_like(g))

    def score_and_trace(self, x, op: Backend, key=None, D=None):
        """(s(x), Tr(D ∇s(x))) with the backend's divergence of x ↦ D s(x)."""
        return self.score(x), trace_of(op, self.score, x, D, key)


def noisy_coordinates(problem: FokkerPlanckProblem) -> tuple[int, ...]:
    """The coordinates where the problem's D (at t = 0 and T) has a nonzero diagonal. D is positive
    semi-definite, so a zero diagonal entry has a zero row and column: D acts on the noisy coordinates only.
    ConfigError when there is none (D = 0)."""
    diag = sum(np.abs(np.diag(np.asarray(problem.D_at(t), np.float64))) for t in (0.0, problem.T))
    noisy = tuple(int(i) for i in np.flatnonzero(diag > 1e-12 * max(float(np.max(diag)), 1e-300)))
    if not noisy:
        raise ConfigError(f"config model.kind: 'noisy_mlp': problem {problem.name!r} has no noisy coordinate (D = 0)")
    return noisy


@SCORE_MODELS.register(name="noisy_mlp")
def _noisy_mlp(problem: FokkerPlanckProblem, cfg: ScoreModelConfig, rngs: nnx.Rngs) -> nnx.Module:
    return NoisyScore(problem.dim, noisy_coordinates(problem), cfg, rngs)
