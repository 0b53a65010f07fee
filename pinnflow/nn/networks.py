"""Neural networks of one point `(x: (d,), t: ())` for μ, φ, Φ and z(t) (paper 003, App. B.1).

Every network is an `nnx.Module` evaluated on a single point; callers vectorise with `vmap`, typically
after `graphdef, state = nnx.split(model)` and `f = lambda state, x, t: nnx.merge(graphdef, state)(x, t)`.

- `FourierMLP`: an MLP of `x` and Fourier features of `t` (as in PIS, ref. [78]); `d_in = 0` gives a
  function of `t` alone, used for z(t) in the annealing losses.
- `ResMLP`: an MLP with residual connections of `(x, t)`.
- `OTFlowPotential`: the OT-Flow potential of Onken et al. (ref. [50]) with an exact, cheap gradient and
  Laplacian in `x`.

Parameters take the default floating dtype at construction (`pinnflow.precision.default_dtype`): float32,
or float64 when x64 is enabled.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from pinnflow.core.precision import default_dtype
from pinnflow.core.registry import Registry

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "activation",
    "log_cosh",
    "time_features",
    "FourierMLP",
    "ResMLP",
    "OTFlowPotential",
]

Activation = Callable[[jax.Array], jax.Array]


# ---------------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------------


@jax.custom_jvp
def log_cosh(u: jax.Array) -> jax.Array:
    """σ(u) = log cosh(u), the antiderivative of tanh (OT-Flow); overflow-free, σ' = tanh exactly."""
    a = jnp.abs(u)
    return a + jnp.log1p(jnp.exp(-2.0 * a)) - jnp.log(2.0).astype(a.dtype)


@log_cosh.defjvp
def _log_cosh_jvp(primals, tangents):
    (u,), (du,) = primals, tangents
    return log_cosh(u), jnp.tanh(u) * du


ACTIVATIONS: Registry[Activation] = Registry("activation")
"""Smooth activations by name; each entry is a zero-argument factory, so `ACTIVATIONS.get(name)` is the
function. No ReLU: the PDE residuals take second derivatives."""



def lean(f: Activation, df: Activation) -> Activation:
    """`f` with the JVP rule tangent ↦ df(u)·tangent: one multiply per tangent, with df(u) evaluated once,
    instead of the product-rule chain autodiff derives from f's formula (which costs several passes over
    every tangent when d tangents are pushed through a layer). `df` is differentiated by ordinary autodiff,
    so Hessians and forward Laplacians stay exact."""
    g = jax.custom_jvp(f)
    g.defjvp(lambda primals, tangents: (g(primals[0]), df(primals[0]) * tangents[0]))
    return g


def _dsilu(u):
    s = jax.nn.sigmoid(u)
    return s * (1 + u * (1 - s))


_GELU_C, _GELU_A = 0.7978845608028654, 0.044715  # √(2/π); the tanh approximation jax.nn.gelu uses


def _dgelu(u):
    th = jnp.tanh(_GELU_C * (u + _GELU_A * u**3))
    return 0.5 * (1 + th) + 0.5 * u * (1 - th**2) * _GELU_C * (1 + 3 * _GELU_A * u**2)


# (lambdas: custom_jvp must see a function of u alone, not jax.nn.gelu's static `approximate` flag)
silu = lean(lambda u: jax.nn.silu(u), _dsilu)
gelu = lean(lambda u: jax.nn.gelu(u), _dgelu)
softplus = lean(lambda u: jax.nn.softplus(u), jax.nn.sigmoid)

ACTIVATIONS.register(lambda: jnp.tanh, name="tanh")
ACTIVATIONS.register(lambda: gelu, name="gelu")
ACTIVATIONS.register(lambda: silu, name="silu")
ACTIVATIONS.register(lambda: silu, name="swish")
ACTIVATIONS.register(lambda: softplus, name="softplus")
# The same functions with the derivatives autodiff derives from their formulas (the baseline of
# experiments/bench_step.py).
ACTIVATIONS.register(lambda: jax.nn.silu, name="silu_autodiff")
ACTIVATIONS.register(lambda: jax.nn.gelu, name="gelu_autodiff")
ACTIVATIONS.register(lambda: jnp.sin, name="sin")
ACTIVATIONS.register(lambda: log_cosh, name="logcosh")


def activation(name: str | Activation) -> Activation:
    """The activation registered as `name` (a callable passes through); unknown names raise KeyError."""
    return name if callable(name) else ACTIVATIONS.get(name)


_activation = activation  # the constructors' `activation` argument shadows the function


# ---------------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------------

_hidden_init = nnx.initializers.glorot_normal()
_small_init = nnx.initializers.variance_scaling(0.01, "fan_avg", "truncated_normal")  # glorot × 0.1


def _dense(d_in: int, d_out: int, rngs: nnx.Rngs, kernel_init=_hidden_init) -> nnx.Linear:
    """A dense layer with zero bias whose parameters take the current default dtype."""
    return nnx.Linear(
        d_in,
        d_out,
        kernel_init=kernel_init,
        bias_init=nnx.initializers.zeros_init(),
        param_dtype=default_dtype(),
        rngs=rngs,
    )


