"""The forward-Laplacian propagation against dense autodiff (jax.hessian, jax.grad) in float64, for the
networks and targets pinnflow ships, plus the fused `derivatives` of every backend."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import problems
from pinnflow.nn import networks
from pinnflow.operators import BACKENDS, EXACT, FORWARD_LAPLACIAN, Auto, Exact, ForwardLaplacian, derivatives
from pinnflow.operators.forward_laplacian import forward_laplacian, value_grad_laplacian

D = 5


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def point(seed=0, d=D):
    return jnp.asarray(np.random.default_rng(seed).normal(size=d))


def check_against_hessian(f, x):
    v, g, lap = value_grad_laplacian(f, x)
    H = jax.hessian(f)(x)
    np.testing.assert_allclose(v, f(x), rtol=1e-12)
    np.testing.assert_allclose(g, jax.grad(f)(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lap, jnp.trace(H), rtol=1e-10, atol=1e-10)
    assert abs(jnp.trace(H)) > 1e-6  # a genuinely curved test function


@pytest.mark.parametrize("activation", networks.ACTIVATIONS.names())
def test_fourier_mlp_every_activation(activation):
    net = networks.FourierMLP(D, 1, 16, 3, activation, 4, 1.0, scalar_output=True, rngs=nnx.Rngs(0))
    check_against_hessian(lambda y: net(y, 0.3), point())


def test_res_mlp_and_ot_flow():
    res = networks.ResMLP(D, 1, 16, 3, "silu", scalar_output=True, rngs=nnx.Rngs(1))
    check_against_hessian(lambda y: res(y, 0.7), point(1))
    ot = networks.OTFlowPotential(D, 16, 3, rngs=nnx.Rngs(2))
    check_against_hessian(lambda y: ot(y, 0.2), point(2))


@pytest.mark.parametrize("name", ["gmm", "many_well_5", "funnel"])
def test_targets(name):
    """logsumexp (max, stop_gradient, select), integer powers, funnel's exp: the general rules."""
    t = problems.get(name)
    check_against_hessian(t.log_density, point(3, t.dim) * 0.5)


def test_weighted_trace_and_directions_with_weights():
    W = jnp.asarray(np.random.default_rng(4).normal(size=(D, D)))
    f = lambda y: jnp.sum(jnp.tanh(W @ y) ** 3) + jnp.prod(jnp.sin(y))  # noqa: E731
    x = point(5)
    H = jax.hessian(f)(x)
    A = jnp.asarray(np.random.default_rng(6).normal(size=(D, D)))  # not symmetric, not PSD
    np.testing.assert_allclose(FORWARD_LAPLACIAN.weighted_trace(f, A, x), jnp.trace(A @ H), rtol=1e-10)
    dirs = jnp.asarray(np.random.default_rng(7).normal(size=(3, D)))
    w = jnp.array([0.5, -1.0, 2.0])
    out = forward_laplacian(f, (x,), (dirs,), m=3, weights=w)
    np.testing.assert_allclose(out.L, sum(w[i] * dirs[i] @ H @ dirs[i] for i in range(3)), rtol=1e-10)
    np.testing.assert_allclose(out.J, dirs @ jax.grad(f)(x), rtol=1e-10)


def test_first_order_only_directions_do_not_enter_the_trace():
    f = lambda y: jnp.sum(jnp.exp(0.3 * y)) * y[0]  # noqa: E731
    x = point(8)
    dirs = jnp.eye(D)
    out = forward_laplacian(f, (x,), (dirs,), m=2)  # trace over e_1, e_2 only
    H = jax.hessian(f)(x)
    np.testing.assert_allclose(out.L, H[0, 0] + H[1, 1], rtol=1e-12)


@pytest.mark.parametrize("D_kind", [None, "scalar", "matrix"])
def test_fused_derivatives_agree_across_backends(D_kind):
    net = networks.FourierMLP(D, 1, 16, 2, "silu", 4, 1.0, scalar_output=True, rngs=nnx.Rngs(3))
    F = lambda y, s: net(y, s) + 0.1 * s * (y @ y)  # noqa: E731
    S = jnp.asarray(np.random.default_rng(9).normal(size=(D, D)))
    Dm = {None: None, "scalar": 0.7, "matrix": S @ S.T}[D_kind]
    x, t = point(10), 0.35
    ref = derivatives(Exact(), F, x, t, Dm)
    for op in (ForwardLaplacian(), Auto(), Auto(min_dim=100)):
        got = derivatives(op, F, x, t, Dm)
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ref.dt, jax.grad(F, argnums=1)(x, t), rtol=1e-12)
    if D_kind == "matrix":
        np.testing.assert_allclose(ref.trace, jnp.trace(Dm @ jax.hessian(F)(x, t)), rtol=1e-10)


def test_parameter_gradients_through_the_propagation():
    """The training step differentiates the Laplacian w.r.t. the network weights."""
    net = networks.FourierMLP(D, 1, 8, 2, "tanh", 2, 1.0, scalar_output=True, rngs=nnx.Rngs(4))
    graphdef, state = nnx.split(net)
    x = point(11)

    def lap(state, how):
        f = lambda y: nnx.merge(graphdef, state)(y, 0.5)  # noqa: E731
        return how(f, x)

    g_fl = jax.grad(lap)(state, FORWARD_LAPLACIAN.laplacian)
    g_ref = jax.grad(lap)(state, lambda f, y: jnp.trace(jax.hessian(f)(y)))
    for a, b in zip(jax.tree.leaves(g_fl), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_divergence_and_auto_selection():
    net = networks.FourierMLP(D, D, 16, 2, "gelu", 4, 1.0, rngs=nnx.Rngs(5))
    f = lambda y: net(y, 0.1)  # noqa: E731
    x = point(12)
    np.testing.assert_allclose(FORWARD_LAPLACIAN.divergence(f, x), jnp.trace(jax.jacfwd(f)(x)), rtol=1e-10)
    assert Auto(min_dim=D).pick(x) is FORWARD_LAPLACIAN and Auto(min_dim=D + 1).pick(x) is EXACT
    np.testing.assert_allclose(Auto().divergence(f, x), jnp.trace(jax.jacfwd(f)(x)), rtol=1e-10)
    assert isinstance(BACKENDS.get("auto"), Auto)
    with pytest.raises(KeyError, match="forward_laplacian"):
        BACKENDS.get("nope")


def test_gradient_field_divergence_is_the_laplacian_of_its_potential():
    from pinnflow.operators import GradientField, field_divergence

    W = jnp.asarray(np.random.default_rng(13).normal(size=(D, D)))
    Phi = lambda y, s: jnp.sum(jnp.log(jnp.cosh(W @ y))) * (1 + s)  # noqa: E731
    mu = GradientField(Phi)
    x = point(14)
    np.testing.assert_allclose(mu(x, 0.4), jax.grad(Phi)(x, 0.4), rtol=1e-12)
    expected = jnp.trace(jax.jacfwd(lambda y: jax.grad(Phi)(y, 0.4))(x))
    for op in (Exact(), ForwardLaplacian(), Auto()):
        np.testing.assert_allclose(field_divergence(op, mu, x, 0.4), expected, rtol=1e-10)
        np.testing.assert_allclose(field_divergence(op, lambda y, s: mu(y, s), x, 0.4), expected, rtol=1e-10)
