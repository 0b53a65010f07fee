"""experiments.reproduce: reference tables, budgets, restartable cells, failures, aggregation, the CLI."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

import pinnflow as pf
from experiments import reproduce
from experiments.framework import TABLES, Budget, Cell, store
from experiments.framework.aggregate import aggregate, load_reference
from experiments.tables import table2, training
from pinnflow import losses
from pinnflow.pinn.train import CHECKPOINT

TINY = {
    "seeds": 2,
    "config": {
        "network": {"width": 8, "depth": 1, "num_freq": 1, "z_width": 4},
        "optim": {"steps": 20, "batch_size": 32, "chunk": 10, "checkpoint_every": 20},
        "sampler": {"steps": 4, "n_eval": 256, "sinkhorn_n": 32},
        "methods": {"log_fp": {"optim.lr": -1.0}},  # an invalid config: this cell must fail, the table not
    },
}


def write_budget(tmp_path, data, name="tiny"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ---- reference data -----------------------------------------------------------------------------------


def test_reference_tables_hold_the_papers_log_ce_rows():
    ref = load_reference("table2")
    ode = ref[(ref["ours"] == "log_ce") & (ref["variant"] == "ODE") & (ref["method"] == "ODE")]
    got = {(r.problem, r.metric): r.value for r in ode.itertuples()}
    for problem, ess, dlz in (("gmm", 1.0, 0.0), ("many_well_5", 0.9993, 0.0), ("many_well_50", 0.9937, 0.003)):
        assert got[(problem, "ess")] == ess and got[(problem, "delta_log_z")] == dlz
    assert ode[ode["metric"] == "ess"]["printed"].tolist() == ["1.0000", "0.9993", "0.9937"]
    # 3 problems x 11 methods x 5 metrics; Table 3: 2 x 2 x 6; Table 4: 3 x 2 x 6
    assert len(ref) == 165 and len(load_reference("table3")) == 24
    assert len(load_reference("table4")) == 36
    sb = ref[(ref["ours"] == "sb") & (ref["problem"] == "many_well_50") & (ref["metric"] == "delta_log_z")]
    assert sb["value"].item() == 189.71


def test_reference_names_map_to_ours():
    for table in ("table2", "table3", "table4"):
        ref = load_reference(table)
        known = set(TABLES.get(table).methods)
        assert set(ref["ours"]) <= known, set(ref["ours"]) - known
        assert set(ref["problem"]) <= set(TABLES.get(table).problems)
        assert ref["value"].notna().all()
    t2 = load_reference("table2")
    assert set(t2["ours"]) - set(table2.BASELINES) == set(table2.LOSSES) <= set(losses.names())
    assert dict(zip(t2["ours"], t2["variant"], strict=True))["ot"] == "ODE"
    assert dict(zip(t2["ours"], t2["variant"], strict=True))["sb"] == "SDE"


# ---- budgets ------------------------------------------------------------------------------------------


def test_budget_layers_and_shipped_budgets(tmp_path):
    data = {"config": {"optim": {"steps": 10, "lr": 1e-3}, "sampler.n_eval": 100,
                       "methods": {"ot": {"optim.steps": 20}},
                       "problems": {"many_well_50": {"optim": {"steps": 30}, "methods": {"ot": {"optim.steps": 40}}}}},
            "baseline": {"steps": 5, "extra": {"chunk": 5}, "problems": {"gmm": {"steps": 6}}},
            "tables": {"table4": {"params": {"loss_n": 64}, "config": {"methods": {"uniform": {"alpha": 2.0}}}}}}
    b = Budget.load(write_budget(tmp_path, data))
    assert b.name == "tiny" and b.seeds == 1
    assert b.section("config", "table2", "gmm", "log_ce") == {"optim.steps": 10, "optim.lr": 1e-3,
                                                              "sampler.n_eval": 100}
    assert b.section("config", "table2", "gmm", "ot")["optim.steps"] == 20  # methods override
    assert b.section("config", "table2", "many_well_50", "log_ce")["optim.steps"] == 30  # problems win
    assert b.section("config", "table2", "many_well_50", "ot")["optim.steps"] == 40  # problem x method wins
    assert b.section("config", "table2", "many_well_50", "ot")["optim.lr"] == 1e-3  # deep merge, not replace
    assert b.section("baseline", "table2", "gmm", "smc") == {"steps": 6, "extra.chunk": 5}
    assert b.section("params", "table4", "gmm", "uniform") == {"loss_n": 64}
    cfg = pf.Config(loss="log_ce").override(b.overrides("table4", "gmm", "uniform"))
    assert (cfg.optim.steps, cfg.sampler.n_eval, cfg.alpha) == (10, 100, 2.0)
    with pytest.raises(KeyError, match="available: cpu, paper, recipes, smoke"):
        Budget.load("nope")
    # a recipe layer: its keys first (without problem, loss, seed), the layer's own on top
    recipe = tmp_path / "r.yaml"
    recipe.write_text("problem: gmm\nloss: sb\nseed: 7\nalpha: 0.5\noptim: {steps: 99, lr: 0.1}\n")
    data["config"]["methods"]["sb"] = {"recipe": str(recipe), "optim.steps": 50}
    b = Budget.load(write_budget(tmp_path, data))
    sec = b.section("config", "table2", "gmm", "sb")
    assert (sec["alpha"], sec["optim.lr"], sec["optim.steps"]) == (0.5, 0.1, 50)
    assert not {"problem", "loss", "seed"} & set(sec)
    data["config"]["methods"]["sb"] = {"recipe": "nope"}
    with pytest.raises(KeyError, match="unknown recipe 'nope'"):
        Budget.load(write_budget(tmp_path, data)).section("config", "table2", "gmm", "sb")
    for name in ("smoke", "cpu", "paper", "recipes"):  # every cell of every table resolves to a valid Config
        b = Budget.load(name)
        for table in TABLES.names():
            for cell in TABLES.get(table).cells(1):
                pf.Config(loss="log_ce", problem=cell.problem).override(b.overrides(table, cell.problem, cell.method))
    paper = Budget.load("paper").section("config", "table2", "gmm", "log_ce")
    assert (paper["optim.batch_size"], paper["optim.steps"], paper["sampler.n_eval"]) == (4096, 200000, 100000)
    smoke = TABLES.get("table2").cells(Budget.load("smoke").seeds)
    assert len(smoke) == 36 and {c.method for c in smoke} == set(table2.LOSSES + table2.BASELINES)


# ---- the runner ---------------------------------------------------------------------------------------


def test_runner_writes_cells_reuses_them_and_records_failures(tmp_path, monkeypatch):
    budget = write_budget(tmp_path, TINY)
    trained = []
    real_train = training.train_run
    monkeypatch.setattr(training, "train_run", lambda *a, **k: trained.append(a[2]) or real_train(*a, **k))
    kw = {"problems": ["gmm", "many_well_5"], "methods": ["log_ce", "log_fp"], "results": tmp_path / "res",
          "runs": tmp_path / "runs", "progress": False, "log": lambda s: None}
    agg = reproduce.run_table("table2", budget, **kw)
    cells_dir = tmp_path / "res" / "cells" / "table2_tiny"
    files = sorted(cells_dir.glob("*.json"))
    assert len(files) == 8 and len(trained) == 4  # 2 problems x 2 methods x 2 seeds; log_fp fails early
    rec = json.loads((cells_dir / "gmm-log_ce-seed1.json").read_text())
    assert rec["status"] == "ok" and rec["metrics"]["n"] == 256 and rec["metrics"]["steps"] == 20
    assert 0 < rec["metrics"]["ess"] <= 1 and rec["metrics"]["1-ess"] == pytest.approx(1 - rec["metrics"]["ess"])
    assert (tmp_path / "runs" / "table2_tiny" / "gmm-log_ce-seed1" / CHECKPOINT).exists()
    figs = sorted(p.name for p in (cells_dir / "figures").glob("*.png"))  # seed 0, ok loss cells only
    assert "gmm-log_ce-seed0_density_path.png" in figs and "many_well_5-log_ce-seed0_trajectories.png" in figs
    assert not any("seed1" in f or "log_fp" in f for f in figs) and "many_well_5-log_ce-seed0_density_path.png" \
        not in figs
    bad = json.loads((cells_dir / "many_well_5-log_fp-seed0.json").read_text())
    assert bad["status"] == "failed" and "optim.lr" in bad["error"] and "ConfigError" in bad["error"]

    # aggregate: mean ± std over the two seeds, the paper's value beside it, failures counted
    agg = agg.set_index(["problem", "method"])
    ess = [json.loads((cells_dir / f"gmm-log_ce-seed{s}.json").read_text())["metrics"]["ess"] for s in (0, 1)]
    row = agg.loc[("gmm", "log_ce")]
    assert row["seeds"] == 2 and row["failed"] == 0
    assert row["ess"] == pytest.approx(np.mean(ess)) and row["ess std"] == pytest.approx(np.std(ess, ddof=1))
    assert row["ess (paper)"] == 1.0 and agg.loc[("many_well_5", "log_ce"), "ess (paper)"] == 0.9993
    assert agg.loc[("gmm", "log_fp"), "failed"] == 2 and agg.loc[("gmm", "log_fp"), "seeds"] == 0
    assert math.isnan(agg.loc[("gmm", "log_fp"), "ess"])
    csv = pd.read_csv(tmp_path / "res" / "table2_tiny.csv")
    assert len(csv) == 4 and "delta_log_z (paper)" in csv
    md = (tmp_path / "res" / "table2_tiny.md").read_text()
    assert "| gmm | log_ce | ODE | 2 |" in md and " ± " in md and "2 failed: ConfigError" in md

    # a second invocation (through the CLI) reuses every finished cell: nothing is trained or rewritten
    mtimes = {f.name: f.stat().st_mtime_ns for f in files}
    from pinnflow.cli import main

    assert main(["reproduce", "table2", "--budget", str(budget), "--problems", "gmm", "many_well_5",
                 "--methods", "log_ce", "log_fp", "--results", str(tmp_path / "res"),
                 "--runs", str(tmp_path / "runs")]) == 0
    assert len(trained) == 4
    assert {f.name: f.stat().st_mtime_ns for f in sorted(cells_dir.glob("*.json"))} == mtimes

    # --retry-failed runs only the failed cells again; a changed budget invalidates the cells it changes
    reproduce.run_table("table2", budget, retry_failed=True, **kw)
    assert len(trained) == 4
    changed = [f for f in files if f.stat().st_mtime_ns != mtimes[f.name]]
    assert sorted(f.name for f in changed) == sorted(f.name for f in files if "log_fp" in f.name)
    data = json.loads(json.dumps(TINY))
    data["config"]["methods"]["log_fp"] = {"optim.lr": -2.0}
    reproduce.run_table("table2", write_budget(tmp_path, data), **{**kw, "methods": ["log_fp"]})
    assert json.loads((cells_dir / "gmm-log_fp-seed0.json").read_text())["error"].endswith("got -2.0")


def test_aggregate_mean_std_and_markdown(tmp_path):
    """Aggregation from cell records alone: only records whose inputs match the budget count."""
    budget = Budget.load(write_budget(tmp_path, {"seeds": 3}, name="fake"))
    cells_dir = tmp_path / "cells" / "table3_fake"
    values = [1e-3, 2e-3, 6e-3]
    for seed, v in enumerate(values):
        cell = Cell("table3", "gmm", "adam_gn", seed)
        spec = store.cell_spec(cell, budget, [])
        rec = {"id": cell.id, "problem": "gmm", "method": "adam_gn", "seed": seed, "status": "ok", "error": None,
               "metrics": {"loss": v, "1-ess": 10 * v, "seconds_per_it": 0.5}, "wall_seconds": 7.0,
               "spec_hash": store.spec_hash(spec)}
        store.write_json(cells_dir / f"{cell.id}.json", rec)
    stale = dict(rec, id="gmm-adam-seed0", method="adam", spec_hash="0" * 16)  # another budget's cell
    store.write_json(cells_dir / "gmm-adam-seed0.json", stale)
    assert not list(cells_dir.glob("*.tmp"))
    df = aggregate("table3", budget, tmp_path)
    assert df[["problem", "method"]].values.tolist() == [["gmm", "adam_gn"]]
    row = df.iloc[0]
    assert row["loss"] == pytest.approx(np.mean(values)) and row["loss std"] == pytest.approx(np.std(values, ddof=1))
    assert row["loss (paper)"] == 1.62e-4 and row["1-ess (paper)"] == 7.23e-6 and row["wall_seconds"] == 7.0
    md = (tmp_path / "table3_fake.md").read_text()
    assert "| gmm | adam_gn | Adam+GN | 3 | 0.003 ± 0.00265 | 1.62e-04 |" in md


@pytest.mark.slow
def test_smoke_budget_table2_on_gmm(tmp_path):
    """`table2 --budget smoke` restricted to gmm: all 12 cells (7 losses, PIS/DIS, SMC) finish."""
    df = reproduce.run_table("table2", "smoke", problems=["gmm"], results=tmp_path / "res", runs=tmp_path / "runs",
                             progress=False)
    assert len(df) == 12 and (df["failed"] == 0).all(), df[["method", "error"]]
    assert df["seconds_per_it"].notna().all() and df["sinkhorn"].notna().all()
