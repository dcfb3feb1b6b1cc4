# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module does around its own logic: errors, secrets, results."""

from __future__ import annotations

import traceback

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    ApiError,
)
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.secrets import Secrets
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.reconcile import Reconciler
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError

KEY_OPTIONS = ("pangolin_api_key", "webhook_api_key", "api_key")  # Pangolin keys <id>.<secret>
SECRET_OPTIONS = ("authentik_token", "password")


def ansible_module(argument_spec, **kwargs):
    """An AnsibleModule that refuses a value of the wrong shape for an option with suboptions itself.

    Meeting a non-dict element of a list-of-dicts option, or a non-dict value of a dict option with
    suboptions, ansible-core stops before it has collected the no_log values and echoes every secret
    option in clear; so the value is found first and refused by a module whose spec takes it as it is,
    with the secrets masked as usual.
    """
    from ansible.module_utils.basic import AnsibleModule, _load_params

    shaped = [name for name, spec in argument_spec.items() if spec.get("options")]
    given = (_load_params() or {}) if shaped else {}  # None under ansible-test's argument_spec introspection
    for name in shaped:
        spec, value = argument_spec[name], given.get(name)
        if value is None:
            continue
        if spec.get("type") == "list":
            entries = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            bad = [(index, entry) for index, entry in enumerate(entries) if not isinstance(entry, dict)]
            problem = "%s[%d] must be a dict, got %r" % ((name,) + bad[0]) if bad else None
            relaxed = dict(spec, elements="raw")
        else:
            problem = None if isinstance(value, (dict, str)) else "%s must be a dict, got a %s: %r" % (
                name, type(value).__name__, value)
            relaxed = dict(spec, type="raw")
        if problem:
            relaxed.pop("options", None)
            for key in ("mutually_exclusive", "required_one_of", "required_if", "required_together", "required_by"):
                relaxed.pop(key, None)
            AnsibleModule(argument_spec=dict(argument_spec, **{name: relaxed}), **kwargs).fail_json(msg=problem)
    return AnsibleModule(argument_spec=argument_spec, **kwargs)


def module_secrets(module):
    """Every secret the module was given, so no output can carry one."""
    secrets = Secrets()
    for name in KEY_OPTIONS:
        secrets.add_key(module.params.get(name))
    for name in SECRET_OPTIONS:
        secrets.add(module.params.get(name))
    return secrets


def run(module, body):
    """Run ``body(module, reconciler)`` and exit with its result dict.

    Bad input and API failures become one ``fail_json`` message with every
    secret scrubbed; anything else is a bug and keeps its traceback (also
    scrubbed).
    """
    if not HAS_REQUESTS:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
    secrets = module_secrets(module)
    reconciler = Reconciler(check_mode=module.check_mode, secrets=secrets, warn=module.warn,
                            verbose=module._verbosity >= 1)
    try:
        result = body(module, reconciler)
    except (InputError, ApiError) as exc:
        partial = dict(changed=reconciler.changed)
        if reconciler.changed and module._diff:
            partial["diff"] = reconciler.diffs()
        hide_learned_secrets(module, secrets)
        module.fail_json(msg=secrets.scrub(str(exc)), **secrets.scrub_obj(partial))
    except Exception as exc:  # pragma: no cover - a bug; still never leak a secret
        hide_learned_secrets(module, secrets)
        module.fail_json(msg=secrets.scrub("unexpected error: %s" % exc),
                         exception=secrets.scrub(traceback.format_exc()))
    if not module._diff:
        result.pop("diff", None)
    hide_learned_secrets(module, secrets)
    module.exit_json(**secrets.scrub_obj(result))


def hide_learned_secrets(module, secrets):
    """Secrets learned while running (a new key, a token inside an expression) leave no trace in the
    invocation Ansible echoes either: its no_log values are masked wherever they appear."""
    module.no_log_values.update(secrets.values())


def single_result(reconciler, outcome, kind, **extra):
    """Result of a module that manages one object."""
    result = dict(changed=outcome.changed, operation=outcome.operation,
                  msg="%s %s" % (outcome.operation or "unchanged:", kind.describe(outcome.desired)))
    result[kind.result_key] = reconciler.redact(kind, outcome.after)
    if outcome.changed:
        result["diff"] = outcome.diff(reconciler.redact, reconciler.verbose)
    result.update(extra)
    return result
