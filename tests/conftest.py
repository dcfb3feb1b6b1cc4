"""Test setup: make the repository importable as the collection it is.

The collection's code imports itself as
``ansible_collections.homelab.pangolin_authentik``; a symlinked collections
tree under ``tests/.collections`` gives it that name without installing.
"""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "tests" / ".collections"
LINK = COLLECTIONS / "ansible_collections" / "homelab" / "pangolin_authentik"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    try:
        LINK.symlink_to(REPO, target_is_directory=True)
    except FileExistsError:  # another xdist worker made it
        pass

for path in (str(REPO), str(COLLECTIONS)):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS))


@pytest.fixture(scope="module")
def pangolin_server():
    """One Pangolin simulator for a test module; each test's ``env`` resets it."""
    from tests.simulators.pangolin import PangolinSimulator
    sim = PangolinSimulator()
    sim.start()
    yield sim
    sim.stop()
