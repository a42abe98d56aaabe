"""Campaigns: one message template sent to many recipients (issue #5).

The input side turns a file or a list into recipients, in three steps:

- :mod:`campaign.source` reads rows (CSV, JSON Lines, or any iterable of
  mappings), streaming;
- :mod:`campaign.checker` checks each row against the campaign's kind and
  :mod:`campaign.template`, normalises and deduplicates recipients
  (numbers through the fast path in :mod:`campaign.numbers`), and reports
  invalid rows and duplicates;
- the checked recipients are then stored as the campaign, from which sends are
  made.

The modules are imported where they are used: this package imports nothing.
"""
