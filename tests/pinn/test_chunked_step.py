"""The training step's gradient accumulated over slices of points (optim.point_chunk) equals the gradient of
the vmapped loss, for every loss of Table 1 and for a stochastic backend (same per-point probe keys)."""

import jax
import numpy as np
import pytest

import pinnflow as pf
from pinnflow import losses
from pinnflow.operators import Auto, Hutchinson
from pinnflow.pinn.train import build, make_loss_fn, make_value_and_grad
from tests.pinn.test_training import small_config, target

FAST = {("log_ce", "exact"), ("log_fp", "hutchinson")}  # the others: -m slow
CASES = [pytest.param(name, op, id=f"{tag}-{name}", marks=() if (name, tag) in FAST else pytest.mark.slow)
         for tag, op in (("exact", Auto()), ("hutchinson", Hutchinson(1))) for name in losses.names()]


@pytest.mark.parametrize("loss_name, op", CASES)
def test_sliced_gradient_equals_the_vmapped_one(loss_name, op):
    config = small_config(loss_name)
    loss, setup, domain, graphdef, params = build(target(), config)
    xs, ts = domain.sample(jax.random.PRNGKey(0), 48)
    key = jax.random.PRNGKey(1)
    (want, want_terms), g_want = jax.value_and_grad(make_loss_fn(loss, setup, graphdef, op, config.alpha),
                                                    has_aux=True)(params, xs, ts, key)
    (total, terms), g = jax.jit(make_value_and_grad(loss, setup, graphdef, op, config.alpha, 16))(
        params, xs, ts, key)  # three slices (a remainder: tests/core/test_chunking.py)
    np.testing.assert_allclose(total, want, rtol=1e-5)
    assert terms.keys() == want_terms.keys()
    for k in terms:
        np.testing.assert_allclose(terms[k], want_terms[k], rtol=1e-5)
    scale = max(float(np.max(np.abs(a))) for a in jax.tree.leaves(g_want))
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.slow  # every default-suite training already runs the sliced step ("auto" on CPU)
def test_training_with_and_without_slices_agrees():
    runs = [pf.train(target(), small_config("log_ce", 50, f"optim.point_chunk={c}"), progress=False)
            for c in ("null", "32")]
    a, b = (r.history["loss"].to_numpy() for r in runs)
    np.testing.assert_allclose(a, b, rtol=1e-3)
