"""many_well_50 with log_ce (issue 5's hardest goal): train (or resume) a run from a config, evaluate it on ODE
samples, optionally fine-tune it with Gauss–Newton and evaluate again; one CSV row per evaluation.

    python -m experiments.mw50 --run runs/mw50/committed [--config experiments/configs/mw50_log_ce.yaml]
        [--n-eval 10000] [--gn [--gn-set gn.steps=20 ...]]

The modes of many_well_50 are the 2^m sign patterns of its m double-well coordinates (m = 5, the target's
`info["m"]`); `modes_covered` counts those hit by the samples. Rows are appended to
experiments/results/mw50_recipe_search.csv.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import jax
import numpy as np

import pinnflow as pf
import problems
from experiments.framework.search_log import append_row
from pinnflow.pinn.finetune import FINETUNE_DIR, gauss_newton
from pinnflow.pinn.train import CHECKPOINT, load_run

HERE = Path(__file__).parent
OUT = HERE / "results" / "mw50_recipe_search.csv"


def evaluate(run, n: int, seed: int) -> dict:
    t0 = time.perf_counter()
    s = pf.sample(run, jax.random.PRNGKey(seed), n)
    m, _ = pf.evaluate(run, n=n, samples=s)
    m_wells = run.target.info["m"]  # many_well(d, m, delta): the first m coordinates are double wells
    signs = np.asarray(s.x[:, :m_wells] > 0).astype(int) @ (2 ** np.arange(m_wells))
    m["modes_covered"] = len(np.unique(signs))
    m["eval_seconds"] = time.perf_counter() - t0
    return m


def row(name: str, run, m: dict, n: int, steps: int | None = None) -> dict:
    """One row in the columns of mw50_recipe_search.csv (`shift`: how log Z's offset was handled)."""
    cfg, c = run.config, run.config.collocation
    hi = np.atleast_1d(c.target_hi) if c.target_hi is not None else None
    return {"name": name, "operator": cfg.operator, "probes": cfg.hutchinson_probes, "width": cfg.network.width,
            "depth": cfg.network.depth, "batch": cfg.optim.batch_size, "lr": f"{cfg.optim.lr}->{cfg.optim.lr_final}",
            "prior_k": c.prior_k,
            "target_box": f"wells +-{hi[0]}, gauss +-{hi[-1]}" if hi is not None else "domain",
            "traj_frac": c.trajectory_fraction, "steps": run.step if steps is None else steps,
            "wall_s": round(run.train_seconds, 1), "s_per_it": round(run.seconds_per_it, 5),
            "loss": round(float(run.history[[k for k in ("loss", "val_loss_after") if k in run.history][0]]
                                .iloc[-20:].mean()), 5),
            "n_eval": n, "ess": round(m["ess"], 5), "delta_log_z": round(m["delta_log_z"], 5),
            "delta_std": round(m.get("delta_std", float("nan")), 5), "modes_covered": m["modes_covered"],
            "machine": f"{platform.machine()}, {len(jax.devices())} device(s), eval {m['eval_seconds']:.0f} s",
            "shift": f"z_init {cfg.z_init}"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run directory (trained or resumed there)")
    ap.add_argument("--config", default=str(HERE / "configs" / "mw50_log_ce.yaml"))
    ap.add_argument("--n-eval", type=int, default=10000)
    ap.add_argument("--gn", action="store_true", help="Gauss-Newton fine-tuning after training (the `gn` section "
                    "of --config) into RUN/finetune, resumed if there")
    ap.add_argument("--gn-set", nargs="*", default=[], help="overrides for the fine-tuning, e.g. gn.steps=20 or "
                    "collocation.trajectory_fraction=0 (uniform points only)")
    ap.add_argument("--skip-adam-eval", action="store_true", help="with --gn: evaluate only after fine-tuning")
    ap.add_argument("--name", default=None, help="row name (default: the run directory's name)")
    args = ap.parse_args(argv)

    run_dir = Path(args.run)
    name = args.name or run_dir.name
    target = problems.get("many_well_50")
    if (run_dir / CHECKPOINT).exists():
        run = load_run(run_dir, target=target)
        cfg = run.config
        if run.step < cfg.optim.steps:
            run = pf.train(target, cfg, run_dir=run_dir, resume=True)
    else:
        cfg = pf.Config.from_yaml(args.config)
        run = pf.train(target, cfg, run_dir=run_dir)
    if not (args.gn and args.skip_adam_eval):
        m = evaluate(run, args.n_eval, cfg.seed + 1)
        append_row(OUT, row(name, run, m, args.n_eval))
    if args.gn:
        gn_cfg = dataclasses.replace(cfg, gn=pf.Config.from_yaml(args.config).gn).override(args.gn_set)
        ft = gauss_newton(run, config=gn_cfg, run_dir=run_dir / FINETUNE_DIR, resume=True)
        m = evaluate(ft, args.n_eval, cfg.seed + 1)
        g = gn_cfg.gn
        stage = f"+GN {ft.step} steps (N={g.batch_size}, {g.solver}, eps={g.damping}, {g.precision})"
        append_row(OUT, row(f"{name} {stage}", ft, m, args.n_eval, steps=run.step))


if __name__ == "__main__":
    main()
