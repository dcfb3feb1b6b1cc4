# -*- coding: utf-8 -*-
# Copyright: contributors to homelab.pangolin_authentik
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Warn about role variables nobody reads (typos) and about deprecated names still in use.

Runs on the controller only. The known names are the options of every entry
point in the calling role's ``meta/argument_specs.yml``, so the list has one
source.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("prefix", "deprecated", "removed_in"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        prefix = args.get("prefix")
        if not prefix or not isinstance(prefix, str):
            raise AnsibleActionFail("prefix is required")
        deprecated = args.get("deprecated") or {}
        if not isinstance(deprecated, dict):
            raise AnsibleActionFail("deprecated must be a dict of old name: new name")
        known = self._known_options()
        unknown = sorted(name for name in task_vars
                         if name.startswith(prefix) and name not in known)
        warnings = ["%s is not a variable of this role (a typo?); it is ignored. Known: see the role's "
                    "meta/argument_specs.yml" % name for name in unknown]
        deprecations = [dict(msg="The inventory variable %s is deprecated; use %s instead" % (old, new),
                             version=to_text(args.get("removed_in") or "1.0.0"),
                             collection_name="homelab.pangolin_authentik")
                        for old, new in sorted(deprecated.items()) if old in task_vars]
        # A deprecated name stands in for its new name while the new one is unset.
        takes_over = dict((new, old) for old, new in deprecated.items()
                          if old in task_vars and task_vars.get(new) in (None, "", [], {}))
        result.update(changed=False, unknown=unknown, deprecated=sorted(d for d in deprecated if d in task_vars),
                      takes_over=takes_over)
        if warnings:
            result["warnings"] = warnings
        if deprecations:
            result["deprecations"] = deprecations
        return result

    def _known_options(self):
        role = getattr(self._task, "_role", None)
        path = os.path.join(role._role_path, "meta", "argument_specs.yml") if role is not None else None
        if path is None or not os.path.exists(path) or yaml is None:
            raise AnsibleActionFail("role_variables runs inside a role that has meta/argument_specs.yml")
        with open(path, "rb") as handle:
            specs = yaml.safe_load(handle) or {}
        names = set()
        for entry in (specs.get("argument_specs") or {}).values():
            names.update((entry or {}).get("options") or {})
        return names
