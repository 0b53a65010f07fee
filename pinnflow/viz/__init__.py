"""Figures of trained runs (headless, backend untouched): samples over the target's contours with the first
marginal, ODE trajectories, and the learned density path beside a histogram of the model's samples."""

from pinnflow.viz.figures import plot_density_path, plot_samples, plot_trajectories

__all__ = ["plot_samples", "plot_trajectories", "plot_density_path"]
