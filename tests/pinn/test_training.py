"""End to end: every registered loss trains, checkpoints resume exactly, bad input fails early."""


import jax
import numpy as np
import pytest
from flax import nnx

import pinnflow as pf
import problems
from pinnflow import losses
from pinnflow.core import checkpoint
from pinnflow.core.rundir import CHECKPOINT

SMALL = [
    "network.width=16", "network.depth=2", "network.num_freq=2", "network.z_width=8",
    "optim.batch_size=128", "optim.chunk=50", "optim.checkpoint_every=100", "optim.lr=3e-3",
    "optim.lr_final=1e-3", "sampler.steps=20", "sampler.n_eval=500", "sampler.sinkhorn_n=200",
]


def target():
    return problems.get("gaussian", mean=(1.0, -0.5), cov=((1.5, 0.4), (0.4, 0.6)), log_Z=0.7)


def small_config(loss, steps=300, *extra):
    return pf.Config(loss=loss).override([*SMALL, f"optim.steps={steps}", *extra])


def test_registry_has_table_1():
    assert {"log_fp", "log_ce", "log_fp_anneal", "log_ce_anneal", "score", "sb", "ot"} <= set(losses.names())
    with pytest.raises(KeyError, match="available: .*log_ce"):
        losses.get("nope")


# log_ce also trains in the resume, trajectory-collocation, CLI and Gauss-Newton tests: its case here is slow
@pytest.mark.parametrize("loss", [pytest.param(n, marks=pytest.mark.slow) if n == "log_ce" else n
                                  for n in losses.names()])
def test_every_loss_trains_and_evaluates(loss):
    run = pf.train(target(), small_config(loss), progress=False)
    h = run.history
    assert np.isfinite(h["loss"]).all()
    assert h["loss"].iloc[-2:].mean() < 0.7 * h["loss"].iloc[:2].mean(), h["loss"].tolist()
    metrics, table = pf.evaluate(run, n=500)
    for k in ("ess", "delta_log_z", "delta_std", "sinkhorn"):
        assert np.isfinite(metrics[k]), (k, metrics)
    assert 0 < metrics["ess"] <= 1
    assert table.shape[0] == 1 and table["sinkhorn_epsilon"].iloc[0] == metrics["sinkhorn_epsilon"]


def test_user_defined_loss_with_the_decorator():
    @losses.register(parametrisation="general", sigma=0.0, name="my_ce_test")
    def my_ce(f, x, t, op, key):
        return {"ce": pf.residuals.log_ce(f.V, f.drift, x, t, op, key)}

    assert "my_ce_test" in losses.names()
    run = pf.train(target(), small_config("my_ce_test", 100), progress=False)
    assert "ce" in run.history.columns
    with pytest.raises(ValueError, match="already registered"):
        losses.register(my_ce, name="my_ce_test")


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(tmp_path):
    cfg = small_config("log_ce", 300)
    seen = []
    full = pf.train(target(), cfg, run_dir=tmp_path / "full", progress=False,
                    monitor=lambda r: seen.append((r.step, jax.tree_util.tree_leaves(r.params)[0])))
    assert [s for s, _ in seen] == list(range(50, 301, 50))  # one snapshot per chunk, with its parameters
    assert not np.allclose(seen[0][1], seen[1][1])
    np.testing.assert_array_equal(seen[-1][1], jax.tree_util.tree_leaves(full.params)[0])

    class Crash(Exception):
        pass

    def crash_at_250(row):
        if row["step"] == 250:
            raise Crash

    with pytest.raises(Crash):
        pf.train(target(), cfg, run_dir=tmp_path / "crash", progress=False, callback=crash_at_250)
    _, meta = checkpoint.read(tmp_path / "crash" / CHECKPOINT)
    assert meta["step"] == 200  # at most one checkpoint interval lost
    resumed = pf.train(target(), cfg, run_dir=tmp_path / "crash", resume=True, progress=False)
    assert resumed.step == 300
    for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(resumed.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.history["loss"].to_numpy(), resumed.history["loss"].to_numpy())
    # a finished run can be reloaded and sampled
    loaded = pf.load_run(tmp_path / "full", target=target())
    s = pf.sample(loaded, jax.random.PRNGKey(0), 64)
    assert s.x.shape == (64, 2) and np.isfinite(np.asarray(s.log_w)).all()


