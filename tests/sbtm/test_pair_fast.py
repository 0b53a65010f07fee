"""The closed form of the one-hidden-layer pair potential (`PairPotential.value_grad_laplacian`, the path the
score, the traces and the losses take) against the autodiff path over concatenated pair inputs: value, score,
Laplacian and the losses' parameter gradients to float64 round-off, in one block and in blocks of rows;
permutation invariance; the activations' derivative ladders; float32 accuracy; the benchmark's smallest
setting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import pinnflow.sbtm.models as models
from pinnflow.nn import activation
from pinnflow.operators import EXACT, Hutchinson
from pinnflow.sbtm import LOSSES
from pinnflow.sbtm.config import LossConfig, ScoreModelConfig
from pinnflow.sbtm.models import CLOSED_FORM_LADDERS, PairPotential, autodiff_ladder

N, K, WIDTH = 4, 2, 16


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def row_blocks(f):
    """`f` traced with the pair sums in a checkpointed scan over single rows (r = 1) instead of one block."""

    def traced(*args):
        old, models.PAIR_BLOCK = models.PAIR_BLOCK, 1
        try:
            return f(*args)
        finally:
            models.PAIR_BLOCK = old

    return traced


def pair(act: str = "swish", closed_form: bool = True, depth: int = 1) -> PairPotential:
    cfg = ScoreModelConfig(kind="pair_potential", width=WIDTH, depth=depth, activation=act, closed_form=closed_form)
    return PairPotential(N, K, cfg, nnx.Rngs(0))  # same seed: both paths get the same parameters


def points(n: int = 5, seed: int = 1) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (n, N * K))


@jax.jit(static_argnums=0)
def closed_form_at(graphdef: nnx.GraphDef, params, X: jax.Array):
    """(U, ∇U, ΔU) of the closed form at the points X (one compiled program per shape and dtype)."""
    return jax.vmap(nnx.merge(graphdef, params).value_grad_laplacian)(X)


def assert_close(a, b, rtol=1e-12, atol=1e-12):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def autodiff_reference(model: PairPotential, X: jax.Array):
    """(U, ∇U, ΔU) at the points X by autodiff of `potential_autodiff` (ΔU as the trace of the Hessian)."""
    U = model.potential_autodiff
    return (jax.vmap(U)(X), jax.vmap(jax.grad(U))(X), jax.vmap(lambda x: jnp.trace(jax.hessian(U)(x)))(X))


# a written-out derivative ladder and the autodiff one
@pytest.mark.parametrize("act", ["swish", pytest.param("gelu", marks=pytest.mark.slow)])
def test_closed_form_matches_autodiff(act):
    """U, ∇U, ΔU, `potential`, `score` and `score_and_trace` (D None or scalar) of the closed form equal
    autodiff's, in one block and (swish) in row blocks."""
    fast, slow = pair(act), pair(act, closed_form=False)
    assert fast.fused and not slow.fused
    X = points()

    def closed(X):
        U, g, lap = jax.vmap(fast.value_grad_laplacian)(X)
        (s, tr), (_, tr_d) = [jax.vmap(lambda x, D=D: fast.score_and_trace(x, EXACT, None, D))(X) for D in (None, 0.3)]
        return U, g, lap, jax.vmap(fast.potential)(X), -jax.vmap(fast.score)(X), -s, -tr, -tr_d / 0.3

    variants = (closed, row_blocks(closed)) if act == "swish" else (closed,)
    got, (U, g, lap) = jax.jit(lambda X: ([f(X) for f in variants], autodiff_reference(slow, X)))(X)
    for values in got:
        assert_close(values, (U, g, lap, U, g, g, lap, lap))


def test_permutation_invariance():
    """Relabelling the particles leaves U and ΔU unchanged and permutes the score."""
    graphdef, params = nnx.split(pair())
    X = points()
    perm = np.array([2, 0, 3, 1])
    U, g, lap = closed_form_at(graphdef, params, X)
    Up, gp, lapp = closed_form_at(graphdef, params, X.reshape(-1, N, K)[:, perm].reshape(X.shape))
    np.testing.assert_allclose(Up, U, rtol=1e-12)
    np.testing.assert_allclose(lapp, lap, rtol=1e-12)
    np.testing.assert_allclose(gp, g.reshape(-1, N, K)[:, perm].reshape(X.shape), rtol=1e-12, atol=1e-14)


