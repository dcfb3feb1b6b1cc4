# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whitelist modules' options: the argument spec, and every check it cannot make, in one place.

Ansible's argument spec checks types, choices, suboptions, required and
mutually exclusive options. What it cannot check (names, the placeholder, the
ranges, the webhook key, duplicate users) is checked here, once, at the
module's entry, before anything is read or written; the result is one
immutable ``Inputs`` that everything after it reads.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.client import (
    authentik_argument_spec,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.objects import (
    check_name,
    check_webhook_url,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.client import pangolin_argument_spec
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.objects import (
    PRIORITY_MAX,
    PRIORITY_MIN,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin.values import (
    ACTIONS,
    rule_value_error,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import check_int, is_int
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import sends_key, split_key
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.holdings import (
    PLACEHOLDER,
    opt_in_error,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.urls import api_base
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError

INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_ADDRESSES = 20
MAX_USERS_PER_RULE = 100


# -- checks the argument spec cannot make ------------------------------------------------
def check_instance(instance, option="instance"):
    if not isinstance(instance, str) or not INSTANCE.match(instance):
        raise InputError("%s %r must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
                         "(it becomes part of every object name)" % (option, instance))
    return instance


# -- what the checks build ------------------------------------------------------------------
@dataclass(frozen=True)
class UserEntry(object):
    username: str
    priority: int = None
    state: str = "present"
    where: str = ""


@dataclass(frozen=True)
class ResourceRef(object):
    """A resource as the inventory names it: by id, or by name / nice id / full domain within ``org_id``."""

    id: int = None
    name: str = None
    where: str = ""


@dataclass(frozen=True)
class LoginEmail(object):
    group: str = None
    to_user: bool = False
    subject_prefix: str = None
    template: str = None


@dataclass(frozen=True)
class Settings(object):
    """Every setting of one whitelist, checked."""

    name_prefix: str = "jellyfin-whitelist-"
    instance: str = None  # None: resource-<id> of the one resource
    placeholder: str = PLACEHOLDER
    action: str = "ACCEPT"
    ipv6_prefix: int = 0
    max_addresses: int = 1
    follow_sessions: bool = False
    expire_days: int = 30
    private_networks: tuple = ()  # private networks whose addresses may become rules (CIDRs, opted in)
    webhook_url: str = None  # Pangolin's API as authentik's worker reaches it, without /v1
    headers_mapping: str = None
    destination_group: str = None
    users_per_rule: int = 10
    users_from_group: str = None
    priority_range: tuple = (100, 999)
    webhook_api_key: str = None
    manage_webhook_key: bool = False
    rotate_webhook_key: bool = False
    webhook_key_name: str = None
    apply_rules: bool = True
    prune: bool = False
    login_email: LoginEmail = None
    state: str = "present"


@dataclass(frozen=True)
class Planned(object):
    """What this run's users step did before the whitelist (in check mode: would do), as the role passes it: the
    whitelist's group created or deleted, users it adds to that group, users it creates or deletes."""

    group: str = "kept"
    members: tuple = ()
    created: tuple = ()
    removed: tuple = ()


@dataclass(frozen=True)
class Inputs(object):
    settings: Settings
    users: tuple  # UserEntry, in inventory order
    resources: tuple  # ResourceRef, the first is the primary one
    org_id: str = None
    expire_users: tuple = None
    recent_logins: int = 100
    idle_days: int = 0  # expiry: close an address that let nothing through for this many days (0: never)
    planned: Planned = Planned()

    @property
    def present(self):
        return present(self.users)


def present(entries):
    """The entries (users, user plans) whose state is present: the one definition of who stays."""
    return tuple(entry for entry in entries if entry.state == "present")


def check_users(users):
    checked, seen = [], {}
    for index, entry in enumerate(users or []):
        username = check_name(entry.get("username"), "users[%d].username" % index)
        where = "users[%d] (%s)" % (index, username)
        if username in seen:
            raise InputError("%s: username %r is listed twice (also users[%d])" % (where, username, seen[username]))
        seen[username] = index
        priority = entry.get("priority")
        if priority is not None:
            check_int(priority, "%s.priority" % where, PRIORITY_MIN, PRIORITY_MAX)
        checked.append(UserEntry(username, priority, entry.get("state") or "present", where))
    return tuple(checked)


def resource_entry(entry, where):
    """A ``resources`` entry as a dict: an id (a number), a name (text), or ``{id: ...}`` / ``{name: ...}``."""
    if is_int(entry):
        return dict(id=entry)
    if isinstance(entry, str):
        return dict(name=entry)
    given = [v for v in entry.values() if v is not None] if isinstance(entry, dict) else None
    if given is not None and set(entry) <= set(["id", "name"]) and len(given) == 1:
        if entry.get("id") is not None and not is_int(entry["id"]):
            raise InputError("%s.id must be a resource id (a number), got %r" % (where, entry["id"]))
        if entry.get("name") is not None and not isinstance(entry["name"], str):
            raise InputError("%s.name must be a name, nice id or full domain, got %r" % (where, entry["name"]))
        return entry
    raise InputError("%s must be a resource id (a number), a name, nice id or full domain, or {id: ...} or "
                     "{name: ...}, got %r" % (where, entry))


def check_resources(params):
    if params.get("resources"):
        entries = [resource_entry(entry, "resources[%d]" % index) for index, entry in enumerate(params["resources"])]
    elif params.get("resource_id") is not None:
        entries = [dict(id=params["resource_id"])]
    else:
        entries = [dict(name=params["resource"])]
    refs, seen = [], set()
    for index, entry in enumerate(entries):
        where = "resources[%d]" % index if params.get("resources") else (
            "resource_id" if entry.get("id") is not None else "resource")
        if entry.get("id") is not None:
            if entry["id"] <= 0:
                raise InputError("%s must be a positive integer, got %d" % (where, entry["id"]))
            key = entry["id"]
        else:
            if not (entry.get("name") or "").strip():
                raise InputError("%s must be a non-empty name, nice id or full domain" % where)
            if not params.get("org_id"):
                raise InputError("%s names a resource by name: org_id is required with it" % where)
            key = entry["name"].strip()
        if key in seen:
            raise InputError("%s: resource %r is listed twice" % (where, key))
        seen.add(key)
        refs.append(ResourceRef(entry.get("id"), (entry.get("name") or "").strip() or None, where))
    return tuple(refs)


def check_login_email(setting):
    if not setting or not any(v is not None and v is not False for v in setting.values()):
        return None
    if bool(setting.get("group")) == bool(setting.get("to_user")):
        raise InputError("login_email needs exactly one recipient: group (an authentik group whose members get the "
                         "e-mail) or to_user: true (the user who logged in)")
    if setting.get("group") is not None:
        check_name(setting["group"], "login_email.group")
    return LoginEmail(setting.get("group"), bool(setting.get("to_user")), setting.get("subject_prefix"),
                      setting.get("template"))


def check_webhook_key(params):
    """The key authentik will send: never the playbook's own key (it would sit in a mapping in clear text)."""
    key = params.get("webhook_api_key")
    if params.get("manage_webhook_key") and key:
        raise InputError("webhook_api_key and manage_webhook_key exclude each other: with manage_webhook_key the "
                         "collection makes the key authentik sends")
    if params.get("rotate_webhook_key") and not params.get("manage_webhook_key"):
        raise InputError("rotate_webhook_key needs manage_webhook_key: only a key the collection made can be rotated")
    if key is None:
        return None
    if split_key(key) is None:
        raise InputError("webhook_api_key must be a Pangolin API key of the form <key id>.<secret>")
    if sends_key(key, params["pangolin_api_key"]):
        raise InputError("webhook_api_key is this playbook's own Pangolin key (pangolin_api_key): authentik would "
                         "keep it in a mapping in clear text and could do anything the playbook can; give authentik "
                         "a key with only the updateResourceRule action, or set manage_webhook_key")
    return key


def check_placeholder(value, action="ACCEPT"):
    """The value a rule holds while it lets nobody in: an IP address Pangolin takes and, for a rule that lets
    in what it holds (ACCEPT), one no connection comes from, or every user's rule would let that address in."""
    error = rule_value_error("IP", value)
    if error:
        raise InputError("placeholder %r %s" % (value, error))
    if action == "ACCEPT" and not never_a_source(value):
        raise InputError("placeholder %r is an address a client can connect from, so every rule holding it would "
                         "let that address in; use 0.0.0.0, ::, 255.255.255.255 or a multicast address" % (value,))
    return value


def never_a_source(value):
    """Whether no TCP connection can come from the address: unspecified, the IPv4 limited broadcast, multicast
    (an IPv4-mapped form counts as its IPv4 address)."""
    address = ipaddress.ip_address(value)
    address = getattr(address, "ipv4_mapped", None) or address
    return address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255")


def check_private_networks(networks):
    """The opted-in private networks, each checked: a network that is never allowed is refused."""
    checked = []
    for index, network in enumerate(networks or []):
        error = opt_in_error(network)
        if error:
            raise InputError("private_networks[%d] %r %s" % (index, network, error))
        checked.append(str(ipaddress.ip_network(str(network), strict=False)))
    return tuple(checked)


def whitelist_inputs(params):
    """Every option a whitelist module was given, checked; nothing is sent before this returns."""
    get = params.get
    name_prefix = check_name(params["name_prefix"], "name_prefix")
    if get("instance") is not None:
        check_instance(get("instance"))
    check_placeholder(params["placeholder"], params["action"])
    start, end = get("priority_start", 100), get("priority_end", 999)
    for option, value in (("priority_start", start), ("priority_end", end)):
        check_int(value, option, PRIORITY_MIN, PRIORITY_MAX)
    if start > end:
        raise InputError("priority_start %d is greater than priority_end %d" % (start, end))
    webhook_url = check_webhook_url(get("webhook_url") or params["pangolin_url"], "webhook_url")
    expire_users = get("expire_users")
    if expire_users is not None:
        expire_users = tuple(check_name(u, "expire_users") for u in expire_users)
    settings = Settings(
        name_prefix=name_prefix, instance=get("instance"), placeholder=params["placeholder"], action=params["action"],
        ipv6_prefix=check_int(params["ipv6_prefix"], "ipv6_prefix", 0, 128, "an integer (0: off)"),
        max_addresses=check_int(params["max_addresses"], "max_addresses", 1, MAX_ADDRESSES),
        follow_sessions=params["follow_sessions"], private_networks=check_private_networks(get("private_networks")),
        expire_days=check_int(params["expire_days"], "expire_days", 0, 36500, "a whole number of days (0: no limit)"),
        webhook_url=api_base(webhook_url),
        headers_mapping=check_name(get("headers_mapping"), "headers_mapping") if get("headers_mapping") else None,
        destination_group=get("destination_group"),
        users_per_rule=check_int(get("users_per_rule", 10), "users_per_rule", 1, MAX_USERS_PER_RULE),
        users_from_group=(check_name(get("users_from_group"), "users_from_group")
                          if get("users_from_group") is not None else None),
        priority_range=(start, end), webhook_api_key=check_webhook_key(params),
        manage_webhook_key=bool(get("manage_webhook_key")), rotate_webhook_key=bool(get("rotate_webhook_key")),
        webhook_key_name=(check_name(get("webhook_key_name"), "webhook_key_name")
                          if get("manage_webhook_key") and get("webhook_key_name") is not None else None),
        apply_rules=get("apply_rules", True), prune=bool(get("prune")),
        login_email=check_login_email(get("login_email")), state=get("state") or "present")
    planned = get("planned") or {}
    planned = Planned(planned.get("group") or "kept", *(tuple(check_name(u, "planned.%s" % key)
                                                              for u in planned.get(key) or [])
                                                        for key in ("members", "created", "removed")))
    return Inputs(settings=settings, users=check_users(params["users"]), resources=check_resources(params),
                  org_id=get("org_id"), expire_users=expire_users, planned=planned,
                  recent_logins=check_int(get("recent_logins", 100), "recent_logins", 1, 100,
                                          "a number of events (one page)"),
                  idle_days=check_int(get("idle_days", 0), "idle_days", 0, 36500, "a whole number of days (0: off)"))


# -- the argument spec --------------------------------------------------------------------
def whitelist_argument_spec(module):
    """The options of ``login_ip_whitelist`` (``site``), ``..._info`` (``doctor``) or ``..._expire`` (``expire``),
    with the rules Ansible checks for them."""
    spec = pangolin_argument_spec()
    spec.update(authentik_argument_spec())
    spec.update(
        resource_id=dict(type="int"), resource=dict(type="str"), org_id=dict(type="str"),
        resources=dict(type="list", elements="raw"),
        users=dict(type="list", elements="dict", options=dict(
            username=dict(type="str", required=True),
            priority=dict(type="int"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        )),
        users_from_group=dict(type="str"),
        name_prefix=dict(type="str", default="jellyfin-whitelist-"),
        instance=dict(type="str"),
        placeholder=dict(type="str", default=PLACEHOLDER),
        action=dict(type="str", default="ACCEPT", choices=[a for a in ACTIONS if a != "DROP"]),
        ipv6_prefix=dict(type="int", default=0),
        max_addresses=dict(type="int", default=1),
        follow_sessions=dict(type="bool", default=False),
        expire_days=dict(type="int", default=30),
        private_networks=dict(type="list", elements="str", default=[]),
        webhook_url=dict(type="str"),
    )
    if module in ("site", "doctor"):
        spec.update(
            headers_mapping=dict(type="str"),
            destination_group=dict(type="str"),
            users_per_rule=dict(type="int", default=10),
            manage_webhook_key=dict(type="bool", default=False),
        )
    if module == "site":
        spec.update(
            state=dict(type="str", default="present", choices=["present", "absent"]),
            priority_start=dict(type="int", default=100),
            priority_end=dict(type="int", default=999),
            webhook_api_key=dict(type="str", no_log=True),
            rotate_webhook_key=dict(type="bool", default=False),
            webhook_key_name=dict(type="str", no_log=False),
            apply_rules=dict(type="bool", default=True),
            prune=dict(type="bool", default=False),
            login_email=dict(type="dict", options=dict(
                group=dict(type="str"), to_user=dict(type="bool", default=False),
                subject_prefix=dict(type="str"), template=dict(type="str"))),
            planned=dict(type="dict", options=dict(
                group=dict(type="str", choices=["created", "deleted", "kept"], default="kept"),
                members=dict(type="list", elements="str", default=[]),
                created=dict(type="list", elements="str", default=[]),
                removed=dict(type="list", elements="str", default=[]))),
        )
    if module == "doctor":
        spec.update(recent_logins=dict(type="int", default=100), commands=dict(type="dict", options=dict(
            site=dict(type="str", default="ansible-playbook playbooks/site.yml"),
            expire=dict(type="str", default="ansible-playbook playbooks/expire.yml"))))
    if module == "expire":
        spec.update(expire_users=dict(type="list", elements="str"), idle_days=dict(type="int", default=0))
    rules = dict(mutually_exclusive=[("resource_id", "resource", "resources")],
                 required_one_of=[("resource_id", "resource", "resources"), ("users", "users_from_group")],
                 required_by={"resource": "org_id"})
    return spec, rules


__all__ = ["Settings", "Inputs", "UserEntry", "ResourceRef", "LoginEmail", "whitelist_inputs", "present",
           "check_placeholder", "check_private_networks",
           "whitelist_argument_spec", "check_instance"]
