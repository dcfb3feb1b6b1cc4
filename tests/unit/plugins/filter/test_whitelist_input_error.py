"""The role's early check: what login_ip_whitelist would refuse, found without asking a server."""

from ansible_collections.homelab.pangolin_authentik.plugins.filter.whitelist_input_error import (
    whitelist_input_error,
)

# No server given: a play's module_defaults or environment may give them, and the module insists on them.
OPTIONS = dict(users=[{"username": "alice"}], resource_id=1, webhook_api_key="7.webhook-secret")


def test_options_without_the_servers_pass():
    assert whitelist_input_error(dict(OPTIONS)) == ""


def test_a_bad_setting_is_named_as_the_module_names_it():
    said = whitelist_input_error(dict(OPTIONS, placeholder="192.0.2.1"))
    assert said.startswith("placeholder '192.0.2.1'") and "connect from" in said
    assert "webhook_url" in whitelist_input_error(dict(OPTIONS, webhook_url="http://pan_golin:3003"))
    assert "priority_start 900" in whitelist_input_error(dict(OPTIONS, priority_start=900, priority_end=100))


def test_a_type_error_is_refused_as_ansible_words_it():
    assert "priority" in whitelist_input_error(dict(OPTIONS, users=[{"username": "alice", "priority": "high"}]))


def test_no_key_or_token_is_repeated():
    said = whitelist_input_error(dict(OPTIONS, pangolin_api_key="9.playbook-secret", placeholder="9.playbook-secret"))
    assert said and "playbook-secret" not in said and "placeholder" in said
    said = whitelist_input_error(dict(OPTIONS, pangolin_api_key="7.webhook-secret"))
    assert "pangolin_api_key" in said and "webhook-secret" not in said


def test_the_doctor_and_expiry_options_are_checked_as_their_modules_do():
    shared = dict(users=[{"username": "alice"}], resource_id=1)
    assert "idle_days" in whitelist_input_error(dict(shared, idle_days=-1), "expire")
    assert whitelist_input_error(dict(shared, idle_days=3), "expire") == ""
    assert "recent_logins" in whitelist_input_error(dict(shared, recent_logins=500), "doctor")
    assert "webhook_api_key" in whitelist_input_error(dict(OPTIONS), "doctor")  # not an option of the doctor
