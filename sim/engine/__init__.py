"""The engine: one SimPy calendar that steps the model, and the recorder of its tables."""
