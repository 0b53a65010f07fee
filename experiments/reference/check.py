"""Check the transcribed reference tables against the paper's text, number by number.

    python -m experiments.reference.check [--paper ../shared/papers/003_e4b57645e9166900.txt]

Reads the rows of Tables 2, 3 and 4 in the plain-text paper (tab-separated, one method per line, numbers
in the printed column order) and compares every number with the `printed` column of
experiments/reference/table{2,3,4}.csv, in the CSV's row order. Exits non-zero on any difference.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
PAPER = HERE.parents[1].parent / "shared" / "papers" / "003_e4b57645e9166900.txt"
HEADERS = {"table2": "Problem\tMethod\tLoss", "table3": "Problem\tOptimizer", "table4": "Problem\tSampling"}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?(e-?\d+)?$")


def paper_rows(lines: list[str], header: str) -> list[list[str]]:
    """The numeric cells of each line after the table header, up to the first line without numbers."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 1:]:
        cells = [c.strip() for c in line.split("\t") if _NUMBER.match(c.strip())]
        if not cells:
            break
        rows.append(cells)
    return rows


def check(paper: Path = PAPER) -> list[str]:
    lines = paper.read_text().splitlines()
    problems = []
    for table, header in HEADERS.items():
        ref = pd.read_csv(HERE / f"{table}.csv", dtype={"printed": str})
        ours = [list(g["printed"]) for _, g in ref.groupby(["problem", "method"], sort=False)]
        theirs = paper_rows(lines, header)
        if len(ours) != len(theirs):
            problems.append(f"{table}: {len(ours)} rows in the CSV, {len(theirs)} in the paper")
        for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            if a != b:
                problems.append(f"{table} row {i + 1}: CSV {a} != paper {b}")
        for _, row in ref.iterrows():
            if float(row["printed"]) != row["value"]:
                problems.append(f"{table}: value {row['value']} != printed {row['printed']}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paper", type=Path, default=PAPER)
    args = ap.parse_args(argv)
    problems = check(args.paper)
    for p in problems:
        print(p)
    print("all numbers match the paper" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
