#!/usr/bin/env python3
"""One-command demo: the whole setup against local simulators of Pangolin and authentik.

1. starts a Pangolin and an authentik simulator on loopback, seeded like a
   fresh household (the Jellyfin and Jellyseerr resources, users alice and bob
   in the authentik group ``jellyfin``);
2. runs ``playbooks/site.yml`` with the example inventory (two resources, the
   group as the user list, the managed webhook key), the connection settings
   pointed at the simulators;
3. logs each user in on authentik from a distinct IP and checks that the IP is
   let into both resources by Pangolin's gatekeeper;
4. reruns the playbook: ``changed=0``, the IPs are kept;
5. runs ``playbooks/doctor.yml``, which finds every link healthy;
6. stops the simulators and ends with a success or failure line.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.playbook_env import (  # noqa: E402
    AUTHENTIK_TOKEN,
    COLLECTIONS,
    PANGOLIN_KEY,
    WEBHOOK_KEY,
    ensure_collection_link,
)
from tests.simulators.authentik import AuthentikSimulator  # noqa: E402
from tests.simulators.pangolin import PangolinSimulator  # noqa: E402

LOGINS = {"alice": "203.0.113.10", "bob": "198.51.100.20", "carol": "2001:db8:7::7"}
APPS = {"Jellyfin": "jellyfin", "Jellyseerr": "jellyseerr"}  # the example inventory's resources


def say(text):
    print("\n=== %s" % text, flush=True)


def run_site(inventory, overrides, playbook="site.yml"):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0")
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory),
               "-e", "@%s" % overrides, str(REPO / "playbooks" / playbook)]
    proc = subprocess.run(command, env=env, cwd=str(REPO), capture_output=True, text=True)
    print(proc.stdout[-6000:], end="")
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit("DEMO FAILED: %s exited with %d" % (playbook, proc.returncode))
    recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)", proc.stdout)
    return int(recap.group(2)) if recap else None


def print_rules(pangolin_url, resource_id):
    rules = requests.get("%s/v1/resource/%d/rules" % (pangolin_url, resource_id),
                         headers={"Authorization": "Bearer " + PANGOLIN_KEY}, timeout=10).json()["data"]["rules"]
    for rule in sorted(rules, key=lambda r: r["priority"]):
        print("  rule %(ruleId)s: priority %(priority)s %(action)s %(match)s %(value)s" % rule)
    return rules


def main():
    ensure_collection_link()
    pangolin, authentik = PangolinSimulator(), AuthentikSimulator()
    pangolin.start()
    authentik.start()
    try:
        say("Simulators: Pangolin at %s, authentik at %s" % (pangolin.base_url, authentik.base_url))
        pangolin.add_api_key(root=True, key=PANGOLIN_KEY)
        resources = [pangolin.add_resource("homelab", name, subdomain=sub, full_domain="%s.example.com" % sub)
                     for name, sub in APPS.items()]
        authentik.add_token(AUTHENTIK_TOKEN)  # the example inventory makes the household's users and group

        workdir = Path(tempfile.mkdtemp(prefix="demo-"))
        overrides = workdir / "simulators.yml"
        # The example inventory as a newcomer would copy it; only the connection
        # settings and secrets are pointed at the simulators.
        overrides.write_text(yaml.safe_dump({
            "jellyfin_whitelist_authentik_url": authentik.base_url, "vault_authentik_token": AUTHENTIK_TOKEN,
            "jellyfin_whitelist_pangolin_url": pangolin.base_url, "vault_pangolin_api_key": PANGOLIN_KEY,
            "ansible_python_interpreter": sys.executable,
        }))
        inventory = REPO / "inventory" / "example"

        say("Converge: ansible-playbook -i inventory/example playbooks/site.yml")
        run_site(inventory, overrides)
        for resource_id in resources:
            print_rules(pangolin.base_url, resource_id)

        for username, ip in LOGINS.items():
            say("%s logs in to authentik from %s" % (username, ip))
            answer = requests.post(authentik.base_url + "/_sim/login/", json={"username": username, "client_ip": ip},
                                   timeout=30).json()
            print("  authentik recorded a %s event and sent %d webhook(s)" % (answer["event"],
                                                                            len(answer["deliveries"])))
        say("Pangolin rules after the logins, and what its gatekeeper answers each login's IP")
        rules = {}
        for resource_id, name in zip(resources, APPS):
            rules[resource_id] = print_rules(pangolin.base_url, resource_id)
            for username, ip in LOGINS.items():
                verdict = pangolin.apply_rules_for(resource_id, ip)
                print("  %s from %s on %s: %s" % (username, ip, name, verdict))
                if verdict != "ACCEPT":
                    raise SystemExit("DEMO FAILED: %s's login IP is not let into %s" % (username, name))

        say("Rerun: nothing should change and the IPs must stay")
        changed = run_site(inventory, overrides)
        if changed != 0:
            raise SystemExit("DEMO FAILED: the rerun reported changed=%s" % changed)
        for resource_id in resources:
            after = print_rules(pangolin.base_url, resource_id)
            if sorted(json.dumps(r, sort_keys=True) for r in after) != sorted(
                    json.dumps(r, sort_keys=True) for r in rules[resource_id]):
                raise SystemExit("DEMO FAILED: the rerun changed the rules of resource %d" % resource_id)
        say("Doctor: ansible-playbook -i inventory/example playbooks/doctor.yml (read-only)")
        run_site(inventory, overrides, "doctor.yml")
    finally:
        pangolin.stop()
        authentik.stop()
    say("DEMO OK: every user's login address is let into both apps, a rerun changed nothing, and the doctor "
        "finds all well")


if __name__ == "__main__":
    main()
