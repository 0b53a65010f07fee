"""Networks: shapes, the split/merge + jit/vmap/grad pattern, time features, OT-Flow exact derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pinnflow.networks import (
    ACTIVATIONS,
    FourierMLP,
    OTFlowPotential,
    ResMLP,
    activation,
    log_cosh,
    time_features,
)

SMALL = dict(width=16, depth=2)


def _point(d, seed=0):
    x = jax.random.normal(jax.random.key(seed), (d,))
    return x, jnp.asarray(0.37, x.dtype)


def _models(d, d_out, scalar):
    kw = dict(scalar_output=scalar, rngs=nnx.Rngs(0), **SMALL)
    return [FourierMLP(d, d_out, **kw), ResMLP(d, d_out, **kw)]


@pytest.mark.parametrize("d", [1, 2, 5])
def test_output_shapes(d):
    x, t = _point(d)
    for model in _models(d, d, scalar=False):
        assert model(x, t).shape == (d,)
    for model in _models(d, 1, scalar=False):
        assert model(x, t).shape == (1,)
    for model in _models(d, 1, scalar=True):
        assert model(x, t).shape == ()
    assert OTFlowPotential(d, **SMALL, rngs=nnx.Rngs(0))(x, t).shape == ()
    g, lap = OTFlowPotential(d, **SMALL, rngs=nnx.Rngs(0)).grad_and_laplacian(x, t)
    assert g.shape == (d,) and lap.shape == ()


def test_time_only_variant():
    z = FourierMLP(0, 1, scalar_output=True, rngs=nnx.Rngs(0), **SMALL)
    assert z(None, 0.5).shape == ()
    assert z(jnp.zeros((0,)), 0.5) == z(None, 0.5)
    ts = jnp.linspace(0.0, 1.0, 7)
    assert jax.vmap(lambda t: z(None, t))(ts).shape == (7,)
    assert ResMLP(0, 2, rngs=nnx.Rngs(0), **SMALL)(None, 0.5).shape == (2,)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="d_out == 1"):
        FourierMLP(2, 3, scalar_output=True, rngs=nnx.Rngs(0))
    model = ResMLP(2, 2, rngs=nnx.Rngs(0), **SMALL)
    with pytest.raises(ValueError, match="shape"):
        model(jnp.zeros((4, 2)), 0.0)  # a batch: callers must vmap
    with pytest.raises(ValueError, match="x is required"):
        model(None, 0.0)


def test_zero_init_output_starts_at_zero():
    x, t = _point(3)
    for cls in (FourierMLP, ResMLP):
        assert jnp.all(cls(3, 3, zero_init_output=True, rngs=nnx.Rngs(0), **SMALL)(x, t) == 0)


@pytest.mark.parametrize("cls", [FourierMLP, ResMLP, OTFlowPotential])
def test_split_merge_under_jit_vmap_and_grad(cls):
    d, n = 3, 8
    model = cls(d, **SMALL, rngs=nnx.Rngs(0)) if cls is OTFlowPotential else cls(
        d, 1, scalar_output=True, **SMALL, rngs=nnx.Rngs(0)
    )
    graphdef, state = nnx.split(model)

    def f(state, x, t):
        return nnx.merge(graphdef, state)(x, t)

    xs = jax.random.normal(jax.random.key(1), (n, d))
    ts = jnp.linspace(0.0, 1.0, n)

    @jax.jit
    def loss(state):
        return jnp.mean(jax.vmap(f, in_axes=(None, 0, 0))(state, xs, ts) ** 2)

    values = jax.jit(jax.vmap(f, in_axes=(None, 0, 0)))(state, xs, ts)
    assert values.shape == (n,)
    np.testing.assert_allclose(values[2], model(xs[2], ts[2]), rtol=1e-5, atol=1e-6)

    grads = jax.jit(jax.grad(loss))(state)
    assert jax.tree.structure(grads) == jax.tree.structure(state)
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(bool(jnp.any(g != 0)) for g in leaves)


def test_time_features_periodic_and_output_depends_on_t():
    t = jnp.asarray(0.3)
    f0, f1 = time_features(t, 4, t_max=2.0), time_features(t + 2.0, 4, t_max=2.0)
    assert f0.shape == (9,)
    np.testing.assert_allclose(f0[1:], f1[1:], atol=1e-5)  # sin/cos have period t_max
    assert f1[0] - f0[0] == pytest.approx(2.0)  # the raw t breaks the periodicity

    model = FourierMLP(2, 1, scalar_output=True, rngs=nnx.Rngs(0), **SMALL)
    x = jnp.array([0.5, -0.2])
    ys = jax.vmap(lambda s: model(x, s))(jnp.linspace(0.0, 1.0, 5))
    assert float(jnp.std(ys)) > 1e-4
    assert float(jnp.abs(jax.grad(lambda s: model(x, s))(0.4))) > 0


def test_activation_registry():
    for name in ("tanh", "gelu", "silu", "swish", "softplus", "sin"):
        assert name in ACTIVATIONS
        assert jnp.isfinite(jax.grad(jax.grad(activation(name)))(0.3))
    assert activation("tanh") is jnp.tanh
    with pytest.raises(KeyError, match="relu.*available: .*gelu.*tanh"):
        activation("relu")
    with pytest.raises(KeyError, match="available"):
        FourierMLP(1, 1, activation="relu", rngs=nnx.Rngs(0))


def test_log_cosh_derivatives():
    with jax.enable_x64(True):
        u = jnp.array([-40.0, -1.3, 0.0, 0.7, 800.0])
        np.testing.assert_allclose(log_cosh(u[1:4]), jnp.log(jnp.cosh(u[1:4])), rtol=1e-14)
        assert float(log_cosh(u[-1])) == pytest.approx(800.0 - np.log(2.0))
        np.testing.assert_allclose(jax.vmap(jax.grad(log_cosh))(u), jnp.tanh(u), rtol=1e-14)
        np.testing.assert_allclose(jax.vmap(jax.grad(jax.grad(log_cosh)))(u), 1 - jnp.tanh(u) ** 2, atol=1e-15)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_otflow_grad_and_laplacian_exact(depth):
    d = 3
    with jax.enable_x64(True):
        model = OTFlowPotential(d, width=12, depth=depth, rank=2, rngs=nnx.Rngs(depth))
        # make every parameter non-trivial (b = c = 0 at init)
        graphdef, state = nnx.split(model)
        keys = iter(jax.random.split(jax.random.key(7), 32))
        state = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(next(keys), p.shape, p.dtype), state)
        model = nnx.merge(graphdef, state)
        for seed in range(3):
            x = jax.random.normal(jax.random.key(10 + seed), (d,), jnp.float64)
            t = jax.random.uniform(jax.random.key(20 + seed), (), jnp.float64)
            g, lap = model.grad_and_laplacian(x, t)
            assert g.dtype == lap.dtype == jnp.float64
            np.testing.assert_allclose(g, jax.grad(model)(x, t), rtol=1e-10)
            np.testing.assert_allclose(lap, jnp.trace(jax.hessian(model)(x, t)), rtol=1e-10)


def test_float64_params_give_float64_outputs():
    with jax.enable_x64(True):
        x, t = _point(2)
        assert x.dtype == jnp.float64
        for model in [*_models(2, 1, scalar=True), OTFlowPotential(2, **SMALL, rngs=nnx.Rngs(0))]:
            assert model(x, t).dtype == jnp.float64
        assert FourierMLP(0, 1, rngs=nnx.Rngs(0), **SMALL)(None, 0.1).dtype == jnp.float64
    x, t = _point(2)
    assert _models(2, 1, scalar=True)[0](x, t).dtype == jnp.float32


def test_second_derivatives_finite():
    d = 4
    x, t = _point(d, seed=3)
    for act in ("tanh", "gelu", "silu", "softplus", "sin"):
        for model in (
            FourierMLP(d, 1, activation=act, scalar_output=True, rngs=nnx.Rngs(0), **SMALL),
            ResMLP(d, 1, activation=act, scalar_output=True, rngs=nnx.Rngs(0), **SMALL),
        ):
            hess = jax.hessian(model)(x, t)
            assert hess.shape == (d, d) and bool(jnp.all(jnp.isfinite(hess)))
            np.testing.assert_allclose(hess, hess.T, atol=1e-5)
            assert float(jnp.abs(jnp.trace(hess))) > 0
