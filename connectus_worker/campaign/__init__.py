"""Campaigns: one message template sent to many recipients (issue #5).

Input: :mod:`.source` reads rows, :mod:`.checker` checks and deduplicates them
(numbers through :mod:`.numbers`), :mod:`.store` keeps them as chunks that the
workers release. The modules are imported where they are used: this package imports nothing.
"""
