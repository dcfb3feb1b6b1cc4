"""An install made by version 0.2 of the collection, built through the simulators' APIs.

0.2 gave every user a chain named ``jellyfin-whitelist-<username>``: a body
mapping (the login event's client_ip, priority literal), a transport to the
user's rule, an expression policy for the user's pk, a notification rule of its
own and the binding; all users shared the headers mapping
``jellyfin-whitelist pangolin headers``. These are the objects, with the
expressions 0.2 rendered, so the adoption can be tested without 0.2's code.
"""

import requests

from tests.playbook_env import AUTHENTIK_TOKEN

MARK = "# rendered by homelab.pangolin_authentik"
HEADERS = "jellyfin-whitelist pangolin headers"


def body_02(priority):
    return "\n".join([MARK, "event = request.context['notification'].event",
                      "ip = getattr(event, 'client_ip', None)", "return {", '    "action": \'ACCEPT\',',
                      '    "match": "IP",', '    "value": ip or \'0.0.0.0\',', '    "priority": %d,' % priority,
                      '    "enabled": True,', "}"])


def policy_02(pk):
    return "\n".join([MARK, 'event = request.context.get("event")',
                      'if event is None or event.action != "login":', "    return False",
                      'return (event.user or {}).get("pk") == %d' % pk])


def headers_02(key):
    return "\n".join([MARK, "return {", '    "Authorization": %r,' % ("Bearer " + key),
                      '    "Content-Type": "application/json",', "}"])


class Api(object):
    def __init__(self, env):
        self.base = env.authentik.base_url + "/api/v3"
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + AUTHENTIK_TOKEN

    def post(self, path, body):
        resp = self.session.post(self.base + path, json=body, timeout=30)
        assert resp.status_code == 201, (path, resp.status_code, resp.text)
        return resp.json()


def install_02(env, usernames, first_priority=100, resource_id=None, webhook_key=None, with_headers=True):
    """The 0.2 objects for ``usernames`` on ``resource_id``; returns {username: rule id}."""
    api = Api(env)
    resource_id = resource_id or env.resource_id
    headers = [m for m in env.authentik.mappings.values() if m["name"] == HEADERS]
    if headers:
        headers_pk = headers[0]["pk"]
    elif with_headers:
        headers_pk = api.post("/propertymappings/notification/", {
            "name": HEADERS, "expression": headers_02(webhook_key or env.webhook_key)})["pk"]
    rules = {}
    for index, username in enumerate(usernames):
        name = "jellyfin-whitelist-" + username
        pk = env.authentik.user_by_username(username)["pk"]
        priority = first_priority + index
        rule_id = env.pangolin.add_rule(resource_id, "ACCEPT", "IP", "0.0.0.0", priority)
        rules[username] = rule_id
        body = api.post("/propertymappings/notification/", {"name": name, "expression": body_02(priority)})
        transport = api.post("/events/transports/", {
            "name": name, "mode": "webhook", "send_once": True, "webhook_mapping_body": body["pk"],
            "webhook_mapping_headers": headers_pk,
            "webhook_url": "%s/v1/resource/%d/rule/%d" % (env.pangolin.base_url, resource_id, rule_id)})
        policy = api.post("/policies/expression/", {"name": name, "expression": policy_02(pk)})
        rule = api.post("/events/rules/", {"name": name, "transports": [transport["pk"]], "severity": "notice",
                                           "destination_event_user": True})
        api.post("/policies/bindings/", {"policy": policy["pk"], "target": rule["pk"], "order": 0,
                                         "enabled": True})
    return rules


def legacy_objects(env):
    """Names of the 0.2 objects still in authentik, by store."""
    found = {}
    for store in ("mappings", "transports", "policies", "rules"):
        names = sorted(o["name"] for o in getattr(env.authentik, store).values()
                       if o["name"].startswith("jellyfin-whitelist-") and "/" not in o["name"] or o["name"] == HEADERS)
        if names:
            found[store] = names
    return found
