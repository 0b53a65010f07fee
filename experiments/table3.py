"""Reproduce Table 3 of paper 003: Adam only vs Adam + Gauss–Newton for `log_ce` — a thin wrapper.

    python -m experiments.table3 [--budget smoke|cpu|paper] [--problems gmm many_well_5] [--out runs/reproduce]
                                 [--set KEY=VALUE ...] [--seeds K]

Table 3 is the `table3` entry of `experiments.reproduce.TABLES`; this runs
`python -m experiments.reproduce table3 ...` (restartable cells, mean ± std over seeds, the paper's rows
beside ours) and writes experiments/results/table3_<budget>.csv and .md. Per problem: Adam pretraining
(`adam_pretrain`), then Gauss–Newton (`adam_gn`); Adam + L-BFGS (`adam_lbfgs`) continues the same
pretraining; Adam-only (`adam`) is a separate run. With the cpu budget (`match_wall_clock`) Adam-only and
L-BFGS get the wall-clock of Adam + Gauss–Newton; with the paper budget Adam-only runs 200k steps against
100k + 500 Gauss–Newton steps. The loss column is evaluated on a fixed fresh batch of uniform points.
"""

from __future__ import annotations

import argparse

from experiments import reproduce


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", default="cpu", help="smoke, cpu, paper or a budget YAML")
    ap.add_argument("--problems", nargs="*", default=None, help="default: gmm many_well_5")
    ap.add_argument("--out", default=str(reproduce.RUNS), help="run directories")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    ap.add_argument("--seeds", type=int, default=None)
    args = ap.parse_args(argv)
    forwarded = ["table3", "--budget", args.budget, "--runs", args.out]
    if args.problems:
        forwarded += ["--problems", *args.problems]
    if args.set:
        forwarded += ["--set", *args.set]
    if args.seeds is not None:
        forwarded += ["--seeds", str(args.seeds)]
    return reproduce.main(forwarded)


if __name__ == "__main__":
    main()
