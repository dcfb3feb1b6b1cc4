"""Which connection settings a server gets: its own prefixed options first, the shared ones otherwise."""

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.client import (
    connection_argument_spec,
    server_connection,
)

SHARED = dict((name, spec.get("default")) for name, spec in connection_argument_spec().items())


def params(**given):
    """Module parameters as AnsibleModule hands them over: every option present, unset ones None."""
    values = dict(SHARED)
    for prefix in ("pangolin", "authentik"):
        for name in ("validate_certs", "ca_path", "timeout", "retries"):
            values["%s_%s" % (prefix, name)] = None
    values.update(given)
    return values


@pytest.mark.parametrize("prefix", ["pangolin", "authentik"])
def test_without_own_options_a_server_gets_the_shared_ones(prefix):
    assert server_connection(params(), prefix) == dict(
        validate_certs=True, ca_path=None, timeout=30, retries=3,
        ca_path_option="ca_path", timeout_option="timeout", retries_option="retries")
    shared = params(validate_certs=False, ca_path="/etc/ca.pem", timeout=5, retries=0)
    assert server_connection(shared, prefix) == dict(
        validate_certs=False, ca_path="/etc/ca.pem", timeout=5, retries=0,
        ca_path_option="ca_path", timeout_option="timeout", retries_option="retries")


def test_each_servers_own_options_win_for_that_server_only():
    given = params(validate_certs=False, ca_path="/etc/both.pem", timeout=30, retries=3,
                   pangolin_validate_certs=True, pangolin_ca_path="/etc/pangolin.pem", pangolin_timeout=7,
                   authentik_retries=0)
    assert server_connection(given, "pangolin") == dict(
        validate_certs=True, ca_path="/etc/pangolin.pem", timeout=7, retries=3,
        ca_path_option="pangolin_ca_path", timeout_option="pangolin_timeout", retries_option="retries")
    assert server_connection(given, "authentik") == dict(
        validate_certs=False, ca_path="/etc/both.pem", timeout=30, retries=0,
        ca_path_option="ca_path", timeout_option="timeout", retries_option="authentik_retries")


def test_false_and_zero_of_a_server_are_values_not_unset():
    given = params(validate_certs=True, retries=3, authentik_validate_certs=False, authentik_retries=0)
    settings = server_connection(given, "authentik")
    assert settings["validate_certs"] is False and settings["retries"] == 0
    assert settings["retries_option"] == "authentik_retries"


def test_an_empty_ca_path_of_a_server_is_unset():
    settings = server_connection(params(ca_path="/etc/both.pem", pangolin_ca_path=""), "pangolin")
    assert settings["ca_path"] == "/etc/both.pem" and settings["ca_path_option"] == "ca_path"
    assert server_connection(params(ca_path="", pangolin_ca_path=""), "pangolin")["ca_path"] is None


def test_a_zero_timeout_of_a_server_is_passed_on_for_the_client_to_refuse_by_name():
    settings = server_connection(params(timeout=30, pangolin_timeout=0), "pangolin")
    assert settings["timeout"] == 0 and settings["timeout_option"] == "pangolin_timeout"
