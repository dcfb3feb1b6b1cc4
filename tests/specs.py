"""The reference specs and recorded transcripts in ``../shared/specs`` beside the checkout.

A developer without them gets a skip that says so; in CI (``CI=true`` in the
environment, as ``.ci/run`` sets it) a missing file fails the test, so a run
that silently checked nothing cannot pass.
"""

import os

import pytest


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_spec(message):
    """Skip the test for a missing spec file, or fail it when running in CI."""
    if in_ci():
        pytest.fail("%s (CI=true: the specs must be there)" % message, pytrace=False)
    pytest.skip(message)