def _output_layer(d_in: int, d_out: int, zero_init: bool, rngs: nnx.Rngs) -> nnx.Linear:
    """Final layer: zeros if `zero_init` (the network starts at exactly 0), else glorot scaled by 0.1."""
    return _dense(d_in, d_out, rngs, nnx.initializers.zeros_init() if zero_init else _small_init)


def _check_scalar(d_out: int, scalar_output: bool) -> None:
    if scalar_output and d_out != 1:
        raise ValueError(f"scalar_output=True needs d_out == 1, got d_out={d_out}")


def _point(x: jax.Array | None, t: jax.Array, d_in: int, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array]:
    """Validate one point; return `x` as a (d_in,) array (empty if d_in = 0) and `t` as a 0-d array.

    `t` takes the dtype of `x`; without `x` (d_in = 0), the promotion of `t` with the parameters' `dtype`.
    """
    t = jnp.asarray(t)
    if t.shape != ():
        raise ValueError(f"expected a scalar t, got shape {t.shape}")
    if x is None:
        if d_in != 0:
            raise ValueError(f"x is required: the network takes x of shape ({d_in},)")
        x = jnp.zeros((0,), jnp.result_type(t, dtype))
    x = jnp.asarray(x)
    if x.shape != (d_in,):
        raise ValueError(f"expected one point x of shape ({d_in},), got {x.shape}; vmap over batches")
    return x, t.astype(x.dtype)


def time_features(t: jax.Array, num_freq: int, t_max: float = 1.0) -> jax.Array:
    """[t, sin(2πkt/t_max), cos(2πkt/t_max) for k = 1..num_freq], shape (1 + 2·num_freq,)."""
    k = jnp.arange(1, num_freq + 1, dtype=t.dtype)
    phase = 2.0 * jnp.pi * k * t / t_max
    return jnp.concatenate([t[None], jnp.sin(phase), jnp.cos(phase)])


# ---------------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------------


class FourierMLP(nnx.Module):
    """MLP of [x, time_features(t)] with `depth` hidden layers of `width` (paper 003, App. B.1; PIS [78]).

    `d_in = 0` gives a network of t alone (z(t) of the annealing losses); call it with `x=None`.
    Output shape (d_out,), or () when `scalar_output` (requires d_out == 1).
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        width: int = 64,
        depth: int = 3,
        activation: str | Activation = "tanh",
        num_freq: int = 8,
        t_max: float = 1.0,
        *,
        scalar_output: bool = False,
        zero_init_output: bool = False,
        rngs: nnx.Rngs,
    ):
        _check_scalar(d_out, scalar_output)
        if depth < 1 or d_in < 0 or num_freq < 0:
            raise ValueError("need depth >= 1, d_in >= 0 and num_freq >= 0")
        self.d_in, self.d_out, self.num_freq, self.t_max = d_in, d_out, num_freq, float(t_max)
        self.scalar_output = scalar_output
        self.act = _activation(activation)
        sizes = [d_in + 1 + 2 * num_freq] + [width] * depth
        self.hidden = nnx.List([_dense(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.out = _output_layer(width, d_out, zero_init_output, rngs)

    def __call__(self, x: jax.Array | None, t: jax.Array) -> jax.Array:
        """Evaluate at one point; x: (d_in,) or None when d_in = 0, t: ()."""
        x, t = _point(x, t, self.d_in, self.out.kernel.dtype)
        h = jnp.concatenate([x, time_features(t, self.num_freq, self.t_max)])
        for layer in self.hidden:
            h = self.act(layer(h))
        y = self.out(h)
        return y[0] if self.scalar_output else y


class ResMLP(nnx.Module):
    """Residual MLP of (x, t): h = W₀[x, t] + b₀; `depth` times h ← h + act(W h + b); out = W h + b.

    Paper 003, App. B.1 ("standard MLPs with residual connections"). Output (d_out,), or () when
    `scalar_output` (requires d_out == 1).
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        width: int = 64,
        depth: int = 3,
        activation: str | Activation = "tanh",
        *,
        scalar_output: bool = False,
        zero_init_output: bool = False,
        rngs: nnx.Rngs,
    ):
        _check_scalar(d_out, scalar_output)
        if depth < 0 or d_in < 0:
            raise ValueError("need depth >= 0 and d_in >= 0")
        self.d_in, self.d_out, self.scalar_output = d_in, d_out, scalar_output
        self.act = _activation(activation)
        self.lift = _dense(d_in + 1, width, rngs)
        self.blocks = nnx.List([_dense(width, width, rngs) for _ in range(depth)])
        self.out = _output_layer(width, d_out, zero_init_output, rngs)

    def __call__(self, x: jax.Array | None, t: jax.Array) -> jax.Array:
        """Evaluate at one point; x: (d_in,) (None when d_in = 0), t: ()."""
        x, t = _point(x, t, self.d_in, self.out.kernel.dtype)
        h = self.lift(jnp.concatenate([x, t[None]]))
        for block in self.blocks:
            h = h + self.act(block(h))
        y = self.out(h)
        return y[0] if self.scalar_output else y


