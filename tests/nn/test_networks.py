"""Networks: shapes, the split/merge + jit/vmap/grad pattern, time features, OT-Flow exact derivatives.

Shape and dtype checks run abstractly (`nnx.eval_shape` + `jax.eval_shape`), so they compile nothing.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pinnflow.nn.networks import (
    ACTIVATIONS,
    FourierMLP,
    OTFlowPotential,
    ResMLP,
    activation,
    log_cosh,
    time_features,
)

SMALL = dict(width=16, depth=2)
S = jax.ShapeDtypeStruct


def pure(model, method="__call__"):
    """The trainer's pattern: split once, merge inside a pure function of (state, x, t)."""
    graphdef, state = nnx.split(model)
    return state, lambda state, x, t: getattr(nnx.merge(graphdef, state), method)(x, t)


def build(make):
    """`make()` initialised under one `nnx.jit` compilation (eager initialisation compiles op by op)."""
    return nnx.jit(make)()


def abstract(make, x, t, method="__call__"):
    """Output ShapeDtypeStruct of `make()`'s `method` at (x, t), without materialising parameters."""
    state, f = pure(nnx.eval_shape(make), method)
    return jax.eval_shape(f, state, x, t)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_output_shapes(d):
    x, t = S((d,), jnp.float32), S((), jnp.float32)
    for cls in (FourierMLP, ResMLP):
        for d_out, scalar, shape in [(d, False, (d,)), (1, False, (1,)), (1, True, ())]:
            out = abstract(lambda cls=cls, d_out=d_out, scalar=scalar: cls(
                d, d_out, scalar_output=scalar, rngs=nnx.Rngs(0), **SMALL), x, t)
            assert out.shape == shape, (cls, d_out, scalar)
    make = lambda: OTFlowPotential(d, **SMALL, rngs=nnx.Rngs(0))  # noqa: E731
    assert abstract(make, x, t).shape == ()
    g, lap = abstract(make, x, t, "grad_and_laplacian")
    assert g.shape == (d,) and lap.shape == ()


def test_time_only_variant(nets):
    make = lambda: FourierMLP(0, 1, scalar_output=True, rngs=nnx.Rngs(0), **SMALL)  # noqa: E731
    assert abstract(make, None, S((), jnp.float32)).shape == ()
    assert abstract(lambda: ResMLP(0, 2, rngs=nnx.Rngs(0), **SMALL), None, 0.5).shape == (2,)
    state, f = pure(nets["z"])

    @jax.jit
    def values(state, ts):
        return jax.vmap(f, in_axes=(None, None, 0))(state, None, ts), f(state, jnp.zeros((0,)), ts[0])

    zs, z0 = values(state, jnp.linspace(0.0, 1.0, 7))
    assert zs.shape == (7,) and float(jnp.std(zs)) > 0
    np.testing.assert_allclose(z0, zs[0], rtol=1e-6)


def test_float64_params_give_float64_outputs():
    x32, t32 = S((2,), jnp.float32), S((), jnp.float32)
    x64, t64 = S((2,), jnp.float64), S((), jnp.float64)
    makers = [
        lambda: FourierMLP(2, 1, scalar_output=True, rngs=nnx.Rngs(0), **SMALL),
        lambda: ResMLP(2, 2, rngs=nnx.Rngs(0), **SMALL),
        lambda: OTFlowPotential(2, **SMALL, rngs=nnx.Rngs(0)),
    ]
    for make in makers:
        assert abstract(make, x32, t32).dtype == jnp.float32
    with jax.enable_x64(True):
        for make in makers:
            assert abstract(make, x64, t64).dtype == jnp.float64
        assert abstract(makers[2], x64, t64, "grad_and_laplacian")[1].dtype == jnp.float64
        assert abstract(lambda: FourierMLP(0, 1, rngs=nnx.Rngs(0)), None, 0.1).dtype == jnp.float64


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="d_out == 1"):
        FourierMLP(2, 3, scalar_output=True, rngs=nnx.Rngs(0))
    model = nnx.eval_shape(lambda: ResMLP(2, 2, rngs=nnx.Rngs(0), **SMALL))
    with pytest.raises(ValueError, match="shape"):
        model(jnp.zeros((4, 2)), 0.0)  # a batch: callers must vmap
    with pytest.raises(ValueError, match="x is required"):
        model(None, 0.0)


