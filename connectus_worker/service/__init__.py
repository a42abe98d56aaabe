"""The HTTP service: intake, Connectus webhooks, metrics and health (``connectus serve``)."""

from connectus_worker.service.app import build_app

__all__ = ["build_app"]
