"""The command line on a user's own target and on resume (issue 12, items 2, 4, 5): `--target file.py:name`
trains, evaluates (with figures), samples and fine-tunes; `--resume --set optim.steps=...` extends a run."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from pinnflow.cli import main

SMALL = ["network.width=8", "network.depth=1", "network.num_freq=1", "optim.steps=200", "optim.chunk=100",
         "optim.checkpoint_every=100", "optim.batch_size=32", "sampler.steps=8", "sampler.n_eval=256",
         "sampler.sinkhorn_n=64"]

TARGETS = textwrap.dedent('''
    import jax.numpy as jnp
    import pinnflow as pf

    def log_banana(x):
        return -0.5 * x[0] ** 2 / 4 - 0.5 * (x[1] - 0.25 * x[0] ** 2) ** 2

    banana = pf.Target(name="banana", dim=2, log_density=log_banana, domain=([-7, -4], [7, 10]),
                       log_Z=float(jnp.log(4 * jnp.pi)))

    def tilted(scale=1.0):
        return pf.Target(name="tilted", dim=2, log_density=lambda x: -0.5 * (x @ x) / scale ** 2,
                         domain=([-5, -5], [5, 5]))
''')


def test_own_target_trains_evaluates_samples_and_finetunes_from_the_cli(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_targets.py").write_text(TARGETS)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs" / "banana"
    assert main(["train", "--target", "my_targets.py:banana", "--loss", "log_ce", "--out", str(out), "--quiet",
                 "--set", *SMALL]) == 0
    assert f"target: {tmp_path / 'my_targets.py'}:banana" in (out / "config.yaml").read_text()
    monkeypatch.chdir("/")  # the stored reference is absolute: it works from anywhere
    assert main(["evaluate", str(out), "--plot"]) == 0
    printed = capsys.readouterr().out
    assert "written to" in printed and "delta_log_z" in printed
    assert all((out / f).stat().st_size > 0 for f in ("samples.png", "trajectories.png", "density_path.png"))
    assert main(["evaluate", str(out)]) == 0 and "replaced" in capsys.readouterr().out
    assert main(["sample", str(out), "-n", "50", "-o", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert z["x"].shape == (50, 2) and np.isfinite(z["log_w"]).all()
    assert main(["finetune", str(out), "--steps", "1", "--quiet", "--set", "gn.batch_size=64",
                 "gn.val_batch_size=64", "gn.ls_steps=2"]) == 0
    # a factory with problem_params
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--target", "my_targets.py:tilted", "--out", str(tmp_path / "t"), "--quiet", "--set",
                 *SMALL, "optim.steps=100", "problem_params.scale=2.0"]) == 0


def test_bad_target_references_are_explained(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_targets.py").write_text(TARGETS)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--target", "my_targets.py:nope", "--quiet"]) == 2
    assert "has no 'nope'; Targets there: banana" in capsys.readouterr().err
    assert main(["train", "--target", "missing.py:x", "--quiet"]) == 2
    assert "no file" in capsys.readouterr().err
    assert main(["train", "--quiet"]) == 2
    assert "name exactly one of a registered problem" in capsys.readouterr().err
    assert main(["train", "--problem", "gmm", "--target", "my_targets.py:banana", "--quiet"]) == 2
    assert "not both" in capsys.readouterr().err


def test_resume_from_the_cli_extends_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--problem", "gmm", "--loss", "log_ce", "--out", str(out), "--quiet", "--set", *SMALL,
            "optim.schedule_steps=300"]
    assert main(args) == 0
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--set", "optim.steps=300"]) == 0
    assert list(pd.read_csv(out / "history.csv")["step"]) == [100, 200, 300]
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--set", "optim.lr=1e-2"]) == 2
    assert "differs" in capsys.readouterr().err


def test_sample_sbtm_alone_from_the_cli(tmp_path, capsys):
    """`pinnflow sample-sbtm` with no baseline and no figures (the full command is the slow test below)."""
    out = tmp_path / "s"
    assert main(["sample-sbtm", "--problem", "bimodal", "--quiet", "--no-plot", "--baselines", "--out", str(out),
                 "--set", "n_particles=64", "time.dt=0.05", "time.T=0.1", "save_every=1", "inner.max_steps=2",
                 "density_grid=0", "fisher_tol=1e3"]) == 0
    assert "Fisher criterion met" in capsys.readouterr().out
    table = pd.read_csv(out / "summary.csv")
    assert list(table["method"]) == ["sbtm"] and table["t"].iloc[0] == pytest.approx(0.05)
    assert main(["sample-sbtm", "--problem", "bimodal", "--anneal", "dilation", "--quiet"]) == 2
    assert "anneal.t0" in capsys.readouterr().err
    assert main(["sample-sbtm", "--problem", "bimodal", "--baselines", "mala", "--quiet"]) == 2
    assert "available: sbtm, ula" in capsys.readouterr().err


@pytest.mark.slow
def test_sample_sbtm_from_the_cli(tmp_path, capsys):
    """`pinnflow sample-sbtm` runs SBTM and ULA from the same start particles with geometric annealing and writes
    the summary (mode masses against their exact reference), the histories, the particles and the figures."""
    out = tmp_path / "s"
    assert main(["sample-sbtm", "--problem", "bimodal", "--anneal", "geometric", "--quiet", "--out", str(out),
                 "--set", "n_particles=100", "time.dt=0.05", "time.T=0.1", "save_every=1", "inner.max_steps=2",
                 "anneal.duration=0.1", "density_grid=32"]) == 0
    text = capsys.readouterr().out
    assert "sbtm" in text and "ula" in text and "time limit" in text
    for name in ("summary.csv", "history_sbtm.csv", "history_ula.csv", "particles.npz", "config.yaml",
                 "density.png", "diagnostics.png"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "summary.csv")
    assert list(table["method"]) == ["sbtm", "ula"] and table["weights"].eq("none").all()
    for col in ("mean", "var", "p_negative", "mode_error", "sinkhorn", "l2_target"):
        assert table[col].notna().all(), col
    ref = np.array(table["mode_reference"].iloc[0].split(), float)
    np.testing.assert_allclose(ref, [0.26138, 0.73862], atol=3e-3)  # P(x < 0) of ¼N(−2,1) + ¾N(2,1)
    sbtm, ula = (pd.read_csv(out / f"history_{m}.csv") for m in ("sbtm", "ula"))
    assert sbtm["l2_target"].iloc[0] == pytest.approx(ula["l2_target"].iloc[0], rel=1e-5)  # same start particles
    with np.load(out / "particles.npz", allow_pickle=False) as z:
        assert z["sbtm"].shape == z["ula"].shape == (100, 1)
