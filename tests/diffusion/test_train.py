"""The diffusion-model solver's run machinery and input checks: every bad input named in the issue is refused
before anything compiles; training runs on the shared loop with per-term history, checkpoints, exact resume and
reload; the potential network's score is curl-free and a rotational field's curl is measured."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import problems.datasets as datasets
from pinnflow.core.config import ConfigError
from pinnflow.core.precision import precision
from pinnflow.dataset import Dataset
from pinnflow.diffusion import DiffusionConfig, load_run, train
from pinnflow.diffusion.evaluate import curl, evaluate, mean_curl, residual_value
from pinnflow.diffusion.samplers import time_grid
from pinnflow.diffusion.train import DiffusionRun, base_of, build

TINY = dict(optim=dict(steps=40, schedule_steps=40, chunk=20, checkpoint_every=20, batch_size=64),
            loss=dict(w_R=1.0, collocation=64), network=dict(kind="mlp", width=16, depth=2, activation="softplus"),
            sampler=dict(steps=50, fine_final=2), eval=dict(points=2000))


def _cfg(**over):
    base = {k: dict(v) for k, v in TINY.items()}
    for k, v in over.items():
        base.setdefault(k, {}).update(v) if isinstance(v, dict) else base.__setitem__(k, v)
    return DiffusionConfig(**base)


@pytest.mark.parametrize(("over", "key"), [
    ({"loss": {"t_min": 0.0}}, "loss.t_min"),
    ({"loss": {"t_min": -1e-3}}, "loss.t_min"),
    ({"loss": {"t_min": 10.0}}, "loss.t_min"),
    ({"sde": {"name": "cir"}}, "sde.name"),
    ({"loss": {"regulariser": "hjb"}}, "loss.regulariser"),
    ({"loss": {"weighting": "snr"}}, "loss.weighting"),
    ({"loss": {"parametrisation": "score", "regulariser": "log_fp"}}, "loss.regulariser"),
    ({"loss": {"box": [[1, 0], [0, 1]]}}, "loss.box"),
    ({"sde": {"name": "ou", "params": {"theta": -1}}}, "sde.params.theta"),
    ({"eval": {"bins": 1}}, "eval.bins"),
])
def test_invalid_configs_name_the_key(over, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _cfg(**over)


def test_unknown_names_list_the_choices():
    with pytest.raises(ConfigError, match="ou, ve, vp"):
        _cfg(sde={"name": "cir"})
    with pytest.raises(KeyError, match="checkerboard, circles"):
        datasets.get("moons")
    with pytest.raises(ConfigError, match="log_fp, score_fp"):
        _cfg(loss={"regulariser": "fp"})


def test_bad_data_is_refused_before_compiling():
    x = np.random.default_rng(0).normal(size=(100, 2))
    x[7, 1] = np.nan
    with pytest.raises(ValueError, match="1 of 100 samples have NaN"):
        Dataset.from_array("mine", x)
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        Dataset.from_array("mine", np.zeros(10))
    good = Dataset.from_array("mine", np.nan_to_num(x))
    with pytest.raises(ConfigError, match="data.name"):
        train(good, _cfg())
    with pytest.raises(ConfigError, match=r"holds only .*% of the data"):
        train(good, _cfg(data={"name": "mine"}, loss={"box": [[5.0, 5.0], [6.0, 6.0]]}))
    far = Dataset.from_array("far", np.nan_to_num(x) + 10.0)
    with pytest.raises(ConfigError, match=r"eval.box: the histogram box \[-4, 4\]\^2 holds only 0.0%"):
        train(far, _cfg(data={"name": "far"}))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run and the same run stopped half-way and resumed (w_R = 1 with the boundary term)."""
    ds = datasets.get("gaussian")
    cfg = _cfg(data={"name": "gaussian"}, loss={"boundary_weight": 1.0})
    path = tmp_path_factory.mktemp("diffusion") / "r"
    full = train(ds, cfg, progress=False)
    half = cfg.override(["optim.steps=20"])
    train(ds, half, run_dir=path, progress=False)
    with pytest.raises(FileExistsError):
        train(ds, half, run_dir=path, progress=False)
    resumed = train(ds, cfg, run_dir=path, resume=True, progress=False)
    return full, resumed, path


