"""The job ledger in Redis: job records, claims, results, dead letters, delivery status.

The Lua scripts that change it live in ``lua/``."""