def test_trajectory_collocation_trains_and_resumes_exactly(tmp_path):
    cfg = small_config("log_ce", 300, "collocation.trajectory_fraction=0.5", "collocation.trajectory_count=64",
                       "collocation.trajectory_steps=10", "collocation.trajectory_every=150")
    full = pf.train(target(), cfg, run_dir=tmp_path / "full", progress=False)
    assert np.isfinite(full.history["loss"]).all()

    def crash_at_250(row):
        if row["step"] == 250:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        pf.train(target(), cfg, run_dir=tmp_path / "crash", progress=False, callback=crash_at_250)
    resumed = pf.train(target(), cfg, run_dir=tmp_path / "crash", resume=True, progress=False)
    for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(resumed.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the cached points differ from uniform ones: a run without them ends elsewhere
    plain = pf.train(target(), small_config("log_ce", 300), progress=False)
    assert not np.allclose(plain.history["loss"], full.history["loss"])


def test_existing_run_dir_needs_resume(tmp_path):
    cfg = small_config("log_ce", 50)
    pf.train(target(), cfg, run_dir=tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="resume"):
        pf.train(target(), cfg, run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="config differs"):
        pf.train(target(), small_config("log_ce", 50, "optim.lr=1e-3"), run_dir=tmp_path, resume=True,
                 progress=False)


def test_divergence_stops_with_a_clear_error_and_keeps_a_finite_checkpoint(tmp_path):
    cfg = small_config("log_ce", 200, "optim.lr=1e9", "optim.lr_final=1e9", "optim.clip_norm=null")
    with pytest.raises(pf.TrainingDiverged, match="non-finite loss"):
        pf.train(target(), cfg, run_dir=tmp_path, progress=False)
    trees, _ = checkpoint.read(tmp_path / CHECKPOINT)
    assert all(np.isfinite(x).all() for leaves in trees.values() for x in leaves if np.issubdtype(x.dtype, np.floating))


def test_config_validation_and_overrides(tmp_path):
    with pytest.raises(pf.ConfigError, match="unknown loss 'nope'; available: .*log_ce"):
        pf.Config(loss="nope")
    with pytest.raises(pf.ConfigError, match="optim.lr"):
        pf.Config().override(["optim.lr=-1"])
    with pytest.raises(pf.ConfigError, match="unknown key"):
        pf.Config().override(["optim.learning_rate=1"])
    with pytest.raises(pf.ConfigError, match="checkpoint_every"):
        pf.Config().override(["optim.chunk=300", "optim.checkpoint_every=1000"])
    with pytest.raises(pf.ConfigError, match="network.activation"):
        pf.Config().override(["network.activation=relu"])
    cfg = pf.Config().override(["optim.lr=1e-3", "problem=gmm", "problem_params.scale=4"])
    assert cfg.optim.lr == 1e-3 and cfg.problem_params == {"scale": 4}
    cfg.to_yaml(tmp_path / "c.yaml")
    assert pf.Config.from_yaml(tmp_path / "c.yaml").to_dict() == cfg.to_dict()


def test_bad_target_is_caught_before_compiling():
    bad = pf.Target(name="holey", dim=2, domain=([-3, -3], [3, 3]),
                    log_density=lambda x: -x @ x + jax.numpy.log(x[0] + 2.0))  # log of negative → nan
    with pytest.raises(ValueError, match="holey.*not finite"):
        pf.train(bad, small_config("log_ce", 50), progress=False)


def test_cli_list_and_unknown_problem(tmp_path, capsys):
    from pinnflow.cli import main

    assert main(["list"]) == 0
    assert "log_ce_anneal" in capsys.readouterr().out
    assert main(["train", "--problem", "nope", "--loss", "log_ce", "--out", str(tmp_path / "x")]) == 2
    assert "available" in capsys.readouterr().err


@pytest.mark.slow  # tests/cli/test_cli.py runs train/evaluate/sample/finetune from the CLI in the default suite
def test_cli_train_evaluate_sample(tmp_path, capsys):
    from pinnflow.cli import main

    out = tmp_path / "run"
    args = ["train", "--problem", "gaussian", "--loss", "log_ce", "--out", str(out), "--quiet", "--set",
            *SMALL, "optim.steps=100"]
    assert main(args) == 0
    assert main(["evaluate", str(out), "-n", "300"]) == 0
    assert "ess" in capsys.readouterr().out and (out / "metrics.csv").exists()
    assert main(["sample", str(out), "-n", "50", "-o", str(tmp_path / "s.npz")]) == 0
    data = np.load(tmp_path / "s.npz")
    assert data["x"].shape == (50, 2) and data["log_w"].shape == (50,)
    assert main(["finetune", str(out), "--steps", "2", "--solver", "cg", "--cg-iters", "5", "--quiet", "--set",
                 "gn.batch_size=64", "gn.val_batch_size=128"]) == 0
    assert "Gauss-Newton (cg): 2 steps" in capsys.readouterr().out
    assert main(["evaluate", str(out / "finetune"), "-n", "300"]) == 0


def test_z_init_from_a_prior_importance_sampling_estimate():
    """z of eq. (10) can start at a prior-IS estimate of log Z (needed when log Z is far from 0)."""
    from pinnflow.pinn.train import build

    t = problems.get("gaussian", mean=(0.3, -0.2), cov=((1.2, 0.1), (0.1, 0.8)), log_Z=42.0)
    for loss in ("log_ce", "ot"):  # general and potential parametrisations
        _, setup, _, graphdef, params = build(t, pf.Config(loss=loss, z_init="prior_is"))
        assert abs(setup.z_init - 42.0) < 0.02
        model = nnx.merge(graphdef, params)  # the constant z is the model's `z` part
        assert abs(float(model.z(0.0)) - 42.0) < 0.02
    _, setup, *_ = build(t, pf.Config(loss="log_ce", z_init=1.5))
    assert setup.z_init == 1.5
    with pytest.raises(pf.ConfigError, match="z_init"):
        pf.Config(z_init="zero")


def test_trajectory_cache_drops_runaway_points():
    """Cached points beyond the limit become NaN, and mix_batch swaps them for uniform ones."""
    from pinnflow.pinn.collocation import mix_batch, trajectory_cache
    from pinnflow.pinn.parametrisations import GaussianPrior

    prior = GaussianPrior(2, 1.0)
    blowup = lambda x, t: 3.0 * x  # noqa: E731  (|x| grows like e^{3t}: far out by t = 2)
    path, grid = trajectory_cache(blowup, prior, 2.0, 16, 20, jax.random.PRNGKey(0), limit=np.array([50.0, 50.0]))
    assert path.shape == (21, 16, 2) and grid.shape == (21,)
    far = ~np.isfinite(np.asarray(path)).all(-1)
    assert far.any() and (~far).any()
    assert np.all(np.abs(np.asarray(path)[~far]) <= 50.0)
    ux, ut = jax.numpy.zeros((64, 2)), jax.numpy.full((64,), 0.5)
    mx, mt = mix_batch(jax.random.PRNGKey(1), ux, ut, path, grid, 64)
    assert np.isfinite(np.asarray(mx)).all() and np.all(np.abs(np.asarray(mx)) <= 50.0)


def test_mix_batch_draws_continuous_times_on_the_trajectories():
    """τ ~ U[0, T] (not only the solver's grid times) and ξ is the trajectory at τ: for the exact linear flow
    x(t) = x0 + t·v the interpolation is exact, so every drawn (ξ, τ) satisfies ξ = x0_j + τ·v_j for its j."""
    from pinnflow.pinn.collocation import mix_batch

    T, steps, n = 2.0, 8, 5
    grid = jax.numpy.linspace(0.0, T, steps + 1)
    x0 = jax.random.normal(jax.random.PRNGKey(0), (n, 3))
    v = jax.random.normal(jax.random.PRNGKey(1), (n, 3))
    path = x0[None] + grid[:, None, None] * v[None]
    ux, ut = jax.numpy.full((4000, 3), 99.0), jax.numpy.zeros((4000,))
    mx, mt = mix_batch(jax.random.PRNGKey(2), ux, ut, path, grid, 3000)
    mx, mt = np.asarray(mx), np.asarray(mt)
    assert np.all(mx[:1000] == 99.0)  # the uniform part is kept
    cx, ct = mx[1000:], mt[1000:]
    on_grid = np.isclose(ct[:, None], np.asarray(grid)[None], atol=1e-4).any(-1)
    assert on_grid.mean() < 0.05 and 0.0 <= ct.min() and ct.max() <= T
    assert abs(ct.mean() - T / 2) < 0.05 and abs(ct.std() - T / np.sqrt(12)) < 0.05
    dist = np.abs(cx[:, None] - (np.asarray(x0)[None] + ct[:, None, None] * np.asarray(v)[None])).max(-1)
    assert np.all(dist.min(-1) < 1e-5)  # each point lies on one of the trajectories at its own time
    assert len(np.unique(dist.argmin(-1))) == n
