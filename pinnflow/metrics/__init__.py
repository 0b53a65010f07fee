"""Sample-quality metrics (paper 003, App. B.3), each documented with its definition beside the number.

- `weights`: ESS (eq. 68), log Z lower bound and importance-sampling estimate, ΔlogZ, log-mean-exp;
- `moments`: Δstd (eq. 67), mode fractions; `sinkhorn`: the entropic OT cost (ott-jax);
- `solutions`: errors of a Fokker–Planck solution against the exact one (score, moments, one-particle
  marginal), imported from `pinnflow.metrics.solutions`;
- `evaluate`: `evaluate_samples`, all of them for any sampler's output, and `METRIC_DEFINITIONS`;
- `histogram`: samples binned on a grid and the exact W2² between histograms (paper 002, POT's `ot.emd2`,
  imported only when a W2² is computed).
"""

from pinnflow.metrics.evaluate import METRIC_DEFINITIONS, MIN_ESS_SAMPLES, evaluate_samples
from pinnflow.metrics.histogram import HistogramGrid, histogram, noise_floor, w2_squared, w2_squared_samples
from pinnflow.metrics.kde import kde, log_kde
from pinnflow.metrics.moments import delta_std, mode_fractions
from pinnflow.metrics.sinkhorn import SINKHORN_COSTS, sinkhorn
from pinnflow.metrics.weights import delta_log_z, ess, log_mean_exp, log_z_importance, log_z_lower_bound

__all__ = ["ess", "log_mean_exp", "log_z_lower_bound", "log_z_importance", "delta_log_z", "delta_std",
           "mode_fractions", "sinkhorn", "SINKHORN_COSTS", "evaluate_samples", "METRIC_DEFINITIONS",
           "MIN_ESS_SAMPLES", "kde", "log_kde", "HistogramGrid", "histogram", "w2_squared", "w2_squared_samples",
           "noise_floor"]
