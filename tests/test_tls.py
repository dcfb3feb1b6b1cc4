"""TLS: both simulators served over HTTPS with a throw-away CA.

Without the CA the modules must fail with one clear TLS message that says
how to fix it (ca_path); with ca_path they must work; with validate_certs
false they must work and warn that nothing is verified.
"""

import json
import time

import pytest

from tests.module_harness import run_module
from tests.pki import make_pki
from tests.playbook_env import AUTHENTIK_TOKEN, PANGOLIN_KEY, WEBHOOK_KEY
from tests.simulators.authentik import AuthentikSimulator
from tests.simulators.pangolin import PangolinSimulator

HEADERS = "jellyfin-whitelist pangolin headers"
SECRETS = [PANGOLIN_KEY, PANGOLIN_KEY.split(".", 1)[1], WEBHOOK_KEY, WEBHOOK_KEY.split(".", 1)[1], AUTHENTIK_TOKEN]


def checked(result, where=""):
    """A module result over HTTPS, failing or not: no secret in it, no traceback, a message; returns it."""
    text = json.dumps(result)
    for secret in SECRETS:
        assert secret not in text, (where, secret, text[max(0, text.find(secret) - 300):text.find(secret) + 300])
    assert "Traceback" not in text, (where, text[-3000:])
    assert result.get("msg"), (where, result)
    return result


def warning_texts(result):
    return [w if isinstance(w, str) else (w.get("event") or w).get("msg", "") for w in result.get("warnings") or []]


