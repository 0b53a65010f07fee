"""Start-up (issue 12, item 6): `import pinnflow` and the `pinnflow` command's help load no heavy dependency;
every public name of `pinnflow` still resolves (on first access); ott-jax loads only for a Sinkhorn cost.
Times are measured by `experiments/bench_startup_eval.py`, not here."""

import subprocess
import sys

HEAVY = ("jax", "flax", "optax", "ott", "pandas", "matplotlib", "scipy", "jaxopt", "blackjax", "ot")


def _loaded_after(code: str) -> list[str]:
    """The heavy top-level packages in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])


def test_import_and_help_load_no_heavy_dependency():
    assert _loaded_after("import pinnflow") == []
    assert _loaded_after("import pinnflow.cli") == []
    help_code = ("from pinnflow.cli import main\n"
                 "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0")
    assert _loaded_after(help_code) == []


def test_ott_is_imported_only_for_a_sinkhorn_cost():
    assert "ott" not in _loaded_after("import pinnflow as pf; pf.evaluate; pf.train; pf.metrics.SINKHORN_COSTS")
    code = ("import numpy as np, pinnflow as pf\n"
            "r = pf.metrics.sinkhorn(np.zeros((3, 2)), np.ones((3, 2)), epsilon=0.1)\n"
            "assert r['sinkhorn_converged'] and abs(r['sinkhorn'] - 2 ** 0.5) < 1e-2")
    assert "ott" in _loaded_after(code)


def test_every_public_name_resolves():
    import pinnflow as pf

    for name in pf.__all__:
        assert getattr(pf, name) is not None, name
        assert name in dir(pf)
    from pinnflow import Config, residuals, train

    assert train is pf.train and Config is pf.Config and residuals is pf.pde.residuals
    assert pf.models is pf.parametrisations and pf.integrators is pf.dynamics.integrators
    assert callable(pf.losses.register) and pf.Config(loss="log_ce").loss == "log_ce"
    assert pf.metrics.SINKHORN_COSTS.names() == ["euclidean", "sqeuclidean"]
    try:
        pf.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("unknown attributes must raise AttributeError")