@pytest.fixture(scope="module")
def nets():
    """Float32 networks of d = 3 (and z(t)), initialised under a single compilation."""

    def make():
        rngs = nnx.Rngs(0)  # created inside the trace: Rngs mutate their counters
        kw = dict(scalar_output=True, rngs=rngs, **SMALL)
        return {
            "fourier": FourierMLP(3, 1, **kw),
            "resmlp": ResMLP(3, 1, activation="gelu", **kw),
            "otflow": OTFlowPotential(3, **SMALL, rngs=rngs),
            "z": FourierMLP(0, 1, **kw),
            "fourier0": FourierMLP(3, 2, zero_init_output=True, rngs=rngs, **SMALL),
            "resmlp0": ResMLP(3, 2, zero_init_output=True, rngs=rngs, **SMALL),
        }

    return build(make)


@pytest.mark.parametrize("name", ["fourier", "resmlp", "otflow"])
def test_split_merge_under_jit_vmap_and_grad(nets, name):
    n = 8
    state, f = pure(nets[name])
    xs = jax.random.normal(jax.random.key(1), (n, 3))
    ts = jnp.linspace(0.0, 1.0, n)
    batched = jax.vmap(f, in_axes=(None, 0, 0))

    def loss(state):
        return jnp.mean(batched(state, xs, ts) ** 2)

    @jax.jit
    def run(state):
        return batched(state, xs, ts), f(state, xs[2], ts[2]), jax.grad(loss)(state)

    values, single, grads = run(state)
    assert values.shape == (n,)
    np.testing.assert_allclose(values[2], single, rtol=1e-5, atol=1e-6)
    assert jax.tree.structure(grads) == jax.tree.structure(state)
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(bool(jnp.any(g != 0)) for g in leaves)


def test_zero_init_output_starts_at_zero(nets):
    (s0, f0), (s1, f1) = pure(nets["fourier0"]), pure(nets["resmlp0"])
    outputs = jax.jit(lambda s0, s1, x, t: (f0(s0, x, t), f1(s1, x, t)))(s0, s1, jnp.ones(3), 0.2)
    assert all(bool(jnp.all(y == 0)) for y in outputs)


def test_time_features_periodic_and_output_depends_on_t(nets):
    state, f = pure(nets["fourier"])
    x = jnp.array([0.5, -0.2, 1.0])

    @jax.jit
    def run(state, t):
        features = time_features(t, 4, t_max=2.0), time_features(t + 2.0, 4, t_max=2.0)
        ys = jax.vmap(f, in_axes=(None, None, 0))(state, x, jnp.linspace(0.0, 1.0, 5))
        return features, ys, jax.grad(f, argnums=2)(state, x, t)

    (f0, f1), ys, dy_dt = run(state, jnp.asarray(0.3))
    assert f0.shape == (9,)
    np.testing.assert_allclose(f0[1:], f1[1:], atol=1e-5)  # sin/cos have period t_max
    assert f1[0] - f0[0] == pytest.approx(2.0)  # the raw t feature breaks the periodicity
    assert float(jnp.std(ys)) > 1e-4 and float(jnp.abs(dy_dt)) > 0


