"""Targets of paper 003, App. C (eqs. 69-71) plus funnel and Gaussian: registry, log Z, std, samplers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import problems
from pinnflow.core.registry import Registry
from pinnflow.target import Target

__all__: list[str] = []

N_SAMPLES = 200_000
GAUSS_MEAN = (0.5, -1.0)
GAUSS_COV = ((2.0, 0.8), (0.8, 1.0))


def _gaussian() -> Target:
    return problems.get("gaussian", mean=GAUSS_MEAN, cov=GAUSS_COV, log_Z=1.3)


def _grid_log_integral(target: Target, lo: np.ndarray, hi: np.ndarray, n: int) -> float:
    """log of the midpoint-rule integral of exp(log_density) over a 2-D box, in float64."""
    with jax.enable_x64(True):
        axes = [lo[i] + (np.arange(n) + 0.5) * (hi[i] - lo[i]) / n for i in range(2)]
        pts = jnp.asarray(np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2))
        logp = jax.jit(jax.vmap(target.log_density))(pts)
        cell = np.prod((hi - lo) / n)
        return float(jax.nn.logsumexp(logp)) + float(np.log(cell))


# ---------------------------------------------------------------- registry


def test_registry_names():
    assert {"gmm", "many_well", "many_well_5", "many_well_50", "funnel", "gaussian"} <= set(problems.names())


def test_unknown_name_lists_choices():
    with pytest.raises(KeyError) as err:
        problems.get("no_such_target")
    msg = str(err.value)
    assert "no_such_target" in msg
    for name in ("gmm", "many_well_5", "funnel", "gaussian"):
        assert name in msg


def test_duplicate_registration_raises():
    reg: Registry[Target] = Registry("problem")

    def thing() -> Target:
        return problems.get("gmm")

    reg.register(thing)
    with pytest.raises(ValueError, match="thing"):
        reg.register(thing)
    with pytest.raises(ValueError, match="thing"):
        reg.register(name="thing")(lambda: None)
    assert reg.names() == ["thing"]


# ---------------------------------------------------------------- log Z and std


@pytest.mark.parametrize(("name", "log_Z"), [("many_well_5", -0.5410555), ("many_well_50", 42.8172427)])
def test_many_well_log_Z(name: str, log_Z: float):
    assert problems.get(name).log_Z == pytest.approx(log_Z, abs=1e-6)


def test_many_well_names():
    assert problems.get("many_well_5").name == "many_well(d=5,m=5,delta=4.0)"
    assert problems.get("many_well_50").name == "many_well(d=50,m=5,delta=2.0)"


def test_gmm_log_Z_by_grid():
    t = problems.get("gmm")
    assert t.log_Z == 0.0
    assert _grid_log_integral(t, np.full(2, -11.0), np.full(2, 11.0), 1100) == pytest.approx(0.0, abs=1e-4)


def test_gaussian_log_Z_by_grid():
    t = _gaussian()
    assert t.log_Z == 1.3
    mean, std = np.asarray(GAUSS_MEAN), np.sqrt(np.diag(GAUSS_COV))
    val = _grid_log_integral(t, mean - 10 * std, mean + 10 * std, 1000)
    assert val == pytest.approx(1.3, abs=1e-4)


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("gmm", [4.11906] * 2),
        ("many_well_5", [1.983458] * 5),
        ("many_well_50", [1.354748] * 5 + [1.0] * 45),
    ],
)
def test_reference_std(name: str, std: list[float]):
    np.testing.assert_allclose(problems.get(name).std, std, atol=1e-5)


def test_gaussian_and_funnel_std():
    np.testing.assert_allclose(_gaussian().std, np.sqrt(np.diag(GAUSS_COV)))
    f = problems.get("funnel", d=4, scale=3.0)
    np.testing.assert_allclose(f.std, [3.0] + [np.exp(2.25)] * 3)


# ---------------------------------------------------------------- exact samplers


def _moment_check(x: np.ndarray, mean: np.ndarray, std: np.ndarray):
    n = x.shape[0]
    assert np.all(np.isfinite(x))
    assert np.all(np.abs(x.mean(0) - mean) < 5 * std / np.sqrt(n)), x.mean(0) - mean
    np.testing.assert_allclose(x.std(0), std, rtol=0.01)


@pytest.mark.parametrize("name", ["gmm", "many_well_5", "many_well_50", "gaussian"])
def test_sampler_moments(name: str):
    t = _gaussian() if name == "gaussian" else problems.get(name)
    x = np.asarray(jax.jit(t.sample, static_argnums=1)(jax.random.key(1), N_SAMPLES), dtype=np.float64)
    assert x.shape == (N_SAMPLES, t.dim)
    mean = np.asarray(GAUSS_MEAN) if name == "gaussian" else np.zeros(t.dim)
    _moment_check(x, mean, t.std)
    if name == "gaussian":
        np.testing.assert_allclose(np.cov(x.T), GAUSS_COV, atol=0.03)


def test_gmm_mode_weights():
    t = problems.get("gmm")
    x = np.asarray(t.sample(jax.random.key(2), N_SAMPLES))
    mode = np.clip(np.rint(x / 5.0), -1, 1).astype(int) + 1  # nearest centre, index in {0, 1, 2}^2
    counts = np.bincount(3 * mode[:, 0] + mode[:, 1], minlength=9) / N_SAMPLES
    assert counts.shape == (9,)
    np.testing.assert_allclose(counts, 1 / 9, atol=0.01)


def test_funnel_sampler():
    """x_i has a heavy tail, so check x_0 and the whitened x_i exp(-x_0/2) rather than raw moments."""
    t = problems.get("funnel", d=5, scale=3.0)
    x = np.asarray(t.sample(jax.random.key(3), N_SAMPLES), dtype=np.float64)
    white = np.concatenate([x[:, :1] / 3.0, x[:, 1:] * np.exp(-0.5 * x[:, :1])], axis=1)
    _moment_check(white, np.zeros(5), np.ones(5))


def test_many_well_sampler_marginal():
    """The first-coordinate histogram of the inverse-CDF sampler matches the 1-D double well."""
    t = problems.get("many_well_5")
    x = np.asarray(t.sample(jax.random.key(4), N_SAMPLES))[:, 0]
    edges = np.linspace(-4.0, 4.0, 41)
    hist, _ = np.histogram(x, bins=edges, density=True)
    fine = np.linspace(-4.0, 4.0, 40 * 200 + 1)
    pdf = np.exp(-((fine**2 - 4.0) ** 2))
    pdf /= np.trapezoid(pdf, fine)
    cells = pdf[:-1].reshape(40, 200).mean(1)  # approximate bin averages
    np.testing.assert_allclose(hist, cells, atol=0.02)


# ---------------------------------------------------------------- dtype, jit, vmap


@pytest.mark.parametrize("name", ["gmm", "many_well_5", "many_well_50", "funnel", "gaussian"])
def test_log_density_dtypes_jit_vmap(name: str):
    t = _gaussian() if name == "gaussian" else problems.get(name)
    x32 = t.sample(jax.random.key(5), 7).astype(jnp.float32)
    f = jax.jit(jax.vmap(t.log_density))
    y32 = f(x32)
    assert y32.shape == (7,) and y32.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(y32)))
    np.testing.assert_allclose(t.log_prob(x32), y32, rtol=1e-6)
    with jax.enable_x64(True):
        x64 = jnp.asarray(np.asarray(x32), dtype=jnp.float64)
        y64 = jax.jit(jax.vmap(t.log_density))(x64)
        assert y64.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(y64), np.asarray(y32), rtol=1e-4, atol=1e-4)


def test_gaussian_log_density_matches_scipy():
    from scipy.stats import multivariate_normal

    t = _gaussian()
    pts = np.array([[0.0, 0.0], [1.5, -2.0], [-3.0, 1.0]])
    with jax.enable_x64(True):
        got = np.asarray(t.log_prob(jnp.asarray(pts)))
    want = multivariate_normal(GAUSS_MEAN, GAUSS_COV).logpdf(pts) + 1.3
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---------------------------------------------------------------- validation


def _target(**kw) -> Target:
    args = {"name": "my-target", "dim": 2, "log_density": lambda x: -0.5 * jnp.sum(x**2),
            "domain": (-np.ones(2), np.ones(2))}
    return Target(**(args | kw))


@pytest.mark.parametrize(
    "kw",
    [
        {"domain": (np.ones(2), -np.ones(2))},  # lo > hi
        {"domain": (np.zeros(2), np.zeros(2))},  # lo == hi
        {"domain": (-np.ones(3), np.ones(3))},  # wrong shape
        {"domain": (-np.ones(2),)},  # not a pair
        {"log_density": lambda x: x},  # vector output
        {"log_density": lambda x: jnp.log(jnp.sum(x**2))},  # -inf at the centre
        {"log_density": lambda x: jnp.sum(x) * jnp.nan},  # nan
    ],
)
def test_target_validation(kw: dict):
    with pytest.raises(ValueError, match="my-target"):
        _target(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"cov": [[1.0, 2.0], [2.0, 1.0]]},  # indefinite
        {"cov": [[1.0, 0.5], [0.0, 1.0]]},  # not symmetric
        {"cov": np.eye(3)},  # shape does not match mean
        {"mean": [[0.0, 0.0]]},  # mean not a vector
    ],
)
def test_gaussian_bad_parameters(kw: dict):
    with pytest.raises(ValueError, match="gaussian"):
        problems.get("gaussian", **kw)


def test_bad_family_parameters():
    with pytest.raises(ValueError, match="gmm"):
        problems.get("gmm", var=-1.0)
    with pytest.raises(ValueError, match="many_well"):
        problems.get("many_well", d=3, m=4)
    with pytest.raises(ValueError, match="funnel"):
        problems.get("funnel", d=1)
