"""Settings for every entry point; see :mod:`config.settings`."""

from connectus_worker.config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
