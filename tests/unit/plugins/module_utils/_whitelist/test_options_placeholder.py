"""Which placeholders a whitelist takes: a rule holding the placeholder lets nobody in only while no connection
can come from it."""

import pytest

from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._http.inputs import InputError
from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.options import check_placeholder


@pytest.mark.parametrize("value", ["0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1", "::ffff:0.0.0.0"])
def test_an_address_no_connection_comes_from_is_taken(value):
    assert check_placeholder(value) == value


@pytest.mark.parametrize("value", ["192.0.2.1", "203.0.113.7", "127.0.0.1", "10.1.2.3", "fe80::1", "2001:db8::1",
                                   "::ffff:127.0.0.1", "::1", "240.0.0.1"])
def test_an_address_a_client_can_come_from_is_refused_for_accept(value):
    with pytest.raises(InputError) as found:
        check_placeholder(value)
    assert "placeholder %r" % value in str(found.value) and "connect from" in str(found.value)


def test_a_rule_that_does_not_accept_may_hold_any_address():
    assert check_placeholder("192.0.2.1", "DROP") == "192.0.2.1"
    assert check_placeholder("192.0.2.1", "PASS") == "192.0.2.1"


def test_what_is_no_address_stays_refused_whatever_the_action():
    with pytest.raises(InputError):
        check_placeholder("10.0.0.0/8", "DROP")
