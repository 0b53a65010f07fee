"""experiments.paper000: the report's goal checks and reference comparison, and (slow) a smoke run."""

import numpy as np
import pandas as pd
import pytest

from experiments import paper000


def _table():
    t = np.array([0.0, 0.5, 1.0])
    rows = []
    for method, err, c00 in (("sbtm", [0.0, 0.004, 0.02], 1.0), ("sde", [np.nan] * 3, 1.1)):
        for i, ti in enumerate(t):
            rows.append({"method": method, "t": ti, "n_particles": 10, "entropy_rel_error": err[i],
                         "score_error": 0.01, "op_mean_0": 0.0, "op_mean_1": 0.0, "op_cov_00": c00,
                         "op_cov_01": 0.0, "op_cov_11": 1.0})
    return pd.DataFrame(rows)


def test_report_marks_goals_and_compares_with_the_reference():
    spec = {"problem": "p", "check_times": [0.0, 1.0], "reference": "sde",
            "goals": {"entropy_rel_error": 0.01, "score_error": 0.02, "seconds": 10}}
    text = paper000.report(spec, _table(), {"sbtm": 12.0, "sde": 1.0}, "smoke")
    assert "max entropy_rel_error = 0.02 > 0.01: NOT met" in text
    assert "max score_error = 0.01 <= 0.02: met" in text
    assert "max seconds = 12 > 10: NOT met" in text
    # ‖diag(1, 1) − diag(1.1, 1)‖_F / ‖diag(1.1, 1)‖_F
    assert f"| sbtm | 0 | {0.1 / np.hypot(1.1, 1.0):.3g} | 0 |" in text


@pytest.mark.slow  # ~40 s
def test_harmonic_trap_smoke_run(tmp_path):
    table, text = paper000.run("harmonic_trap", "smoke", out=tmp_path, progress=False)
    assert set(table["method"]) == {"sbtm", "sde", "noise_free"}
    assert (tmp_path / "report.md").read_text() == text
    for fig in ("entropy.png", "errors.png", "moments.png", "one_particle_density.png"):
        assert (tmp_path / fig).exists()
