"""The collection as someone who installed it from Galaxy has it: the built tarball, no checkout.

The tarball is built and installed into an empty collections path, and the
playbooks run by their names (``ansible-playbook homelab.pangolin_authentik.site``)
from a directory that is not the checkout, against both simulators.
"""

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.playbook_env import REPO, PlaybookEnv


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("galaxy")
    galaxy = str(Path(sys.executable).with_name("ansible-galaxy"))
    subprocess.run([galaxy, "collection", "build", "--output-path", str(root), str(REPO)], check=True,
                   capture_output=True, text=True)
    [tarball] = root.glob("homelab-pangolin_authentik-*.tar.gz")
    names = tarfile.open(tarball).getnames()
    assert "playbooks/site.yml" in names and "meta/execution-environment.yml" in names
    assert not [n for n in names if n.startswith(("scripts/", ".ci/", ".venv", "tests/.collections"))]
    collections = root / "collections"
    # --force: the checkout is installed (linked) on the default path; this must be a copy from the tarball
    subprocess.run([galaxy, "collection", "install", "--force", "-p", str(collections), str(tarball)], check=True,
                   capture_output=True, text=True)
    assert (collections / "ansible_collections/homelab/pangolin_authentik/playbooks/site.yml").is_file()
    return collections


def test_site_doctor_and_expire_run_as_collection_content(installed):
    with PlaybookEnv(users=2) as env:
        for playbook, check in (("site.yml", True), ("site.yml", False), ("doctor.yml", False),
                                ("expire.yml", False)):
            rc, parsed, out, err = env.run(playbook=playbook, check=check, collections=installed)
            assert rc == 0, (playbook, out[-3000:], err[-2000:])
        assert env.pangolin.writes()  # the real site run wrote the whitelist
        env.login("user000", "203.0.113.30")
        assert env.addresses_of("user000") == ["203.0.113.30"]
        rc, parsed, out, err = env.run(collections=installed)
        assert rc == 0 and env.stats(parsed)["changed"] == 0
