"""Helpers shared by the test suites (Redis servers, key namespaces)."""
