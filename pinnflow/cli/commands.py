"""The PINN sampler's subcommands: list, train, evaluate, sample, finetune (paper 003)."""

from __future__ import annotations

from pathlib import Path

from pinnflow.cli.fpe import add_fpe
from pinnflow.cli.sampling import add_sampling
from pinnflow.cli.table import print_metrics

__all__ = ["add_commands"]


def _cmd_list(args) -> int:
    import problems
    from pinnflow.pinn import losses

    print("problems:", ", ".join(problems.names()))
    print("losses:  ", ", ".join(losses.names()))
    for name in losses.names():
        print(f"  {name:<14} {losses.get(name).doc.splitlines()[0] if losses.get(name).doc else ''}")
    return 0


def _cmd_train(args) -> int:
    import problems
    from pinnflow.pinn.config import Config
    from pinnflow.pinn.train import CONFIG, train

    out = Path(args.out) if args.out else None
    base = []
    if args.problem:
        base.append(f"problem={args.problem}")
    if args.target:
        base.append(f"target={problems.absolute_reference(args.target)}")
    if args.loss:
        base.append(f"loss={args.loss}")
    if args.resume and out is not None and (out / CONFIG).exists():
        # continue the saved run; --set may change what a resume allows (e.g. optim.steps to extend it)
        saved = Config.from_saved(out / CONFIG)
        config = (Config.from_yaml(args.config) if args.config else saved).override(base + list(args.set or []))
    else:
        config = (Config.from_yaml(args.config) if args.config else Config()).override(base + list(args.set or []))
    target = problems.resolve(config.problem, config.target, config.problem_params)
    if out is None:
        out = Path("runs") / f"{config.problem or target.name}-{config.loss}-seed{config.seed}"
    run = train(target, config, run_dir=out, resume=args.resume, progress=None if not args.quiet else False)
    last = run.history["loss"].iloc[-1] if len(run.history) else float("nan")
    print(f"trained {run.step} steps in {run.train_seconds:.1f} s ({run.seconds_per_it * 1e3:.2f} ms/step after "
          f"compilation); final loss {last:.4g}; run directory: {out}")
    return 0


def _cmd_evaluate(args) -> int:
    import jax

    from pinnflow.pinn.evaluate import evaluate, evaluation_keys
    from pinnflow.pinn.sampling import sample
    from pinnflow.pinn.train import load_run

    run = load_run(args.run_dir)
    key = jax.random.PRNGKey(args.seed) if args.seed is not None else None
    samples = sample(run, evaluation_keys(run, key)[0], args.n or run.config.sampler.n_eval)
    metrics, table = evaluate(run, key=key, samples=samples)
    out = Path(args.run_dir) / "metrics.csv"
    replaced = out.exists()
    table.to_csv(out, index=False)
    print(f"metrics of {args.run_dir} ({'replaced' if replaced else 'written to'} {out}):")
    print_metrics(metrics)
    if args.plot:
        from pinnflow.viz import plot_density_path, plot_samples, plot_trajectories

        d = Path(args.run_dir)
        paths = [plot_samples(run, samples, d / "samples.png"), plot_trajectories(run, d / "trajectories.png")]
        if run.target.dim >= 2:
            paths.append(plot_density_path(run, d / "density_path.png", samples=samples))
        print("figures: " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_sample(args) -> int:
    import jax
    import numpy as np

    from pinnflow.pinn.sampling import sample
    from pinnflow.pinn.train import load_run

    run = load_run(args.run_dir)
    s = sample(run, jax.random.PRNGKey(args.seed), args.n, method=args.method, steps=args.steps)
    arrays = {k: np.asarray(v) for k, v in s._asdict().items() if v is not None}
    np.savez(args.output, **arrays)
    print(f"wrote {args.n} samples ({', '.join(arrays)}) to {args.output}")
    return 0


def _cmd_finetune(args) -> int:
    from pinnflow.pinn.finetune import FINETUNE_DIR, gauss_newton
    from pinnflow.pinn.train import load_run

    run = load_run(args.run_dir)
    sets = list(args.set or [])
    for flag, key in ((args.steps, "gn.steps"), (args.damping, "gn.damping"), (args.cg_iters, "gn.cg_iters"),
                      (args.solver, "gn.solver")):
        if flag is not None:
            sets.append(f"{key}={flag}")
    config = run.config.override(sets)
    out = Path(args.out) if args.out else Path(args.run_dir) / FINETUNE_DIR
    ft = gauss_newton(run, config=config, run_dir=out, resume=args.resume, progress=None if not args.quiet else False)
    h = ft.history
    print(f"Gauss-Newton ({h['solver'].iloc[-1]}): {ft.step} steps; held-out loss {h['val_loss'].iloc[0]:.4g} -> "
          f"{h['val_loss_after'].iloc[-1]:.4g}; run directory: {out} (evaluate it with `pinnflow evaluate {out}`)")
    return 0



def add_commands(sub) -> None:
    """Add the subcommands to an argparse subparsers object (each sets `fn`)."""
    sub.add_parser("list", help="registered problems and losses").set_defaults(fn=_cmd_list)
    add_fpe(sub)
    add_sampling(sub)

    t = sub.add_parser("train", help="train a loss on a problem")
    t.add_argument("--problem", help="a registered problem (pinnflow list)")
    t.add_argument("--target", help="your own target instead: path/to/file.py:name or package.module:name "
                   "(a pinnflow.Target, or a factory of one called with problem_params; the file is executed)")
    t.add_argument("--loss", help="a registered loss (pinnflow list)")
    t.add_argument("--config", help="YAML config file")
    t.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. optim.lr=1e-3 optim.steps=500")
    t.add_argument("--out", help="run directory (default runs/<problem>-<loss>-seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(fn=_cmd_train)

    f = sub.add_parser("finetune", help="Gauss-Newton fine-tuning of a trained run (writes DIR/finetune)")
    f.add_argument("run_dir")
    f.add_argument("--steps", type=int)
    f.add_argument("--damping", type=float, help="epsilon of G + epsilon I")
    f.add_argument("--cg-iters", type=int)
    f.add_argument("--solver", help="auto or a Gauss-Newton solver (cg, sample-space)")
    f.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="other overrides, e.g. gn.batch_size=4096")
    f.add_argument("--out", help="output run directory (default DIR/finetune)")
    f.add_argument("--resume", action="store_true")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(fn=_cmd_finetune)

    e = sub.add_parser("evaluate", help="metrics of a trained run (writes metrics.csv)")
    e.add_argument("run_dir")
    e.add_argument("-n", type=int, default=None, help="number of samples (default sampler.n_eval)")
    e.add_argument("--seed", type=int, default=None)
    e.add_argument("--plot", action="store_true", help="also write samples.png, trajectories.png and "
                   "density_path.png to the run directory")
    e.set_defaults(fn=_cmd_evaluate)

    s = sub.add_parser("sample", help="draw samples of a trained run into an .npz file")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=10000)
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--method", default="ode", help="ode (with log-likelihoods) or sde")
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_cmd_sample)
