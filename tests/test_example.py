"""The notebook-style example runs end to end (small: a few thousand users, two reps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_planning_example_runs(tmp_path):
    env = {**os.environ, "GREYSIM_EXAMPLE_USERS": "3000", "GREYSIM_EXAMPLE_REPS": "2",
           "GREYSIM_EXAMPLE_QUARTERS": "4", "GREYSIM_EXAMPLE_OUT": str(tmp_path),
           "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "planning.py")], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "tier-first" in res.stdout and "quarters_to_target" in res.stdout
    for name in ("coverage", "speed_risk"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_planning_example_is_jupytext_percent():
    text = (ROOT / "examples" / "planning.py").read_text()
    assert "format_name: percent" in text and text.count("# %%") >= 8
