"""Sampling and loading without repeated work (issue 12, item 6): one compiled batch function per model
structure, reused across calls and across parameter values; `load_run` builds the structure without running
initialisers or the z_init estimate, and samples exactly like the trained run."""

import dataclasses

import jax
import numpy as np

import pinnflow as pf
import problems
from pinnflow.pinn import sampling

SMALL = ["network.width=8", "network.depth=1", "network.num_freq=1", "optim.steps=40", "optim.chunk=20",
         "optim.checkpoint_every=20", "optim.batch_size=32", "sampler.steps=5", "sampler.n_eval=64",
         "sampler.sinkhorn_n=32"]


def test_sampling_reuses_one_compiled_function_and_load_run_samples_the_same(tmp_path):
    target = problems.get("gaussian", mean=(1.0, -0.5), cov=((1.5, 0.4), (0.4, 0.6)), log_Z=0.7)
    config = pf.Config(loss="log_fp", z_init="prior_is").override(SMALL)
    run = pf.train(target, config, run_dir=tmp_path / "run", progress=False)
    key = jax.random.PRNGKey(0)

    calls = []
    original = sampling.METHODS.factory("ode")

    def counting(*args):  # counts traces: a cached jitted function does not call it again
        calls.append(1)
        return original(*args)

    sampling._COMPILED.clear()
    first = sampling._batch_function(run, "ode", counting, 64, 5, sampling.DataParallel.create(True))
    a = first(run.params, key)
    b = first(run.params, key)
    assert len(calls) == 1
    np.testing.assert_array_equal(a.x, b.x)

    s1 = pf.sample(run, key, 100, batch=64)
    s2 = pf.sample(run, key, 100, batch=64)
    np.testing.assert_array_equal(s1.log_w, s2.log_w)
    # another parameter value (e.g. a later chunk under train(monitor=...)) reuses the function, new numbers
    other = dataclasses.replace(run, params=jax.tree_util.tree_map(lambda p: p * 0.5, run.params))
    jitted = sampling._batch_function(other, "ode", sampling.METHODS.factory("ode"), 64, 5,
                                      sampling.DataParallel.create(True))
    assert jitted is sampling._batch_function(run, "ode", sampling.METHODS.factory("ode"), 64, 5,
                                              sampling.DataParallel.create(True))
    assert not np.allclose(pf.sample(other, key, 100, batch=64).log_w, s1.log_w)

    loaded = pf.load_run(tmp_path / "run", target=target)
    assert np.isnan(loaded.setup.z_init)  # z_init = "prior_is" is not re-estimated for loading
    for p, q in zip(jax.tree_util.tree_leaves(run.params), jax.tree_util.tree_leaves(loaded.params), strict=True):
        np.testing.assert_array_equal(p, q)
    s3 = pf.sample(loaded, key, 100, batch=64)
    np.testing.assert_allclose(s3.log_w, s1.log_w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s3.x, s1.x, rtol=1e-6, atol=1e-6)
