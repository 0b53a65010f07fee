"""`pinnflow sample-sbtm`: sample a target with the deterministic SBTM sampler (paper 001), beside ULA / annealed
ULA with the same particles, step and annealing path; writes the particles, the histories, a summary table and
figures (`pinnflow.sampling.run`)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_sampling"]

SHOWN = ("method", "n", "t", "seconds", "mean", "var", "p_negative", "mode_error", "sinkhorn", "delta_std",
         "l2_target", "kl", "fisher", "weights")


def _cmd_sample_sbtm(args) -> int:
    import pandas as pd

    import problems
    from pinnflow.cli.fpe import parse_params
    from pinnflow.sampling import run
    from pinnflow.sbtm.sampler import SamplerConfig

    target = problems.resolve(args.problem, args.target, parse_params(args.param))
    cfg = SamplerConfig.from_yaml(args.config) if args.config else SamplerConfig()
    overrides = list(args.set or []) + ([f"anneal.kind={args.anneal}"] if args.anneal else [])
    cfg = cfg.override(overrides) if overrides else cfg
    methods = ["sbtm"] + list(args.baselines)
    name = args.problem or Path(args.target.rpartition(":")[0]).stem
    out = Path(args.out) if args.out else Path("runs") / f"sbtm-sampler-{name}"
    table, runs = run(target, cfg, methods, out=out, resume=args.resume, progress=False if args.quiet else None,
                      plot=not args.no_plot)
    cols = [c for c in SHOWN if c in table]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(table[cols].to_string(index=False))
    res = runs["sbtm"].raw  # the SamplerResult
    stop = "Fisher criterion met" if res.converged else "time limit"
    print(f"sbtm stopped at t = {res.t:g} ({stop}); written to {out}")
    return 0


def add_sampling(sub) -> None:
    """Add `sample-sbtm` to an argparse subparsers object."""
    s = sub.add_parser("sample-sbtm", help="sample a target with the deterministic SBTM sampler (paper 001) "
                       "beside ULA")
    s.add_argument("--problem", help="a registered target (pinnflow list)")
    s.add_argument("--target", help="your own target instead: path/to/file.py:name or package.module:name")
    s.add_argument("--param", nargs="*", metavar="KEY=VALUE", help="target parameters")
    s.add_argument("--config", help="YAML config (pinnflow.sbtm.sampler.SamplerConfig)")
    s.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. n_particles=2000 time.dt=0.01 time.T=10 fisher_tol=1e-3")
    s.add_argument("--anneal", help="annealing path: none, geometric, dilation, tempered_dilation (sets anneal.kind)")
    s.add_argument("--baselines", nargs="*", default=["ula"], help="baselines with the same particles and step "
                   "(default: ula; none: no baseline)")
    s.add_argument("--out", help="output directory (default runs/sbtm-sampler-<problem>)")
    s.add_argument("--resume", action="store_true", help="continue the SBTM run in --out")
    s.add_argument("--no-plot", action="store_true", help="no figures")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=_cmd_sample_sbtm)
