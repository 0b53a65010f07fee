"""A user's density that cannot work is refused early and explained (issue 12, item 7): Python branching on
the input at construction; a log-density that is -inf on part of the collocation box before compiling."""

import jax.numpy as jnp
import pytest

import pinnflow as pf


def test_python_branching_on_the_input_is_refused_at_construction():
    def branchy(x):
        if x[0] > 0:  # a tracer error inside training otherwise
            return -x @ x
        return -2.0 * x @ x

    with pytest.raises(ValueError, match=r"target 'branchy': log_density must be traceable by JAX.*jnp.where"):
        pf.Target("branchy", 2, branchy, ([-1, -1], [1, 1]))


def test_minus_infinity_on_the_box_is_explained_before_compiling():
    half = pf.Target("half", 2, lambda x: jnp.where(x[0] > 0.5, -jnp.inf, -x @ x), ([-1, -1], [1, 1]))
    cfg = pf.Config(loss="log_ce").override(["network.width=8", "network.depth=1", "optim.steps=10",
                                             "optim.chunk=10", "optim.checkpoint_every=10"])
    with pytest.raises(ValueError, match=r"not finite at collocation point.*must be finite there: shrink the domain"):
        pf.train(half, cfg, progress=False)
    with pytest.raises(ValueError, match="not finite at the domain centre.*shrink the domain"):
        pf.Target("empty", 2, lambda x: -jnp.inf * jnp.ones(()), ([-1, -1], [1, 1]))
