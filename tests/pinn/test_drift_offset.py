"""The `langevin` drift offset: μ = (σ²/2)∇V_ref + network, checked against the closed-form score of a Gaussian
target, and its probability-flow drift, which no longer contains the target's score."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from flax import nnx

import pinnflow as pf
import problems
from pinnflow.core.config import ConfigError
from pinnflow.pinn.parametrisations import PARAMETRISATIONS
from pinnflow.pinn.train import build

MEAN = np.array([1.0, -0.5])
COV = np.array([[1.5, 0.4], [0.4, 0.6]])
SMALL = ["network.width=16", "network.depth=2", "network.num_freq=2"]


def target():
    return problems.get("gaussian", mean=tuple(MEAN), cov=tuple(map(tuple, COV)), log_Z=0.7)


def fields(loss, offset):
    cfg = pf.Config(loss=loss).override([*SMALL, f"drift_offset={offset}"])
    loss_, setup, _, graphdef, params = build(target(), cfg)
    model = nnx.merge(graphdef, params)
    return PARAMETRISATIONS.get(loss_.parametrisation).fields(model, setup), model, setup


def grad_V_ref(x, t, T, prior_std):
    s = t / T
    return s * (-np.linalg.solve(COV, x - MEAN)) + (1 - s) * (-x / prior_std**2)


POINTS = [(np.array([0.3, -1.2]), 0.4), (np.array([2.5, 1.0]), 0.9), (np.array([-3.0, 4.0]), 0.05)]


@pytest.mark.parametrize("loss", ["log_fp", "log_fp_anneal", "sb"])
def test_offset_adds_the_reference_score_and_leaves_the_network(loss):
    f0, _, setup = fields(loss, "none")
    f1, model, _ = fields(loss, "langevin")  # same seed: the same network
    c = 0.5 * setup.sigma**2
    assert c == pytest.approx(1.0)  # σ = √2
    for x, t in POINTS:
        xj, tj = jnp.asarray(x, jnp.float32), jnp.float32(t)
        expected = np.asarray(f0.drift(xj, tj)) + c * grad_V_ref(x, t, setup.T, setup.prior.std)
        np.testing.assert_allclose(np.asarray(f1.drift(xj, tj)), expected, rtol=2e-5, atol=2e-5)
        # V is not changed by the offset
        assert float(f1.V(xj, tj)) == pytest.approx(float(f0.V(xj, tj)), rel=1e-6)


@pytest.mark.parametrize("loss", ["log_fp", "sb"])
def test_probability_flow_is_the_network_minus_the_phi_term(loss):
    """μ − (σ²/2)∇V = network − (σ²/2)(t/T)(1 − t/T)∇φ: the target's score cancels exactly."""
    f0, model, setup = fields(loss, "none")
    f1, _, _ = fields(loss, "langevin")
    c, T = 0.5 * setup.sigma**2, setup.T
    net = f0.drift  # the paper's parametrisation: μ is the network (∇Φ_net for sb)
    for x, t in POINTS:
        xj, tj = jnp.asarray(x, jnp.float32), jnp.float32(t)
        s = t / T
        g_phi = jax.grad(model.phi)(xj, tj)
        expected = np.asarray(net(xj, tj)) - c * s * (1 - s) * np.asarray(g_phi)
        np.testing.assert_allclose(np.asarray(f1.flow(xj, tj)), expected, rtol=2e-5, atol=2e-5)


def test_ode_losses_are_unchanged_and_unknown_offsets_list_the_choices():
    f0, _, _ = fields("log_ce", "none")
    f1, _, _ = fields("log_ce", "langevin")
    for x, t in POINTS:
        xj, tj = jnp.asarray(x, jnp.float32), jnp.float32(t)
        np.testing.assert_array_equal(np.asarray(f1.drift(xj, tj)), np.asarray(f0.drift(xj, tj)))
    with pytest.raises(ConfigError, match="langevin"):
        pf.Config(drift_offset="nope")


def test_default_is_langevin_and_runs_saved_before_the_key_load_as_none(tmp_path):
    assert pf.Config().drift_offset == "langevin"
    path = tmp_path / "config.yaml"
    data = pf.Config(loss="log_fp").to_dict()
    del data["drift_offset"]
    path.write_text(yaml.safe_dump(data))
    assert pf.Config.from_saved(path).drift_offset == "none"  # what such a run learned
    assert pf.Config.from_yaml(path).drift_offset == "langevin"  # a user's config file takes the default
