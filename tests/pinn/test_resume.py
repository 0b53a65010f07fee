"""Resume semantics and timings (issue 12, items 2 and 3): a run extended on resume equals an uninterrupted
run with the same learning-rate horizon; a changed key is named before anything is built; seconds per step
exclude compilation, are stored with the run and read back by `load_run`, also after resuming a finished run."""

import time

import jax
import numpy as np
import pytest

import pinnflow as pf
import problems


def target():
    return problems.get("gaussian", mean=(1.0, -0.5), cov=((1.5, 0.4), (0.4, 0.6)), log_Z=0.7)


def config(steps, *extra):
    return pf.Config(loss="log_ce").override([
        "network.width=16", "network.depth=2", "network.num_freq=2", f"optim.steps={steps}",
        "optim.schedule_steps=300", "optim.batch_size=64", "optim.chunk=100", "optim.checkpoint_every=100",
        *extra])


def test_extending_a_run_on_resume_equals_one_uninterrupted_run(tmp_path):
    full = pf.train(target(), config(300), run_dir=tmp_path / "full", progress=False)
    pf.train(target(), config(200), run_dir=tmp_path / "ext", progress=False)
    extended = pf.train(target(), config(300), run_dir=tmp_path / "ext", resume=True, progress=False)
    assert extended.step == 300 and list(extended.history["step"]) == [100, 200, 300]
    for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(extended.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.history["loss"], extended.history["loss"])
    np.testing.assert_array_equal(full.history["lr"], extended.history["lr"])


def test_resume_names_the_changed_key_before_building(tmp_path, monkeypatch):
    pf.train(target(), config(100), run_dir=tmp_path, progress=False)
    import pinnflow.pinn.train as train_module

    def no_build(*args, **kwargs):
        raise AssertionError("built before the config was checked")

    monkeypatch.setattr(train_module, "build", no_build)
    with pytest.raises(pf.ConfigError, match=r"differs .* in network\.width, optim\.lr$"):
        pf.train(target(), config(100, "optim.lr=1e-3", "network.width=8"), run_dir=tmp_path, resume=True,
                 progress=False)


def test_seconds_per_step_exclude_compilation_and_are_stored_with_the_run(tmp_path):
    t0 = time.perf_counter()
    run = pf.train(target(), config(100), run_dir=tmp_path, progress=False)  # one chunk
    wall = time.perf_counter() - t0
    meta = pf.core.checkpoint.read(tmp_path / "checkpoint.npz")[1]
    assert meta["compile_seconds"] > 0 and run.train_seconds + meta["compile_seconds"] <= wall
    assert run.seconds_per_it == pytest.approx(run.train_seconds / 100)
    # compilation is far more than the 100 steps of this tiny network: a compile-inclusive rate would be larger
    assert meta["compile_seconds"] > run.train_seconds
    loaded = pf.load_run(tmp_path, target=target())
    assert loaded.seconds_per_it == run.seconds_per_it and loaded.train_seconds == run.train_seconds
    again = pf.train(target(), config(100), run_dir=tmp_path, resume=True, progress=False)  # already finished
    assert again.step == 100 and again.seconds_per_it == run.seconds_per_it


def test_a_run_without_a_terminal_logs_its_progress(capfd):
    pf.train(target(), config(300), progress=None)
    err = capfd.readouterr().err
    assert err.count("log_ce on gaussian: step") == 3 and "loss" in err and "lr" in err
