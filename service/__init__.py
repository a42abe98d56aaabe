"""The HTTP service: intake, Connectus webhooks, metrics and health (``connectus serve``)."""

from service.app import build_app

__all__ = ["build_app"]
