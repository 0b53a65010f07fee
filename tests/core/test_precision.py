"""Precision is scoped: training, loading, sampling and fine-tuning a float64 run leave the caller's precision
(float32 here) as it was, while the run's own arrays are float64."""

import jax
import jax.numpy as jnp
import pytest

import pinnflow as pf
import problems
from pinnflow.core.precision import precision


def test_precision_scope_restores_the_callers():
    assert not jax.config.jax_enable_x64
    with precision("float64"):
        assert jnp.ones(1).dtype == jnp.float64
        with precision("float32"):
            assert jnp.ones(1).dtype == jnp.float32
        assert jnp.ones(1).dtype == jnp.float64
    assert jnp.ones(1).dtype == jnp.float32
    with pytest.raises(ValueError, match="float16"), precision("float16"):
        pass


def test_a_float64_run_does_not_change_the_callers_precision(tmp_path):
    assert not jax.config.jax_enable_x64, "the test process starts in float32"
    target = problems.get("gaussian", mean=(0.5, -0.5), cov=((1.0, 0.2), (0.2, 0.5)), log_Z=0.0)
    cfg = pf.Config(loss="log_ce", precision="float64").override([
        "network.width=8", "network.depth=1", "network.num_freq=1", "optim.steps=20", "optim.chunk=10",
        "optim.checkpoint_every=10", "optim.batch_size=16", "sampler.steps=4", "sampler.n_eval=128",
        "sampler.sinkhorn_n=16", "gn.steps=1", "gn.batch_size=32", "gn.val_batch_size=32", "gn.ls_steps=2"])
    run = pf.train(target, cfg, run_dir=tmp_path, progress=False)
    assert jnp.ones(1).dtype == jnp.float32 and not jax.config.jax_enable_x64
    loaded = pf.load_run(tmp_path, target=target)
    assert jnp.ones(1).dtype == jnp.float32
    assert {x.dtype for x in jax.tree_util.tree_leaves(loaded.params)} == {jnp.dtype("float64")}
    s = pf.sample(loaded, jax.random.PRNGKey(0), 32)
    assert s.x.dtype == jnp.float64 and jnp.ones(1).dtype == jnp.float32
    pf.evaluate(loaded)
    tuned = pf.gauss_newton(run, progress=False)
    assert tuned.config.precision == "float64"
    assert jnp.ones(1).dtype == jnp.float32 and not jax.config.jax_enable_x64
