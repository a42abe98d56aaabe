"""The Connectus HTTP client. It knows nothing of Dramatiq, Redis or settings objects."""
