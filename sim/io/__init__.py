"""Input and output: run folders written atomically, reproduction checks, the report, cost."""
