"""The sweep prints the key outcomes of every point before its sensitivity table."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console

from sim.cli.experiment import point_table
from sim.experiments import sweep


def test_point_table_shows_each_points_parameters_and_mean_outcomes():
    design = sweep.grid(["scoring.cutoff=22,26"])
    results = pd.DataFrame({
        "point": [0, 0, 1, 1], "replication": [0, 1, 0, 1],
        "invited_share_final": [0.40, 0.42, 0.30, 0.32],
        "quarters_to_target": [4.0, 6.0, math.inf, math.inf],
        "default_rate_12m": [0.010, 0.012, 0.008, 0.008],
    })
    console = Console(width=200, record=True)
    console.print(point_table(results, design))
    text = console.export_text()
    assert "mean over 2 replications" in text
    rows = [line for line in text.splitlines() if line.strip().startswith("│")]
    assert "22" in rows[0] and "41.0%" in rows[0] and "5.0" in rows[0] and "1.10%" in rows[0]
    assert "26" in rows[1] and "31.0%" in rows[1] and "never" in rows[1]
