"""Run the collection's real modules in-process, as Ansible's module runner would.

Each call builds the module's arguments exactly as ``ansible-playbook`` hands
them over (including check and diff mode), runs ``main()``, and returns the
JSON result the module printed. Much faster than a playbook per case, so the
bulk of the behaviour tests use it; playbook runs cover the rest.
"""

import contextlib
import importlib
import io
import json

from ansible.module_utils.common import warnings as ansible_warnings

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    from unittest import mock

    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()):
            yield

PACKAGE = "ansible_collections.homelab.pangolin_authentik.plugins.modules."


@contextlib.contextmanager
def module_process():
    """Run as a module process, not as the controller: once a test in this process imported controller code
    (ansible.cli, say), ansible-core 2.19+ sends module warnings to the controller's display instead of the
    result."""
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core < 2.19: no controller mode in module_utils
        yield
        return
    was = getattr(_internal, "is_controller", False)
    _internal.is_controller = False
    try:
        yield
    finally:
        _internal.is_controller = was


def run_module(name, args, check=False, diff=False):
    module = importlib.import_module(PACKAGE + name)
    full = dict(args)
    full["_ansible_check_mode"] = check
    full["_ansible_diff"] = diff
    out = io.StringIO()
    # Ansible collects warnings process-wide; a real module process starts empty.
    ansible_warnings._global_warnings.clear()  # a list before ansible-core 2.19, a dict since
    with patch_module_args(full), contextlib.redirect_stdout(out), module_process():
        try:
            module.main()
        except SystemExit:
            pass
    text = out.getvalue()
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError("module %s printed no JSON result: %r" % (name, text[:2000]))
