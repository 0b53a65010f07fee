"""Forward Fokker–Planck problems solved several ways, one table (paper 000 §3; paper 003's residuals):
`solve(problem, method)` with a method from `METHODS` (sbtm, sde, noise_free, pinn), `compare(problem,
{method: overrides})` for one table over methods; the columns are `COLUMNS` (see `pinnflow.fpe.methods`).
The command line is `pinnflow fpe solve|compare|list`."""

from pinnflow.fpe.methods import COLUMNS, METHODS, Method, MethodResult, SDEConfig
from pinnflow.fpe.solve import Solution, compare, make_config, resolve_problem, solve

__all__ = ["COLUMNS", "METHODS", "Method", "MethodResult", "SDEConfig", "Solution", "solve", "compare",
           "make_config", "resolve_problem"]
