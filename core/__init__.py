"""Shared models, validation, job records and the broker factory (used by producers and workers)."""
