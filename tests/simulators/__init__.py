"""Stateful stand-ins for the authentik and Pangolin APIs used by the test suite."""
