"""Settings for every entry point; see :mod:`config.settings`."""

from connectus_worker.config.checks import ConfigError
from connectus_worker.config.settings import Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
