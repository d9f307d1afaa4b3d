"""Analysis: statistics, metric definitions and charts computed from tables."""
