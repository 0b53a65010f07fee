"""Recipes per loss and problem (issue 17): train a config (plus overrides), evaluate it on ODE samples, append one
row to experiments/results/recipe_search.csv. Every searched setting is a row; the recipe configs in
experiments/configs/recipes/ name the rows they come from.

    python -m experiments.recipes --config experiments/configs/recipes/gmm_log_fp.yaml [--set k=v ...]
        [--seeds 0 1 2] [--name NAME] [--n-eval 20000] [--runs runs/recipes]

Pin the process to one core for the timings (`taskset -c 0 python -m experiments.recipes ...`). A run directory
that already holds a finished run is evaluated again, not retrained. `modes` counts the target's modes that hold
at least a quarter of their exact share of the samples (GMM: nearest mean; many-well: sign pattern of the double
wells); `mode_min`/`mode_max` are the smallest and largest shares.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import jax
import numpy as np

import pinnflow as pf
import problems
from experiments.framework.search_log import append_row
from pinnflow.pinn.train import CHECKPOINT, load_run

HERE = Path(__file__).parent
OUT = HERE / "results" / "recipe_search.csv"
FIELDS = ["name", "problem", "loss", "seed", "config", "overrides", "steps", "train_s", "s_per_it", "loss_value",
          "n_eval", "ess", "delta_log_z", "delta_std", "sinkhorn", "finite_fraction", "modes", "n_modes",
          "mode_min", "mode_max", "eval_s", "machine"]


def mode_labels(target, x: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Mode index of each sample and the number of modes, where the target says where its modes are."""
    info = target.info or {}
    if "means" in info:
        means = np.asarray(info["means"])
        return np.argmin(((x[:, None, :] - means[None]) ** 2).sum(-1), axis=1), len(means)
    if "m" in info and "n_modes" in info:
        m = int(info["m"])
        return (x[:, :m] > 0).astype(int) @ (2 ** np.arange(m)), int(info["n_modes"])
    return None


def mode_shares(target, x: np.ndarray) -> dict:
    lab = mode_labels(target, x)
    if lab is None:
        return {}
    labels, k = lab
    share = np.bincount(labels, minlength=k) / max(len(labels), 1)
    return {"modes": int(np.sum(share >= 0.25 / k)), "n_modes": k, "mode_min": round(float(share.min()), 4),
            "mode_max": round(float(share.max()), 4)}


def evaluate(run, n: int) -> dict:
    t0 = time.perf_counter()
    s = pf.sample(run, jax.random.PRNGKey(run.config.seed + 1), n)
    m, _ = pf.evaluate(run, n=n, samples=s)
    x = np.asarray(s.x)
    m.update(mode_shares(run.target, x[np.all(np.isfinite(x), axis=1)]))
    m["eval_s"] = time.perf_counter() - t0
    return m


def row(name: str, config_path: str, overrides: list[str], run, m: dict, n: int) -> dict:
    hist = run.history
    col = [k for k in ("loss", "val_loss_after") if k in hist][0]
    r = {"name": name, "problem": run.target.name, "loss": run.loss.name, "seed": run.config.seed,
         "config": config_path, "overrides": " ".join(overrides), "steps": run.step,
         "train_s": round(run.train_seconds, 1), "s_per_it": round(run.seconds_per_it, 5),
         "loss_value": round(float(np.median(hist[col].iloc[-10:])), 5), "n_eval": n,
         "machine": f"{platform.machine()}, {len(jax.devices())} device(s)"}
    for k in ("ess", "delta_log_z", "delta_std", "sinkhorn", "finite_fraction", "modes", "n_modes", "mode_min",
              "mode_max", "eval_s"):
        v = m.get(k, float("nan"))
        r[k] = round(float(v), 6) if isinstance(v, float) else v
    return r


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML config (problem and loss included)")
    ap.add_argument("--set", nargs="*", default=[], help="overrides, e.g. optim.steps=20000 drift_offset=langevin")
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="seeds (default: the config's)")
    ap.add_argument("--name", default=None, help="row name (default: the config's stem + overrides)")
    ap.add_argument("--n-eval", type=int, default=20000)
    ap.add_argument("--runs", default="runs/recipes", help="parent of the run directories")
    ap.add_argument("--out", default=str(OUT), help="CSV the rows are appended to")
    args = ap.parse_args(argv)

    base = pf.Config.from_yaml(args.config).override(args.set)
    stem = Path(args.config).stem
    name = args.name or (stem + ("" if not args.set else " " + " ".join(args.set)))
    for seed in args.seeds if args.seeds is not None else [base.seed]:
        cfg = base.override([f"seed={seed}"])
        target = problems.get(cfg.problem, **cfg.problem_params)
        tag = name.replace(" ", "_").replace("/", "-").replace("=", "")
        run_dir = Path(args.runs) / f"{tag}-seed{seed}"
        if (run_dir / CHECKPOINT).exists():
            run = load_run(run_dir, target=target)
            if run.step < cfg.optim.steps:
                run = pf.train(target, cfg, run_dir=run_dir, resume=True)
        else:
            run = pf.train(target, cfg, run_dir=run_dir)
        m = evaluate(run, args.n_eval)
        append_row(args.out, row(name, args.config, args.set, run, m, args.n_eval), FIELDS)


if __name__ == "__main__":
    main()
