"""Sampling an unnormalised density with the deterministic SBTM sampler (paper 001) beside its baselines:
`run(target, SamplerConfig, methods=("sbtm", "ula"))` -> (summary table, runs), `METHODS`, `summarize`."""

from pinnflow.sampling.run import METHODS, SUMMARY_DEFINITIONS, MethodRun, mode_reference, run, summarize

__all__ = ["METHODS", "MethodRun", "run", "summarize", "SUMMARY_DEFINITIONS", "mode_reference"]
