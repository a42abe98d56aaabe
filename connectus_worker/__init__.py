"""Connectus delivery worker: the one import name of the connectus-worker distribution.

The layout and the import rules are in docs/architecture.md."""
