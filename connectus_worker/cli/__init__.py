"""The ``connectus`` command line."""
