"""experiments.paper004: every budget's runs give valid configs and problems, the 1-D W1 is exact, and the
smoke budgets run end to end (WGF runs, CSVs, figures, report)."""

import numpy as np
import pytest

import problems.fokker_planck as F
from experiments import paper004
from pinnflow.core.config import load_yaml
from pinnflow.wgf import WGFConfig


def _runs(name):
    spec = load_yaml(paper004.CONFIGS / f"{name}.yaml")
    for budget, b in spec["budgets"].items():
        runs = b.get("runs", {"run": b["run"]} if "run" in b else b)
        for run in runs.values():
            yield budget, run


@pytest.mark.parametrize("name", ["moments", "styblinski", "rosenbrock"])
def test_budgets_give_valid_configs_and_problems(name):
    for _, run in _runs(name):
        WGFConfig().override(list(run.get("overrides") or [])).validate()
        assert run["problem"] in F.FPE  # built (and checked) by the end-to-end smoke run and tests/wgf


def test_wasserstein1_1d_is_exact():
    a, b = np.array([0.0, 1.0, 3.0]), np.array([1.0, 2.0, 2.0])
    # sorted pairing: |0-1| + |1-2| + |3-2| = 3, over 3 points
    assert paper004.wasserstein1_1d(a, b) == pytest.approx(1.0)
    assert paper004.wasserstein1_1d(a, a + 0.5) == pytest.approx(0.5)


@pytest.mark.slow
def test_smoke_budgets_run_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr(paper004, "RESULTS", tmp_path)
    table = paper004.run_moments("smoke", progress=False)
    assert set(table["run"]) == {"iso", "aniso_flat"} and np.all(np.isfinite(table["mean_abs_error"]))
    marg = paper004.run_styblinski("smoke", progress=False)
    assert len(marg) == 1 and marg["w1"].iloc[0] > 0
    for f in ("moments_smoke/summary.csv", "moments_smoke/errors_and_free_energy.png", "moments_smoke/mean_paths.png",
              "styblinski_smoke/marginals.csv", "styblinski_smoke/marginals.png"):
        assert (tmp_path / f).stat().st_size > 0
    text = paper004.write_report("smoke")
    assert "aniso_flat" in text and "Styblinski" in text and (tmp_path / "report_smoke.md").exists()
