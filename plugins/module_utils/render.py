# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expressions built from typed values, never by pasting strings.

authentik runs webhook mappings and expression policies as Python function
bodies; Pangolin evaluates org and role mappings as JMESPath. Every value put
into one of them is first validated as a type, then rendered as a literal
(``repr`` for Python, a JSON literal for JMESPath), so no name, key or
username can change what the expression does.
"""

from __future__ import annotations

import ast
import json

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils.reconcile import InputError

# Marks the expressions this collection renders, so a later run can read back
# the typed values (e.g. the priority a user was given) without guessing.
RENDERED_MARK = "# rendered by homelab.pangolin_authentik"


def python_syntax_error(expression, option="expression"):
    """None when ``expression`` is a valid authentik expression body, else why not.

    authentik wraps the text as the body of ``def handler(...)``; compile it
    the same way so indentation and ``return`` are judged as authentik would.
    """
    if not isinstance(expression, str) or not expression.strip():
        return "%s must be a non-empty Python function body" % option
    wrapped = "def handler():\n" + "\n".join("    " + line for line in expression.splitlines())
    try:
        compile(wrapped, "<%s>" % option, "exec")
    except SyntaxError as exc:
        line = (exc.lineno or 2) - 1
        return "%s is not valid Python (line %d: %s)" % (option, line, exc.msg)
    return None


def check_python(expression, option="expression"):
    error = python_syntax_error(expression, option)
    if error:
        raise InputError(error)
    return expression


def py_literal(value):
    """A Python literal for a str/int/bool/None value (``repr`` round-trips)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        text = repr(value)
        if ast.literal_eval(text) != value:
            raise AssertionError("repr of %r does not round-trip" % (value,))
        return text
    raise TypeError("cannot render %r as a literal" % (value,))


def headers_mapping_expression(api_key):
    """The headers mapping: authentik sends Pangolin's bearer key with each webhook."""
    return "\n".join([
        RENDERED_MARK,
        "return {",
        "    \"Authorization\": %s," % py_literal("Bearer " + api_key),
        "    \"Content-Type\": \"application/json\",",
        "}",
    ])


def rule_body_expression(priority, action="ACCEPT", placeholder="0.0.0.0", enabled=True, ipv6_prefix=0):
    """The body mapping: a full Pangolin rule update whose value is the login's client IP.

    With ``ipv6_prefix`` (1-128) an IPv6 login whitelists the enclosing prefix
    as a CIDR rule instead (privacy addresses rotate within it); an IPv4 login,
    also one written IPv4-mapped, still whitelists the single address.
    """
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InputError("priority must be an integer, got %r" % (priority,))
    check_ipv6_prefix(ipv6_prefix)
    lines = [
        RENDERED_MARK,
        "event = request.context['notification'].event",
        "ip = getattr(event, 'client_ip', None)",
    ]
    if ipv6_prefix:
        lines += [
            "match = \"IP\"",
            "if ip:",
            "    address = ip_address(ip)",
            "    if address.version == 6 and address.ipv4_mapped:",
            "        ip = str(address.ipv4_mapped)",
            "    elif address.version == 6:",
            "        ip = str(ip_network(\"%s/%s\" % (address, IPV6_PREFIX), strict=False))",
            "        match = \"CIDR\"",
            "return {",
            "    \"action\": %s," % py_literal(action),
            "    \"match\": match,",
        ]
    else:
        lines += [
            "return {",
            "    \"action\": %s," % py_literal(action),
            "    \"match\": \"IP\",",
        ]
    lines += [
        "    \"value\": ip or %s," % py_literal(placeholder),
        "    \"priority\": %s," % py_literal(priority),
        "    \"enabled\": %s," % py_literal(bool(enabled)),
        "}",
    ]
    if ipv6_prefix:
        lines.insert(1, "IPV6_PREFIX = %s" % py_literal(ipv6_prefix))
    return "\n".join(lines)


def check_ipv6_prefix(prefix, option="ipv6_prefix"):
    """0 (off) or a prefix length 1-128."""
    if isinstance(prefix, bool) or not isinstance(prefix, int) or not 0 <= prefix <= 128:
        raise InputError("%s must be an integer from 0 (off) to 128, got %r" % (option, prefix))
    return prefix


def login_policy_expression(user_pk):
    """The policy: this event is a ``login`` of the user with this integer pk."""
    if isinstance(user_pk, bool) or not isinstance(user_pk, int):
        raise InputError("user pk must be an integer, got %r" % (user_pk,))
    return "\n".join([
        RENDERED_MARK,
        "event = request.context.get(\"event\")",
        "if event is None or event.action != \"login\":",
        "    return False",
        "return (event.user or {}).get(\"pk\") == %s" % py_literal(user_pk),
    ])


def rendered_values(expression):
    """Read the literal values back out of an expression this collection rendered.

    Returns ``{key: value}`` for the ``"key": <literal>`` entries of the
    returned dict, or {} for any other expression.
    """
    if not isinstance(expression, str) or not expression.startswith(RENDERED_MARK):
        return {}
    try:
        tree = ast.parse("def handler():\n" + "\n".join("    " + l for l in expression.splitlines()))
    except SyntaxError:
        return {}
    values = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if not isinstance(key, ast.Constant):
                    continue
                try:
                    values[key.value] = ast.literal_eval(value)
                except ValueError:
                    pass  # not a literal (the client IP lookup)
    return values


def jmespath_string(value, option):
    """A JMESPath literal that evaluates to exactly ``value``.

    Plain names use the familiar raw string ``'name'``. Anything with a quote,
    backslash or brace becomes a JSON literal with those characters \\u-escaped:
    Pangolin's JMESPath library unescapes only the first ``\\'`` of a raw
    string, and substitutes ``{{orgId}}`` before evaluating.
    """
    if not isinstance(value, str) or not value:
        raise InputError("%s must be a non-empty string" % option)
    if any(ord(c) < 32 for c in value):
        raise InputError("%s %r contains a control character" % (option, value))
    if not any(c in value for c in "'\\{}`"):
        return "'%s'" % value
    text = json.dumps(value, ensure_ascii=True)
    for char in "`{}'":
        text = text.replace(char, "\\u%04x" % ord(char))
    return "`%s`" % text


def group_membership_mapping(group, option="org_mapping_group"):
    """``contains(groups, '<group>')``: admit users of one IdP group."""
    return "contains(groups, %s)" % jmespath_string(group, option)