def test_activation_registry():
    names = ("tanh", "gelu", "silu", "swish", "softplus", "sin")
    assert all(name in ACTIVATIONS for name in names)
    assert activation("tanh") is jnp.tanh and activation(jnp.sin) is jnp.sin
    u = jnp.linspace(-2.0, 2.0, 5)
    second = jax.jit(lambda u: jnp.stack([jax.vmap(jax.grad(jax.grad(activation(n))))(u) for n in names]))(u)
    assert bool(jnp.all(jnp.isfinite(second)))
    with pytest.raises(KeyError, match="relu.*available: .*gelu.*tanh"):
        activation("relu")
    with pytest.raises(KeyError, match="available"):
        FourierMLP(1, 1, activation="relu", rngs=nnx.Rngs(0))


def test_log_cosh_derivatives():
    with jax.enable_x64(True):
        u = jnp.array([-40.0, -1.3, 0.0, 0.7, 800.0])
        vals = jax.jit(lambda u: (log_cosh(u), jax.vmap(jax.grad(log_cosh))(u),
                                  jax.vmap(jax.grad(jax.grad(log_cosh)))(u)))(u)
        np.testing.assert_allclose(vals[0][1:4], jnp.log(jnp.cosh(u[1:4])), rtol=1e-14)
        assert float(vals[0][-1]) == pytest.approx(800.0 - np.log(2.0))  # no overflow
        np.testing.assert_allclose(vals[1], jnp.tanh(u), rtol=1e-14)
        np.testing.assert_allclose(vals[2], 1 - jnp.tanh(u) ** 2, atol=1e-15)


def test_otflow_grad_and_laplacian_exact():
    d, n = 3, 4
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        model = nnx.eval_shape(lambda: OTFlowPotential(d, width=12, depth=3, rank=2, rngs=nnx.Rngs(0)))
        # every parameter random and non-trivial (at init w = 1, b = c = 0); no initialiser to compile
        state, phi = pure(model)
        state = jax.tree.map(lambda p: 0.5 * rng.normal(size=p.shape), state)
        _, analytic = pure(model, "grad_and_laplacian")

        @jax.jit
        def compare(state, x, t):
            hess = jax.hessian(phi, argnums=1)(state, x, t)
            return analytic(state, x, t), (jax.grad(phi, argnums=1)(state, x, t), jnp.trace(hess))

        batched = jax.vmap(compare, in_axes=(None, 0, 0))
        (g, lap), (g_ref, lap_ref) = batched(state, rng.normal(size=(n, d)), rng.uniform(size=n))
        assert g.dtype == lap.dtype == jnp.float64
        np.testing.assert_allclose(g, g_ref, rtol=1e-10)
        np.testing.assert_allclose(lap, lap_ref, rtol=1e-10)


def test_second_derivatives_finite(nets):
    (s0, f0), (s1, f1) = pure(nets["fourier"]), pure(nets["resmlp"])  # tanh and gelu

    @jax.jit
    def hessians(s0, s1, x, t):  # of the scalar outputs w.r.t. x
        return jax.hessian(f0, argnums=1)(s0, x, t), jax.hessian(f1, argnums=1)(s1, x, t)

    for hess in hessians(s0, s1, jnp.array([0.3, -1.2, 0.8]), 0.6):
        assert hess.shape == (3, 3) and bool(jnp.all(jnp.isfinite(hess)))
        np.testing.assert_allclose(hess, hess.T, atol=1e-5)
        assert float(jnp.abs(jnp.trace(hess))) > 0


@pytest.mark.parametrize("name", ["silu", "gelu", "softplus"])
def test_lean_activations_have_the_textbook_derivatives(name):
    """The custom JVP rules (one multiply per tangent) match autodiff of the formulas to third order."""
    lean, plain = ACTIVATIONS.get(name), {"silu": jax.nn.silu, "gelu": jax.nn.gelu,
                                                   "softplus": jax.nn.softplus}[name]
    u = jnp.linspace(-6.0, 6.0, 41)
    with jax.enable_x64(True):
        u = u.astype(jnp.float64)
        for _ in range(3):
            np.testing.assert_allclose(jax.vmap(lean)(u), jax.vmap(plain)(u), rtol=1e-10, atol=1e-12)
            lean, plain = jax.grad(lean), jax.grad(plain)
