"""Helpers shared by the integration tests (tests/*.py): import them from here, never from a test module."""
