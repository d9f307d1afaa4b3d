"""The model: the mechanisms of the product on arrays of users (no pandas, no files)."""
