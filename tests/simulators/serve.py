"""Serve both simulators from one process, seeded for the Jellyfin setup.

    python -m tests.simulators.serve --state state.json [--users alice,bob]

Writes ``state.json`` (URLs, keys, resource id, pid) once both listen, and
serves until SIGTERM or SIGINT. Used by the Molecule scenario, whose create
and destroy steps start and stop it.
"""

import argparse
import json
import os
import signal
import threading

from tests.playbook_env import AUTHENTIK_TOKEN, PANGOLIN_KEY, WEBHOOK_KEY
from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.pangolin import PangolinSimulator


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="where to write URLs and keys (JSON)")
    parser.add_argument("--users", default="alice,bob", help="comma-separated authentik usernames to seed")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    pangolin, authentik = PangolinSimulator(), AuthentikSimulator()
    pangolin.start(host=args.host)
    authentik.start(host=args.host)
    pangolin.add_api_key(root=True, key=PANGOLIN_KEY)
    pangolin.add_api_key(org_id="homelab", actions=["updateResourceRule"], key=WEBHOOK_KEY)
    resource_id = pangolin.add_resource("homelab", "Jellyfin", subdomain="jellyfin",
                                        full_domain="jellyfin.example.com")
    authentik.add_token(AUTHENTIK_TOKEN)
    users = [u for u in args.users.split(",") if u]
    for username in users:
        authentik.add_user(username, name=username.title(), email="%s@example.com" % username)

    state = dict(pid=os.getpid(), pangolin_url=pangolin.base_url, authentik_url=authentik.base_url,
                 pangolin_api_key=PANGOLIN_KEY, webhook_api_key=WEBHOOK_KEY, authentik_token=AUTHENTIK_TOKEN,
                 resource_id=resource_id, org_id="homelab", users=users)
    partial = args.state + ".tmp"
    with open(partial, "w") as handle:
        json.dump(state, handle)
    os.replace(partial, args.state)  # readers never see half a file

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    pangolin.stop()
    authentik.stop()


if __name__ == "__main__":
    main()