class OTFlowPotential(nnx.Module):
    """OT-Flow potential Φ(s) = wᵀN(s) + ½ sᵀAᵀA s + bᵀs + c, s = (x, t) ∈ R^{d+1} (Onken et al. [50]).

    N is a ResNet with σ = log cosh: u₀ = σ(K₀s + b₀), u_i = u_{i-1} + h σ(K_i u_{i-1} + b_i) for
    i = 1..depth-1, h = 1/(depth-1); A has shape (rank, d+1), rank = min(10, d) by default. Init as in
    OT-Flow: w = 1, A glorot-uniform, b = c = 0; `zero_init_output` sets w = 0 and scales A by 0.1.
    """

    def __init__(
        self,
        d: int,
        width: int = 64,
        depth: int = 2,
        rank: int | None = None,
        *,
        zero_init_output: bool = False,
        rngs: nnx.Rngs,
    ):
        if d < 1 or depth < 1:
            raise ValueError("need d >= 1 and depth >= 1")
        self.d, self.depth = d, depth
        self.h = 1.0 / max(depth - 1, 1)
        rank = min(10, d) if rank is None else rank
        dtype = default_dtype()
        self.opening = _dense(d + 1, width, rngs)
        self.layers = nnx.List([_dense(width, width, rngs) for _ in range(depth - 1)])
        w0 = jnp.zeros if zero_init_output else jnp.ones
        self.w = nnx.Param(w0((width,), dtype))
        a_scale = 0.1 if zero_init_output else 1.0
        self.A = nnx.Param(a_scale * nnx.initializers.glorot_uniform()(rngs.params(), (rank, d + 1), dtype))
        self.b = nnx.Param(jnp.zeros((d + 1,), dtype))
        self.c = nnx.Param(jnp.zeros((), dtype))

    def _s(self, x: jax.Array, t: jax.Array) -> jax.Array:
        x, t = _point(x, t, self.d, self.w.dtype)
        return jnp.concatenate([x, t[None]])

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """Φ(x, t), a scalar."""
        s = self._s(x, t)
        u = log_cosh(self.opening(s))
        for layer in self.layers:
            u = u + self.h * log_cosh(layer(u))
        As = self.A[...] @ s
        return self.w[...] @ u + 0.5 * As @ As + self.b[...] @ s + self.c[...]

    def grad_and_laplacian(self, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(∇ₓΦ (d,), ΔₓΦ ()) exactly by OT-Flow's layer recursion (Onken et al. [50]); no autodiff, no JVPs.

        Forward: pre-activations a_i, and J_i = ∂u_i/∂x ∈ R^{m×d} by J₀ = diag(σ'(a₀))K₀ₓ,
        J_i = J_{i-1} + h diag(σ'(a_i)) K_i J_{i-1}. Backward: g_i = ∂Φ/∂u_i from g_last = w,
        g_{i-1} = g_i + h K_iᵀ(σ'(a_i) ⊙ g_i). Laplacian = Σ_k σ''(a₀)_k g₀_k ‖K₀ₓ[k]‖²
        + h Σ_{i≥1} Σ_k σ''(a_i)_k g_i,k ‖K_i[k] J_{i-1}‖² + ‖A[:, :d]‖²_F. Cost O(depth·m²·d).
        """
        d = self.d
        s = self._s(x, t)
        # Kernels are stored (in, out): layer(u) = u @ K + b, i.e. K_math = Kᵀ.
        k0 = self.opening.kernel[...]
        a0 = self.opening(s)
        j = jnp.tanh(a0)[:, None] * k0[:d].T  # J₀, (m, d)
        pre, jac_in = [], []  # a_i and J_{i-1} for i = 1..depth-1
        u = log_cosh(a0)
        for layer in self.layers:
            a = layer(u)
            pre.append(a)
            jac_in.append(j)
            j = j + self.h * jnp.tanh(a)[:, None] * (layer.kernel[...].T @ j)
            u = u + self.h * log_cosh(a)

        g = self.w[...]
        lap = jnp.zeros((), g.dtype)
        for layer, a, j_prev in zip(reversed(self.layers), reversed(pre), reversed(jac_in), strict=True):
            k = layer.kernel[...]
            tanh_a = jnp.tanh(a)
            lap = lap + self.h * jnp.sum((1.0 - tanh_a**2) * g * jnp.sum((k.T @ j_prev) ** 2, axis=1))
            g = g + self.h * (k @ (tanh_a * g))
        tanh_a0 = jnp.tanh(a0)
        lap = lap + jnp.sum((1.0 - tanh_a0**2) * g * jnp.sum(k0[:d] ** 2, axis=0))

        A = self.A[...]
        grad_s = k0 @ (tanh_a0 * g) + A.T @ (A @ s) + self.b[...]
        lap = lap + jnp.sum(A[:, :d] ** 2)
        return grad_s[:d], lap