def loss_gradients(kinds_ops, X):
    """[(value, parameter gradient)] of each loss: closed form in one block, in row blocks, and autodiff."""
    losses = [LOSSES.get(kind, op=op, cfg=LossConfig(kind=kind, noise_scale=0.1)) for kind, op in kinds_ops]
    (gd_fast, p_fast), (gd_slow, p_slow) = nnx.split(pair()), nnx.split(pair(closed_form=False))
    assert_close(p_fast, p_slow, rtol=0, atol=0)

    def grads(graphdef):
        def f(p):
            return [jax.value_and_grad(lambda q, L=L: L(nnx.merge(graphdef, q), X, jax.random.key(5)))(p)
                    for L in losses]

        return f

    return jax.jit(lambda p, q: (grads(gd_fast)(p), row_blocks(grads(gd_fast))(p), grads(gd_slow)(q)))(p_fast, p_slow)


def assert_same_gradients(one, rows, want):
    assert_close(one, want, rtol=1e-11, atol=1e-12)
    assert_close(rows, want, rtol=1e-11, atol=1e-12)
    for _, grad in want:  # (the output biases do not move the score: their gradients are 0)
        assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grad)) > 0


def test_implicit_loss_gradient_matches():
    """The exact implicit loss and its parameter gradient (the third derivative of σ in the backward pass)
    agree between the closed form (one block and row blocks) and autodiff."""
    assert_same_gradients(*loss_gradients([("implicit", EXACT)], points(8, seed=4)))


@pytest.mark.slow  # ~10 s of compilation
def test_hutchinson_and_denoising_gradients_match():
    """Hutchinson's implicit loss (autodiff of the closed-form U against that of the concatenated pairs, same
    probes) and the denoising loss (the score alone) agree too."""
    assert_same_gradients(*loss_gradients([("implicit", Hutchinson(1)), ("denoising", EXACT)], points(8, seed=4)))


def test_matrix_diffusion_and_depth_two_take_the_autodiff_path():
    """A (d, d) D takes the backend's Tr(D∇²U) of the closed-form U (with D = 0.3·I: 0.3·ΔU); depth 2 has no
    closed form."""
    x = points(1, seed=6)[0]
    model = pair("tanh")
    (s, tr), (_, g, lap) = jax.jit(lambda y: (model.score_and_trace(y, EXACT, None, 0.3 * jnp.eye(N * K)),
                                              model.value_grad_laplacian(y)))(x)
    assert_close((s, tr), (-g, -0.3 * lap))
    deep = pair("tanh", depth=2)
    assert not deep.fused
    with pytest.raises(ValueError, match="one hidden layer"):
        deep.value_grad_laplacian(x)


@pytest.mark.parametrize("name", sorted(CLOSED_FORM_LADDERS))
def test_closed_form_ladders_match_autodiff(name):
    """σ, σ', σ'', σ''' written out (with the logistic as ½(1 + tanh(u/2))) equal three nested JVPs."""
    u = jnp.linspace(-12.0, 12.0, 97)
    assert_close(jax.jit(CLOSED_FORM_LADDERS[name])(u), jax.jit(autodiff_ladder(activation(name)))(u),
                 rtol=1e-12, atol=1e-14)


def test_float32_closed_form_is_accurate():
    """In float32 the closed-form score and Laplacian agree with float64 on the same parameters to ~1e-6 of
    their largest entries (the logistic by tanh loses no accuracy that matters)."""
    X = points()
    graphdef, params = nnx.split(pair())
    params32 = jax.tree.map(lambda a: a.astype(jnp.float32), params)
    _, g_ref, lap_ref = closed_form_at(graphdef, params, X)
    _, g, lap = closed_form_at(graphdef, params32, X.astype(jnp.float32))
    assert g.dtype == lap.dtype == jnp.float32 and g_ref.dtype == jnp.float64
    for got, want in ((g, g_ref), (lap, lap_ref)):
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0,
                                   atol=2e-6 * float(jnp.max(jnp.abs(want))))
