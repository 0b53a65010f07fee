"""Figures of trained runs: samples over the target's contours, ODE trajectories, the learned density path."""

from pinnflow.viz.figures import plot_density_path, plot_samples, plot_trajectories

__all__ = ["plot_samples", "plot_trajectories", "plot_density_path"]
