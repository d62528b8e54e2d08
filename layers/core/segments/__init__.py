"""Segments core: models, use cases, storage and the two wire formats."""
