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
import hashlib

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError, check_int

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


def settings_block(settings):
    """``SETTINGS = {...}``, one literal per line, read back by ``rendered_values``."""
    lines = ["SETTINGS = {"]
    for key, value in settings.items():
        lines.append("    %s: %s," % (py_literal(key), _literal(value)))
    return lines + ["}"]


def _literal(value):
    """A literal for a str/int/bool/None value or a list of them (lists may nest)."""
    if isinstance(value, list):
        return "[%s]" % ", ".join(_literal(v) for v in value)
    return py_literal(value)


def group_policy_expression(user_pks, sessions=False, group_pk=None):
    """The policy of a group's notification rule: an event that changes what these users' rules hold.

    A login of one of the users (and a logout with ``sessions``); the deletion of one of them, or an
    update that leaves one inactive, so access ends at once. With ``group_pk`` (users_from_group): any
    membership change of that group (authentik announces one as the group's ``model_updated``, during
    API and UI requests), its deletion, and any update of one of the users (the user's groups may have
    changed), so a member who leaves is out without a run.
    """
    users = sorted(set(check_int(pk, "user pk") for pk in user_pks))
    settings = dict(users=users, actions=["login", "logout"] if sessions else ["login"])
    if group_pk is not None:
        settings["group"] = str(group_pk).replace("-", "")
    return "\n".join([RENDERED_MARK] + settings_block(settings) + [
        "event = request.context.get('event')",
        "if event is None:",
        "    return False",
        "if event.action in SETTINGS['actions']:",
        "    return (event.user or {}).get('pk') in SETTINGS['users']",
        "if event.action not in ('model_updated', 'model_deleted'):",
        "    return False",
        "model = (event.context or {}).get('model') or {}",
        "if model.get('app') != 'authentik_core':",
        "    return False",
        "if model.get('model_name') == 'group':",
        "    return 'group' in SETTINGS and str(model.get('pk')).replace('-', '') == SETTINGS['group']",
        "if model.get('model_name') != 'user' or model.get('pk') not in SETTINGS['users']:",
        "    return False",
        "if event.action == 'model_deleted' or 'group' in SETTINGS:",
        "    return True",
        "from authentik.core.models import User",
        "return not User.objects.filter(pk=model.get('pk'), is_active=True).exists()",
    ])


def login_email_policy_expression(user_pks):
    """The login e-mail's policy: a ``login`` event of one of these users."""
    users = sorted(set(check_int(pk, "user pk") for pk in user_pks))
    return "\n".join([RENDERED_MARK] + settings_block(dict(users=users)) + [
        "event = request.context.get('event')",
        "return event is not None and event.action == 'login' and (event.user or {}).get('pk') in SETTINGS['users']",
    ])


def login_policy_expression(user_pk):
    """The policy: this event is a ``login`` of the user with this integer pk."""
    check_int(user_pk, "user pk")
    return "\n".join([
        RENDERED_MARK,
        "event = request.context.get(\"event\")",
        "if event is None or event.action != \"login\":",
        "    return False",
        "return (event.user or {}).get(\"pk\") == %s" % py_literal(user_pk),
    ])


def _rendered_tree(expression):
    """The syntax tree of an expression this collection rendered (parsed as authentik wraps it), or None."""
    if not isinstance(expression, str) or not expression.startswith(RENDERED_MARK):
        return None
    try:
        return ast.parse("def handler():\n" + "\n".join("    " + line for line in expression.splitlines()))
    except SyntaxError:
        return None


def rendered_values(expression):
    """Read the literal values back out of an expression this collection rendered.

    Returns ``{key: value}`` for the ``"key": <literal>`` entries of its dict
    literals (the ``SETTINGS`` block; the returned dict of a headers mapping or
    of an older render), or {} for an expression this collection did not render.
    """
    values = {}
    for node in ast.walk(_rendered_tree(expression) or ast.Module(body=[], type_ignores=[])):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if not isinstance(key, ast.Constant):
                    continue
                try:
                    values[key.value] = ast.literal_eval(value)
                except ValueError:
                    pass  # not a literal (the client IP lookup)
    return values


def rendered_settings(expression):
    """The ``SETTINGS = {...}`` block of an expression this collection rendered, as a dict, or {}."""
    for node in ast.walk(_rendered_tree(expression) or ast.Module(body=[], type_ignores=[])):
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["SETTINGS"]:
            try:
                found = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return found if isinstance(found, dict) else {}
    return {}


def compact_diff_views(before, after, field="expression", verbose=False):
    """Diff views of an expression this collection rendered: its settings block, and its code only when the code
    changed (or at -v). A rendered expression is settings plus this collection's code; 25 users' worth of
    unchanged code is a wall that hides the one setting that changed."""
    if verbose:
        return before, after
    sides = [v for v in (before, after) if v]
    texts = [v.get(field) for v in sides]
    if not sides or not all(isinstance(t, str) and rendered_settings(t) for t in texts):
        return before, after
    # Compact only when the view says everything that changes: the same code around the settings block on both
    # sides, each block exactly as this collection writes it, the settings both sides share in the same order.
    parts = [_settings_parts(t) for t in texts]
    if None in parts or len(set((head, tail) for head, _block, tail in parts)) > 1:
        return before, after  # the code itself changes: shown whole
    settings = [rendered_settings(t) for t in texts]
    if not all(_written_here(block, values) for (_head, block, _tail), values in zip(parts, settings)):
        return before, after  # hand-edited settings: how they are written is what changes
    if [k for k in settings[0] if k in settings[-1]] != [k for k in settings[-1] if k in settings[0]]:
        return before, after  # reordered settings: the view shows them sorted

    head, _block, tail = parts[0]
    code = "\n".join(head + tail)  # the same on both sides

    def compact(view):
        if not view:
            return view
        out = dict((k, v) for k, v in view.items() if k != field)
        out["settings"] = rendered_settings(view[field])
        out["code"] = "%d lines of this collection's code, sha256 %s (-v shows them)" % (
            len(code.splitlines()), hashlib.sha256(code.encode("utf-8")).hexdigest()[:12])
        return out
    return compact(before), compact(after)


def _written_here(block, values):
    """Whether a settings block is exactly what ``settings_block`` writes for its values."""
    try:
        return block == settings_block(values)
    except TypeError:  # a value this collection never writes
        return False


def _settings_parts(expression):
    """(lines before, lines of, lines after) the ``SETTINGS = {...}`` block, or None without one."""
    lines = expression.split("\n")
    if "SETTINGS = {" not in lines or "}" not in lines[lines.index("SETTINGS = {"):]:
        return None
    start = lines.index("SETTINGS = {")
    end = lines.index("}", start)
    return tuple(lines[:start]), lines[start:end + 1], tuple(lines[end + 1:])