def test_training_history_checkpoint_resume_and_reload(runs):
    full, resumed, path = runs
    assert {"step", "loss", "dsm", "residual", "boundary", "lr", "seconds"} == set(full.history.columns)
    assert full.step == 40 and np.all(np.isfinite(full.history[["dsm", "residual", "boundary"]].to_numpy()))
    row = full.history.iloc[-1]
    assert row.loss == pytest.approx(row.dsm + row.residual + row.boundary, rel=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(resumed.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    loaded = load_run(path)
    x = loaded.sample("ode", 8, seed=3)
    np.testing.assert_allclose(x, resumed.sample("ode", 8, seed=3), rtol=1e-5, atol=1e-6)
    assert np.isfinite(residual_value(loaded, 256)[0])
    # 40 steps leave the score near 0, so the reverse OU flow expands by about e^T: a wide box keeps the samples
    wide = dataclasses.replace(loaded, config=loaded.config.override(["eval.box=1e6"]))
    row, arrays = evaluate(wide, samples=2000, floors=("data",))
    assert {"w2_ode_sde", "w2_ode_data", "w2_sde_data", "floor_data", "residual", "dsm", "curl"} <= set(row)
    assert all(np.isfinite(row[k]) and row[k] >= 0 for k in ("w2_ode_sde", "w2_ode_data", "floor_data"))
    assert row["kept_ode"] == 1.0 and row["kept_data"] == 1.0 and arrays["hist_ode"].shape == (64, 64)
    with pytest.raises(ValueError, match="none of the 2000 samples"):  # all of them left the default box
        evaluate(loaded, samples=2000)


def test_potential_scores_are_curl_free_and_curl_is_measured(runs):
    assert mean_curl(runs[0], points=8)[0] < 1e-4
    rot = lambda x, t: jnp.array([-x[1], x[0]]) + x  # noqa: E731  curl 2 everywhere
    assert float(curl(rot, jnp.array([0.3, -0.2]), 0.0)) == pytest.approx(2.0, rel=1e-6)
    cfg = _cfg(data={"name": "gaussian"}, loss={"parametrisation": "score", "regulariser": "score_fp"})
    sde, par, graphdef, params = build(datasets.get("gaussian"), cfg)
    score = par.fields(nnx.merge(graphdef, params)).score
    c = jax.vmap(lambda x: curl(score, x, 0.1))(jax.random.normal(jax.random.PRNGKey(0), (16, 2)))
    assert float(jnp.mean(c)) > 1e-3  # a vector network is not a gradient field


def test_time_grid_refines_the_final_stretch():
    ts = time_grid(10.0, 0.0, 800, 10)
    assert ts[0] == 10.0 and ts[-1] == 0.0 and len(ts) == 790 + 100 + 1
    assert np.allclose(np.diff(ts[:791]), -0.0125) and np.allclose(np.diff(ts[790:]), -0.00125)
    with pytest.raises(ValueError):
        time_grid(1.0, 1.0, 10)


def test_gaussian_base_solves_the_log_fp_equation_and_keeps_an_untrained_model_sampling():
    """φ = network + log N(x; α m, (α² c + σ²) I): zero residual when the network is 0, and an untrained network's
    samples stay near the data's Gaussian approximation instead of expanding by e^T (the plain network)."""
    from pinnflow.diffusion.losses import BASES, REGULARISERS, Fields

    ds = datasets.get("gaussian")
    cfg = _cfg(data={"name": "gaussian"}, loss={"base": "gaussian"})
    sde = cfg.forward_sde()
    with precision("float64"):
        base = BASES.get("gaussian", sde=sde, data=ds.draw(0, 20_000))
        f = Fields(base, jax.grad(base))
        x = jax.random.uniform(jax.random.PRNGKey(1), (16, 2), minval=-3, maxval=3)
        r = jax.jit(jax.vmap(lambda a, b: REGULARISERS.get("log_fp")(f, sde, a, b)))(x, jnp.linspace(0.01, 10, 16))
        assert float(jnp.max(jnp.abs(r))) < 1e-8
    _, par, graphdef, params = build(ds, cfg)  # untrained: no compile of a training step
    run = DiffusionRun(cfg, ds, sde, par, graphdef, params, base=base_of(ds, cfg, sde))
    y = run.sample("ode", 2000, seed=0)
    assert np.all(np.abs(y.mean(0) - np.array([0.5, -0.5])) < 0.1) and np.all(np.abs(y.std(0) - 0.5) < 0.1)
    with pytest.raises(ConfigError, match="loss.base"):
        _cfg(loss={"base": "laplace"})