@pytest.fixture(scope="module")
def https(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    pangolin, authentik = PangolinSimulator(), AuthentikSimulator()
    pangolin.start(certfile=pki["cert"], keyfile=pki["key"])
    authentik.start(certfile=pki["cert"], keyfile=pki["key"])
    pangolin.add_api_key(root=True, key=PANGOLIN_KEY)
    authentik.add_token(AUTHENTIK_TOKEN, superuser=True)
    resource_id = pangolin.add_resource("homelab", "Jellyfin", subdomain="jellyfin")
    authentik.add_user("alice", name="Alice")
    yield dict(pki=pki, pangolin=pangolin, authentik=authentik, resource_id=resource_id)
    pangolin.stop()
    authentik.stop()


def converge(https, retries=0, pangolin_tls=None, authentik_tls=None, **tls):
    """Over HTTPS with the given TLS options: a Pangolin module, an authentik module, and the role's
    login_ip_whitelist call (both servers); returns the results, each checked for secrets.

    ``tls`` goes to both servers as the shared options; ``pangolin_tls`` and ``authentik_tls`` are the
    per-server ones (pangolin_ca_path, authentik_validate_certs, ...), given to the modules that talk to it.
    """
    pangolin = dict(pangolin_url=https["pangolin"].base_url, pangolin_api_key=PANGOLIN_KEY, retries=retries,
                    **dict(tls, **(pangolin_tls or {})))
    authentik = dict(authentik_url=https["authentik"].base_url, authentik_token=AUTHENTIK_TOKEN, retries=retries,
                     **dict(tls, **(authentik_tls or {})))
    results = [run_module("pangolin_resource", dict(pangolin, resource_id=https["resource_id"], apply_rules=True)),
               run_module("authentik_webhook_mapping", dict(authentik, name=HEADERS, template="pangolin_headers",
                                                            webhook_api_key=WEBHOOK_KEY)),
               run_module("login_ip_whitelist", dict(pangolin, resource_id=https["resource_id"],
                                                     webhook_api_key=WEBHOOK_KEY, users=[{"username": "alice"}],
                                                     **authentik))]
    for name, result in zip(("pangolin_resource", "authentik_webhook_mapping", "login_ip_whitelist"), results):
        checked(result, name)
    return results


def test_urls_are_https(https):
    assert https["pangolin"].base_url.startswith("https://")
    assert https["authentik"].base_url.startswith("https://")


def reset_logs(https):
    https["pangolin"].reset_log()
    https["authentik"].reset_log()


def test_unknown_ca_fails_clearly_and_is_not_retried(https):
    reset_logs(https)
    started = time.monotonic()
    results = converge(https, retries=3)
    for result in results:
        assert result.get("failed"), result
        msg = result["msg"]
        assert "TLS verification of https://127.0.0.1:" in msg and "ca_path" in msg, msg
        assert "certificate verify failed" in msg, msg
        assert not warning_texts(result), result["warnings"]  # a bad certificate does not get better by retrying
    assert time.monotonic() - started < 10
    assert https["pangolin"].writes() == [] and https["authentik"].writes() == []


def test_ca_path_works(https):
    results = converge(https, ca_path=https["pki"]["ca"])
    for result in results:
        assert not result.get("failed"), result.get("msg")
        assert not any("validate_certs" in w for w in warning_texts(result))
    assert [u["priority"] for u in results[-1]["users"]] == [100]
    again = converge(https, ca_path=https["pki"]["ca"])
    assert not any(r.get("changed") or r.get("failed") for r in again)


def test_validate_certs_false_works_and_warns(https):
    results = converge(https, validate_certs=False)
    for result in results:
        assert not result.get("failed"), result.get("msg")
    warned = [w for r in results for w in warning_texts(r)]
    for base_url in (https["pangolin"].base_url, https["authentik"].base_url):
        assert "validate_certs is false: TLS certificates of %s are not verified" % base_url in warned, warned


def test_wrong_ca_fails(https, tmp_path):
    other = make_pki(tmp_path)
    result = checked(run_module("pangolin_resource", dict(pangolin_url=https["pangolin"].base_url,
                                                          pangolin_api_key=PANGOLIN_KEY, ca_path=other["ca"],
                                                          retries=0, resource_id=https["resource_id"],
                                                          apply_rules=True)))
    assert result.get("failed") and "TLS verification" in result["msg"] and "ca_path" in result["msg"], result


def test_missing_ca_file_is_a_clear_error(https, tmp_path):
    reset_logs(https)
    missing = str(tmp_path / "no-such-ca.pem")
    result = checked(run_module("authentik_group", dict(authentik_url=https["authentik"].base_url,
                                                        authentik_token=AUTHENTIK_TOKEN, ca_path=missing, retries=0,
                                                        name="g")))
    assert result.get("failed"), result
    assert "ca_path" in result["msg"] and missing in result["msg"], result["msg"]
    assert https["authentik"].log == []  # refused before the first request


def test_tls_options_per_server(https):
    """Each server's own options: Pangolin verified with its CA, authentik not verified; nothing crosses over."""
    pangolin_url, authentik_url = https["pangolin"].base_url, https["authentik"].base_url
    results = converge(https, pangolin_tls=dict(pangolin_ca_path=https["pki"]["ca"]),
                       authentik_tls=dict(authentik_validate_certs=False))
    for result in results:
        assert not result.get("failed"), result.get("msg")
    warned = [w for r in results for w in warning_texts(r)]
    assert "validate_certs is false: TLS certificates of %s are not verified" % authentik_url in warned, warned
    assert not any(pangolin_url in w for w in warned), warned
    # The Pangolin CA alone does not reach authentik: its certificate is checked, and fails, as by default.
    pangolin_only = converge(https, pangolin_tls=dict(pangolin_ca_path=https["pki"]["ca"]))
    assert not pangolin_only[0].get("failed"), pangolin_only[0].get("msg")
    for result in pangolin_only[1:]:
        assert result.get("failed") and "TLS verification of %s" % authentik_url in result["msg"], result
    # A per-server option wins over the shared one.
    results = converge(https, validate_certs=False, pangolin_tls=dict(pangolin_validate_certs=True,
                                                                      pangolin_ca_path=https["pki"]["ca"]))
    for result in results:
        assert not result.get("failed"), result.get("msg")
    warned = [w for r in results for w in warning_texts(r)]
    assert not any(pangolin_url in w for w in warned) and any(authentik_url in w for w in warned), warned
