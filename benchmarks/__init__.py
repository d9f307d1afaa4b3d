"""greysim's benchmark: ``python -m benchmarks`` from the repository root (see README.md)."""
