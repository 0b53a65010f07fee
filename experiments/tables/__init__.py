"""Paper 003's tables as cells, one module per table; importing a module registers its table in
`experiments.framework.TABLES`:

- `table2`: every loss of Table 1 against the baselines PIS/DIS and SMC;
- `table3`: `log_ce` with Adam only against Adam pretraining + Gauss–Newton (and + L-BFGS);
- `table4`: `log_ce` with uniform against uniform + trajectory collocation.

`training` holds what their loss cells share: train or resume a run, score it, draw its figures.
"""

PROBLEMS = ("gmm", "many_well_5", "many_well_50")
"""The paper's three benchmark problems (Tables 2 and 4)."""

LOG_CE_METRICS = ("loss", "delta_log_z", "sinkhorn", "1-ess", "delta_std", "seconds_per_it")
"""The columns of Tables 3 and 4 (`log_ce` runs compared by optimiser or collocation)."""
