"""Training data: text ids and batch samplers."""
