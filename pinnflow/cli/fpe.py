"""`pinnflow fpe`: forward Fokker–Planck problems (paper 000) by SBTM, the SDE, the noise-free dynamics or the
PINN route — `list`, `solve` (one method) and `compare` (several methods, one table)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_fpe"]

SHOWN = ("t", "entropy", "entropy_exact", "entropy_rel_error", "entropy_gap", "mean_error", "cov_error",
         "one_particle_cov_error", "score_error", "seconds")


def parse_params(pairs: list[str] | None) -> dict:
    """`--param K=V ...` into a dict; values parsed as YAML scalars (numbers, booleans)."""
    import yaml

    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def _print(table) -> None:
    import pandas as pd

    cols = [c for c in ("method",) + SHOWN if c in table and table[c].notna().any()]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(table[cols].to_string(index=False))


def _cmd_list(args) -> int:
    import problems.fokker_planck as fpe_problems
    from pinnflow.fpe import METHODS

    print("Fokker-Planck problems:", ", ".join(fpe_problems.names()))
    print("methods:")
    for name in METHODS.names():
        print(f"  {name:<11} {METHODS.factory(name).doc}")
    return 0


def _cmd_solve(args) -> int:
    from pinnflow.fpe import solve

    out = Path(args.out) if args.out else Path("runs") / f"fpe-{args.problem}-{args.method}"
    sol = solve(args.problem, args.method, args.config, list(args.set or []), problem_params=parse_params(args.param),
                out=out, resume=args.resume, progress=False if args.quiet else None, plot=not args.no_plot)
    _print(sol.table)
    print(f"{args.method} on {sol.problem.name} (d = {sol.problem.dim}) in {sol.seconds:.1f} s; written to {out}")
    return 0


def _cmd_compare(args) -> int:
    from pinnflow.fpe import compare

    methods: dict[str, list[str]] = {m: [] for m in args.methods}
    for item in args.set or []:
        head, _, rest = item.partition(":")
        if not rest or head not in methods:
            raise ValueError(f"--set expects METHOD:KEY=VALUE with METHOD one of {', '.join(methods)}, got {item!r}")
        methods[head].append(rest)
    out = Path(args.out) if args.out else Path("runs") / f"fpe-{args.problem}-compare"
    table, _ = compare(args.problem, methods, problem_params=parse_params(args.param), out=out,
                       progress=False if args.quiet else None, plot=not args.no_plot)
    _print(table)
    print(f"written to {out}")
    return 0


def add_fpe(sub) -> None:
    """Add `fpe` with its own subcommands to an argparse subparsers object."""
    f = sub.add_parser("fpe", help="forward Fokker-Planck problems: SBTM, SDE, noise-free, PINN (paper 000)")
    fs = f.add_subparsers(dest="fpe_command", required=True)
    fs.add_parser("list", help="registered Fokker-Planck problems and methods").set_defaults(fn=_cmd_list)

    def common(p) -> None:
        p.add_argument("--problem", required=True, help="a registered Fokker-Planck problem (pinnflow fpe list)")
        p.add_argument("--param", nargs="*", metavar="KEY=VALUE", help="problem parameters, e.g. N=5 var0=0.0625")
        p.add_argument("--out", help="output directory (default runs/fpe-<problem>-<method>)")
        p.add_argument("--no-plot", action="store_true", help="no figures")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    s = fs.add_parser("solve", help="solve one problem by one method; writes table.csv and figures")
    common(s)
    s.add_argument("--method", default="sbtm", help="sbtm (default), sde, noise_free, pinn (pinnflow fpe list)")
    s.add_argument("--config", help="YAML config of the method")
    s.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. time.dt=0.01")
    s.add_argument("--resume", action="store_true", help="continue the run in --out (sbtm, pinn)")
    s.set_defaults(fn=_cmd_solve)

    c = fs.add_parser("compare", help="solve one problem by several methods; one table and joint figures")
    common(c)
    c.add_argument("--methods", nargs="+", default=["sbtm", "sde", "noise_free"], help="methods to run")
    c.add_argument("--set", nargs="*", metavar="METHOD:KEY=VALUE", help="per-method overrides, e.g. sde:dt=0.01")
    c.set_defaults(fn=_cmd_compare)
