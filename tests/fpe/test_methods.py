"""`pinnflow.fpe`: one problem, several methods, one table; the `pinnflow fpe` command; bad input caught early."""

import numpy as np
import pytest

from pinnflow.cli import main
from pinnflow.core.config import ConfigError
from pinnflow.fpe import COLUMNS, compare, solve
from pinnflow.viz.fpe import one_particle_density

FAST = {"sbtm": ["score=exact", "time.dt=0.01", "save_every=50", "time.integrator=heun", "n_particles=200"],
        "sde": ["n_particles=4000", "dt=0.01", "save_every=50"],
        "noise_free": ["n_particles=4000", "dt=0.01", "save_every=50"]}


def test_compare_gives_one_table_and_the_noise_matters(tmp_path):
    table, sols = compare("ou", FAST, out=tmp_path, progress=False, plot=True)
    assert list(table.columns[: len(COLUMNS) + 1]) == ["method", *COLUMNS]
    assert set(table["method"]) == set(FAST)
    for name, s in sols.items():
        np.testing.assert_allclose(s.table["t"], [0.0, 0.5, 1.0])
        assert (tmp_path / name / "table.csv").exists() and (tmp_path / name / "particles.npz").exists()
    sb, sde, nf = (sols[m].table.iloc[-1] for m in ("sbtm", "sde", "noise_free"))
    assert sb["entropy_rel_error"] < 1e-3  # the exact score transports the entropy exactly (route 16)
    assert np.isnan(sde["entropy"])  # an SDE ensemble gives no density
    assert sde["cov_error"] < 0.1
    assert nf["cov_error"] > 3 * sde["cov_error"]  # without the noise the spread is wrong
    for fig in ("entropy.png", "errors.png", "one_particle_density.png"):
        assert (tmp_path / fig).stat().st_size > 0


def test_cli_solve_writes_the_table(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fpe", "solve", "--problem", "ou", "--method", "sde", "--param", "d=3", "--set",
                 "n_particles=500", "dt=0.02", "save_every=25", "--out", str(out), "--no-plot"]) == 0
    assert "mean_error" in capsys.readouterr().out
    assert (out / "table.csv").read_text().startswith("t,entropy,")


@pytest.mark.parametrize("argv, msg", [
    (["--problem", "nope", "--method", "sde"], "available: active_swimmer"),
    (["--problem", "ou", "--method", "nope"], "available: noise_free"),
    (["--problem", "ou", "--method", "sde", "--set", "dt=-1"], "config dt"),
    (["--problem", "ou", "--method", "sbtm", "--set", "time.integrator=rk9"], "config time.integrator"),
])
def test_cli_errors_name_what_is_wrong(argv, msg, capsys, tmp_path):
    assert main(["fpe", "solve", *argv, "--out", str(tmp_path)]) == 2
    assert msg in capsys.readouterr().err


def test_errors_before_any_compile():
    with pytest.raises(ConfigError, match="n_particles"):
        solve("ou", "sde", overrides=["n_particles=1"])
    with pytest.raises(KeyError, match="available"):
        compare("ou", {"sde": None, "bogus": None})


def test_exact_one_particle_density_is_normalised():
    import problems.fokker_planck as F

    g = np.linspace(-5, 5, 201)
    X, Y = np.meshgrid(g, g, indexing="ij")
    for p in (F.get("harmonic_trap", N=3), F.get("ou")):  # Gaussian mixture over particles; exp log_rho
        dens = one_particle_density(p, 1.0, np.stack([X.ravel(), Y.ravel()], 1))
        assert abs(dens.sum() * (g[1] - g[0]) ** 2 - 1.0) < 1e-3, p.name
    assert one_particle_density(F.get("active_swimmer"), 1.0, np.zeros((1, 2))) is None  # not known
