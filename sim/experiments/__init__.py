"""Experiments: many runs (replications, strategies, sweeps, calibration) over an executor."""
