"""Rendered expressions keep their meaning whatever text goes into them.

Each property renders an expression from hostile input (quotes, backslashes,
newlines, braces, code fragments), then evaluates it the way authentik
(Python function body) or Pangolin (JMESPath) would, and checks that the
value comes out exactly as given and nothing else happened.
"""

import ast
import ipaddress
import types

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik import render
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._pangolin import values
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import event_body_expression
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.webhook_key import (
    headers_mapping_expression,
)

# What can never be a device's address as Pangolin sees it, and what is private: written out here on their own,
# so the renderer is checked against a second statement of the rule, not against itself.
NOT_A_DEVICE = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "100.64.0.0/10", "::/127", "fe80::/10", "fec0::/10", "ff00::/8", "fc00::/7")]

HOSTILE = st.text(
    alphabet=st.sampled_from(list("ab'\"\\`{}()[];,.:=-_ \n\t#") + ["{{orgId}}", "__import__('os')", "'''", '"""',
                                                                    "\\'", "\u2028", "é"]),
    min_size=1, max_size=40,
).map(lambda s: s if isinstance(s, str) else "".join(s))
TEXT = st.lists(st.sampled_from(list("ab'\"\\`{}()[];,.:=-_ #") + ["{{orgId}}", "__import__('os')", "\\'"]),
                min_size=1, max_size=12).map("".join)


def run_authentik_expression(expression, **context):
    """Run an expression the way authentik does: as the body of a function."""
    source = "def handler(%s):\n%s" % (", ".join(context), "\n".join("    " + l for l in expression.splitlines()))
    namespace = {}
    exec(compile(source, "<expression>", "exec"), {"__builtins__": __builtins__}, namespace)  # noqa: S102
    return namespace["handler"](**context)


def event(action="login", pk=7, client_ip="203.0.113.9"):
    return types.SimpleNamespace(action=action, user={"pk": pk, "username": "x"}, client_ip=client_ip)


@settings(max_examples=200, deadline=None)
@given(key=TEXT)
def test_headers_mapping_returns_exactly_the_key(key):
    expression = headers_mapping_expression(key)
    assert render.python_syntax_error(expression) is None
    headers = run_authentik_expression(expression, request=None, notification=None, user=None)
    assert headers == {"Authorization": "Bearer " + key, "Content-Type": "application/json"}


@settings(max_examples=100, deadline=None)
@given(priority=st.integers(min_value=-(2 ** 31), max_value=2 ** 31 - 1),
       ip=st.one_of(st.none(), st.ip_addresses().map(str)))
def test_body_mapping_is_a_full_rule_update_with_the_login_ip(priority, ip):
    expression = event_body_expression(priority)
    notification = types.SimpleNamespace(event=event(client_ip=ip))
    request = types.SimpleNamespace(context={"notification": notification})
    body = run_authentik_expression(expression, request=request, notification=notification, user=None)
    # Pangolin compares the client's address as IPv4 when it is one: an IPv4-mapped login address
    # is written in its IPv4 form. An address that cannot be a device's becomes no rule.
    address = ipaddress.ip_address(ip) if ip else None
    address = getattr(address, "ipv4_mapped", None) or address
    refused = address is None or any(address.version == n.version and address in n for n in NOT_A_DEVICE)
    expected = "0.0.0.0" if refused else str(address)
    assert body == {"action": "ACCEPT", "match": "IP", "value": expected, "priority": priority,
                    "enabled": True}
    assert render.rendered_values(expression)["priority"] == priority


@settings(max_examples=100, deadline=None)
@given(pk=st.integers(min_value=0, max_value=10 ** 9), other=st.integers(min_value=0, max_value=10 ** 9),
       action=st.sampled_from(["login", "login_failed", "logout", "model_updated"]))
def test_login_policy_matches_only_a_login_of_that_user(pk, other, action):
    expression = render.login_policy_expression(pk)
    request = types.SimpleNamespace(context={"event": event(action=action, pk=other)})
    assert run_authentik_expression(expression, request=request) is (action == "login" and pk == other)
    # Events without a user (system events) or without an event at all never match.
    no_user = types.SimpleNamespace(context={"event": types.SimpleNamespace(action="login", user={})})
    assert run_authentik_expression(expression, request=no_user) is False
    assert run_authentik_expression(expression, request=types.SimpleNamespace(context={})) is False


@settings(max_examples=300, deadline=None)
@given(group=TEXT)
def test_group_mapping_tests_membership_of_exactly_that_group(group):
    expression = values.group_membership_mapping(group)
    # Pangolin substitutes {{orgId}} before evaluating; the rendered text must not contain it.
    assert "{{orgId}}" not in expression
    compiled = jmespath.compile(expression)
    assert compiled.search({"groups": [group]}) is True
    assert compiled.search({"groups": [group + "x", "other"]}) is False
    assert compiled.search({"groups": []}) is False


@settings(max_examples=200, deadline=None)
@given(role=TEXT)
def test_role_literal_evaluates_to_the_role_name(role):
    assert jmespath.search(values.jmespath_string(role, "role"), {}) == role


def test_plain_group_uses_the_familiar_raw_string():
    assert values.group_membership_mapping("jellyfin") == "contains(groups, 'jellyfin')"


@pytest.mark.parametrize("bad", ["", "a\nb", "tab\there"])
def test_jmespath_strings_refuse_empty_and_control_characters(bad):
    with pytest.raises(InputError, match="role"):
        values.jmespath_string(bad, "role")


@pytest.mark.parametrize("expression, message", [
    ("return (", "not valid Python"),
    ("  return 1\n return 2", "not valid Python"),
    ("", "non-empty"),
    ("   ", "non-empty"),
])
def test_invalid_expressions_are_refused(expression, message):
    assert message in render.python_syntax_error(expression)


def test_rendered_values_ignore_foreign_expressions():
    assert render.rendered_values('return {"priority": 5}') == {}
    assert render.rendered_values(event_body_expression(12))["priority"] == 12


@pytest.mark.parametrize("bad", [True, "5", 5.0, None])
def test_typed_renderers_refuse_wrong_types(bad):
    with pytest.raises(InputError):
        event_body_expression(bad)
    with pytest.raises(InputError):
        render.login_policy_expression(bad)


def test_rendered_python_is_literal_only():
    """The only names a rendered mapping uses are the ones authentik provides."""
    expression = headers_mapping_expression("x'); __import__('os').system('id'); ('")
    tree = ast.parse("def f():\n" + "\n".join("    " + l for l in expression.splitlines()))
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert names == set()
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert calls == []


@pytest.mark.parametrize("value", [1.5, float("nan"), [1], (1,), {"a": 1}, b"bytes", object(), {1}, 2j])
def test_py_literal_renders_nothing_but_str_int_bool_and_none(value):
    """Only these four types round-trip through repr as a harmless literal; anything else is a bug upstream."""
    with pytest.raises(TypeError, match="cannot render"):
        render.py_literal(value)


@pytest.mark.parametrize("value", ["x'); import os #", "", "\n", 0, -5, 2 ** 40, True, False, None])
def test_py_literal_round_trips_what_it_renders(value):
    import ast
    text = render.py_literal(value)
    assert ast.literal_eval(text) == value and type(ast.literal_eval(text)) is type(value)
