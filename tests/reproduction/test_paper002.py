"""experiments.paper002 / the paper002 table: reference rows, budgets, the pattern verdicts, and the cell's
config (w_R from the method, budget params and --set applied, floors read)."""

import pandas as pd
import pytest

from experiments.framework.budget import Budget
from experiments.framework.cells import TABLES, Cell, Context
from experiments.paper002 import pattern
from experiments.tables.paper002 import METHODS, METRICS, PROBLEMS, config_of


def test_reference_has_every_cell_of_tables_1_to_3():
    ref = pd.read_csv("experiments/reference/paper002.csv")
    assert len(ref) == len(PROBLEMS) * len(METHODS) * len(METRICS)
    t1 = ref[(ref.metric == "w2_ode_sde") & (ref.problem == "checkerboard")].set_index("ours").value
    assert t1["w0"] == 0.027196 and t1["w10"] == 0.002104
    assert TABLES.get("paper002").metrics == METRICS


@pytest.mark.parametrize("budget", ["smoke", "cpu", "paper"])
def test_budgets_give_valid_configs(budget, tmp_path):
    b = Budget.load(budget)
    assert b.seeds_for("paper002") >= (1 if budget == "smoke" else 3)
    ctx = Context(b, tmp_path, tmp_path, ["optim.lr=2e-3"])
    cfg, floors = config_of(Cell("paper002", "circles", "w0.1", 2), ctx)
    assert cfg.loss.w_R == 0.1 and cfg.seed == 2 and cfg.data.name == "circles" and cfg.optim.lr == 2e-3
    assert "data" in floors


def test_pattern_verdicts():
    rows = []
    for p in PROBLEMS:
        for i, m in enumerate(METHODS):
            for s in range(3):
                rows.append({"problem": p, "method": m, "seed": s, "floor_data": 1e-4,
                             "w2_ode_sde": 0.01 / (i + 1) + 1e-5 * s,  # falls with w_R
                             "w2_sde_data": 0.002 * (i + 1) + 1e-5 * s,  # rises with w_R
                             "w2_ode_data": [0.01, 0.005, 0.006, 0.02][i] + 1e-5 * s})
    df = pd.DataFrame(rows)
    v = pattern(df)
    assert set(v.verdict) == {"holds"} and len(v) == 9
    df2 = df.copy()
    df2.loc[(df2.problem == "circles") & (df2.method == "w0"), "w2_ode_data"] = 0.00505  # w0.1 by a hair
    assert pattern(df2).set_index(["data", "claim"]).verdict[
        "circles", "ODE quality best at moderate w_R (0.1 or 1)"] == "holds on the means, not resolved"
    df.loc[(df.problem == "circles") & (df.method == "w10"), "w2_ode_sde"] = 0.05  # the gap grows at w_R = 10
    df.loc[(df.problem == "checkerboard") & (df.method == "w1"), "w2_ode_sde"] = 0.00505  # up, within the noise
    df.loc[(df.problem == "mixture") & (df.method == "w0"), "w2_ode_data"] = 0.001  # ODE best without R
    v = pattern(df).set_index(["data", "claim"]).verdict
    assert v["circles", "ODE-SDE gap falls as w_R grows"] == "fails"
    assert v["mixture", "ODE quality best at moderate w_R (0.1 or 1)"] == "fails"
    assert v["checkerboard", "ODE-SDE gap falls as w_R grows"] == "holds where resolved"
