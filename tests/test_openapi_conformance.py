"""Every request the collection makes must be one the servers' published API describes.

Pangolin: the modules run for real (through ``tests.module_harness``) against
the Pangolin simulator; every request in the simulator's log is mapped to a
templated path of Pangolin's OpenAPI document, its method must exist there,
its query parameters must be declared and its JSON body must validate against
the operation's request-body schema. The simulator accepts what the real
server accepts; this test adds the published contract on top, so a body that
only works by accident (an undocumented field, a wrong type the server
happens to coerce) is caught.

authentik: its simulator covers behaviour, not the schema, so the calls the
client makes are listed (``tests/api_calls.py``) and checked against
authentik's schema; a guard test fails when the client grows a path the list
does not know.

The published APIs are read from ``tests/contract/``: the operations the
collection calls, with their parameters and request-body schemas already
translated to JSON Schema, derived from the servers' published documents by
``scripts/contract_data.py`` (see ``tests/contract/README.md``).
"""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

jsonschema = pytest.importorskip("jsonschema")

from tests.api_calls import (  # noqa: E402
    AUTHENTIK_CALLS,
    KNOWN_UNDECLARED_FILTERS,
    PANGOLIN_PLANNED_CALLS,
    PANGOLIN_WEBHOOK_SOURCE,
    PANGOLIN_WEBHOOK_TARGET,
    pangolin_client_calls,
)
from tests.module_harness import run_module  # noqa: E402
from tests.simulators.pangolin import PangolinSimulator  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "tests" / "contract"
PANGOLIN_CONTRACT = CONTRACT / "pangolin.json"
AUTHENTIK_CONTRACT = CONTRACT / "authentik.json"
MODULES = REPO / "plugins" / "modules"
MODULE_UTILS = REPO / "plugins" / "module_utils"
REGENERATE = "python scripts/contract_data.py"


class Spec(object):
    """The operations of one contract file, matchable against concrete request paths.

    The file lists the operations the collection calls; ``overlapping_paths``
    adds the other templates of the published document a concrete path of a
    listed one could also match, so a request is matched to the template the
    whole document would give it.
    """

    def __init__(self, path):
        self.file = path.relative_to(REPO)
        self.data = json.loads(path.read_text(encoding="utf-8"))
        self.name = "%s (%s %s)" % (self.file, self.data["source"]["file"], self.data["source"]["info_version"])
        self.prefix = self.data["server_prefix"].rstrip("/")
        self.paths = self.data["paths"]
        self.methods_in_spec = dict((template, entry["methods_in_spec"]) for template, entry in self.paths.items())
        self.methods_in_spec.update(self.data["overlapping_paths"])
        self.templates = []
        for template in self.methods_in_spec:
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            literal = len(re.sub(r"\{[^/]+?\}", "", template))
            self.templates.append((re.compile(pattern), literal, template))

    def template_for(self, path):
        """The templated path for a concrete one; the most literal match wins."""
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix):]
        matches = sorted((-literal, template) for pattern, literal, template in self.templates
                         if pattern.match(path))
        return matches[0][1] if matches else None

    def template_for_generic(self, generic):
        """Match a path written with ``{}`` placeholders (static lists) to its template."""
        wanted = re.sub(r"\{[^/]*\}", "{}", generic)
        for _pattern, _literal, template in self.templates:
            if re.sub(r"\{[^/]*\}", "{}", template) == wanted:
                return template
        return None

    def not_in_spec(self, method, generic):
        """What the generator found wrong with a listed call (it is not in the published document), or None."""
        wanted = re.sub(r"\{[^/]*\}", "{}", generic)
        for entry in self.data["not_in_spec"]:
            if entry["method"] == method and re.sub(r"\{[^/]*\}", "{}", entry["path"]) == wanted:
                return "%s %s: %s in %s" % (method, generic, entry["problem"], self.data["source"]["file"])
        return None

    def missing_operation(self, template, method):
        """Why ``method`` on ``template`` has no operation here (None when it has one)."""
        if self.operation(template, method) is not None:
            return None
        methods = self.methods_in_spec.get(template, [])
        if method.upper() in methods:
            return "%s %s is in %s but not in %s, which lists the calls of tests/api_calls.py: add it there " \
                   "and run %s" % (method, template, self.data["source"]["file"], self.file, REGENERATE)
        return "the spec has no %s for this path (it has %s)" % (method, ", ".join(methods))

    def operation(self, template, method):
        return self.paths.get(template, {}).get("operations", {}).get(method.upper())

    def parameters(self, template, method, where):
        """The declared parameters of one kind ("path" or "query"), name to JSON Schema."""
        return self.operation(template, method)["%s_parameters" % where]

    def body_schema(self, template, method):
        return self.operation(template, method)["request_body"]


def validate(schema, instance):
    """Every error of ``instance`` against a translated schema, as text."""
    validator = jsonschema.Draft4Validator(schema)
    return ["%s: %s" % ("/".join(str(p) for p in err.absolute_path) or "<body>", err.message)
            for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))]


def _coerce(value, schema):
    """A path segment as the type its schema declares (path values arrive as text)."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "integer" in types or "number" in types:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number == int(number) else number
    return value


def check_request(spec, method, path, query, body, allowed_query=()):
    """Problems of one concrete request against the spec (empty when it conforms).

    ``allowed_query``: (template, name) pairs accepted although undeclared.
    """
    template = spec.template_for(path)
    if template is None:
        return ["%s %s: no such path in %s (it lists the calls of tests/api_calls.py; a new call needs an "
                "entry there and %s)" % (method, path, spec.name, REGENERATE)]
    where = "%s %s (%s)" % (method, path, template)
    missing = spec.missing_operation(template, method)
    if missing is not None:
        return ["%s: %s" % (where, missing)]
    problems = []
    operation = spec.operation(template, method)
    declared = spec.parameters(template, method, "query")
    for name in sorted(query or {}):
        if name in declared or (template, name) in allowed_query:
            continue
        if "query_parameters_not_declared" in operation and name not in operation["query_parameters_not_declared"]:
            problems.append("%s: query parameter %r is not among the filters tests/api_calls.py lists for this "
                            "call, so %s cannot tell whether it is declared (list it there and run %s)"
                            % (where, name, spec.file, REGENERATE))
        else:
            problems.append("%s: query parameter %r is not declared" % (where, name))
    path_params = spec.parameters(template, method, "path")
    names = re.findall(r"\{([^/]+?)\}", template)
    concrete = path[len(spec.prefix):] if path.startswith(spec.prefix + "/") else path
    values = re.match("^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "$", concrete).groups()
    for name, value in zip(names, values):
        schema = path_params.get(name)
        if schema is None:
            problems.append("%s: path parameter %r is not declared" % (where, name))
            continue
        for error in validate(schema, _coerce(value, schema)):
            problems.append("%s: path parameter %s=%r: %s" % (where, name, value, error))
    schema = spec.body_schema(template, method)
    if body is not None:
        if schema is None:
            problems.append("%s: sends a body but the operation declares none" % where)
        else:
            problems.extend("%s: body %s: %s" % (where, json.dumps(body, sort_keys=True), error)
                            for error in validate(schema, body))
    return problems


# -- Pangolin: the modules against the simulator ----------------------------------

@pytest.fixture(scope="module")
def pangolin_spec():
    return Spec(PANGOLIN_CONTRACT)


@pytest.fixture
def pg(pangolin_server, pangolin_spec):
    """A fresh Pangolin: org homelab, an http resource, an IdP with a policy for another org, a root key."""
    sim = pangolin_server
    sim.reset()
    sim.add_org("homelab", "Home Lab")
    sim.add_org("media")
    ns = SimpleNamespace(sim=sim, spec=pangolin_spec)
    ns.res = sim.add_resource("homelab", "Jellyfin", subdomain="jellyfin")
    ns.idp = sim.add_idp("authentik")
    sim.add_idp_org_policy(ns.idp, "media", "'Member'", "'media'")
    ns.key = sim.add_api_key(root=True)
    ns.conn = dict(pangolin_url=sim.base_url, pangolin_api_key=ns.key)

    def run(module, **args):
        result = run_module(module, dict(ns.conn, **args))
        assert not result.get("failed"), "%s %r failed: %s" % (module, args, result.get("msg"))
        return result

    ns.run = run
    return ns


def module_present(name):
    if not (MODULES / (name + ".py")).exists():
        pytest.skip("module %s is not part of the collection yet" % name)


def assert_conforms(ns, expect):
    """Check every logged request; ``expect`` lists (method, template) pairs that must have been exercised."""
    log = list(ns.sim.log)
    assert log, "the modules sent no request at all"
    problems, seen = [], set()
    for entry in log:
        assert 200 <= entry.status < 300, "%s %s answered %s: %r" % (entry.method, entry.path, entry.status,
                                                                     entry.body)
        problems.extend(check_request(ns.spec, entry.method, entry.path, entry.query, entry.body))
        template = ns.spec.template_for(entry.path)
        if template:
            seen.add((entry.method, template))
    assert not problems, "requests that do not match Pangolin's OpenAPI document:\n" + "\n".join(problems)
    missing = [pair for pair in expect if pair not in seen]
    assert not missing, "the scenario did not exercise %s; seen: %s" % (missing, sorted(seen))


def test_rule_lifecycle_conforms(pg):
    module_present("pangolin_rule")
    pg.run("pangolin_rule", resource_id=pg.res, priority=10, match="CIDR", value="192.168.1.0/24")
    pg.run("pangolin_rule", resource="jellyfin.example.com", org_id="homelab", priority=10, action="DROP",
           match="CIDR", value="192.168.2.0/24", enabled=False)
    pg.run("pangolin_rule", resource_id=pg.res, priority=100, webhook_owned=True)
    pg.run("pangolin_rule", resource_id=pg.res, priority=100, webhook_owned=True, action="PASS")
    pg.run("pangolin_rule", resource_id=pg.res, priority=20, match="PATH", value="/api/*")
    pg.run("pangolin_rule", resource_id=pg.res, priority=10, state="absent")
    pg.run("pangolin_rule", resource_id=pg.res, priority=10, state="absent")  # already gone
    assert [r["priority"] for r in pg.sim.rules(pg.res)] == [100, 20]
    assert_conforms(pg, [("PUT", "/resource/{resourceId}/rule"),
                         ("POST", "/resource/{resourceId}/rule/{ruleId}"),
                         ("DELETE", "/resource/{resourceId}/rule/{ruleId}"),
                         ("GET", "/resource/{resourceId}/rules"),
                         ("GET", "/org/{orgId}/resources")])


def test_resource_settings_conform(pg):
    module_present("pangolin_resource")
    pg.run("pangolin_resource", resource_id=pg.res, apply_rules=True)
    pg.run("pangolin_resource", resource_id=pg.res, apply_rules=True, sso=False)
    pg.run("pangolin_resource", resource_id=pg.res, apply_rules=False, sso=True)
    assert pg.sim.resource(pg.res)["applyRules"] is False
    assert_conforms(pg, [("GET", "/resource/{resourceId}"), ("POST", "/resource/{resourceId}")])


def test_idp_org_policy_lifecycle_conforms(pg):
    module_present("authentik_org_policy")
    pg.run("authentik_org_policy", idp_id=pg.idp, org_id="homelab", role_mapping="'Member'",
           org_mapping="'homelab'")
    pg.run("authentik_org_policy", idp_name="authentik", org_id="homelab", role_mapping="'Admin'",
           org_mapping="'homelab'")
    pg.run("authentik_org_policy", idp_id=pg.idp, org_id="homelab", role_mapping="'Admin'",
           org_mapping="'homelab'", auto_provision=True)
    pg.run("authentik_org_policy", idp_id=pg.idp, org_id="homelab", state="absent")
    assert [p["orgId"] for p in pg.sim.idp_policies(pg.idp)] == ["media"]
    assert pg.sim.idp(pg.idp)["idp"]["autoProvision"] is True
    assert_conforms(pg, [("PUT", "/idp/{idpId}/org/{orgId}"), ("POST", "/idp/{idpId}/org/{orgId}"),
                         ("DELETE", "/idp/{idpId}/org/{orgId}"), ("GET", "/idp/{idpId}/org"),
                         ("POST", "/idp/{idpId}/oidc"), ("GET", "/idp")])


def test_webhook_rule_update_body_conforms(pangolin_spec):
    """The body authentik's webhook mapping renders is a valid rule update (login IP and placeholder)."""
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._whitelist.body import (
        event_body_expression,
    )

    template = pangolin_spec.template_for("/v1/resource/3/rule/17")
    assert template == "/resource/{resourceId}/rule/{ruleId}"
    assert pangolin_spec.operation(template, "POST") is not None
    schema = pangolin_spec.body_schema(template, "POST")
    for client_ip in ("203.0.113.7", "2001:db8::7", None):
        expression = event_body_expression(150, action="ACCEPT", placeholder="0.0.0.0", enabled=True)
        event = SimpleNamespace(client_ip=client_ip)
        request = SimpleNamespace(context={"notification": SimpleNamespace(event=event)})
        code = "def handler(request):\n" + "\n".join("    " + line for line in expression.splitlines())
        scope = {}
        exec(compile(code, "<webhook mapping>", "exec"), scope)  # noqa: S102 - our own rendered text
        body = scope["handler"](request)
        assert validate(schema, body) == [], body
        assert body["value"] == (client_ip or "0.0.0.0")


# -- Pangolin: every route of the client, exercised or not ------------------------

def pangolin_route_problem(spec, method, generic):
    """Why ``method generic`` is not an operation of the contract (None when it is)."""
    problem = spec.not_in_spec(method, generic)
    if problem is not None:
        return problem
    template = spec.template_for_generic(generic)
    if template is None:
        return "%s %s: not in %s (run %s)" % (method, generic, spec.file, REGENERATE)
    missing = spec.missing_operation(template, method)
    if missing is not None:
        return "%s %s (%s): %s" % (method, generic, template, missing)
    return None


def test_every_pangolin_client_route_exists(pangolin_spec):
    calls = pangolin_client_calls()
    assert len(calls) >= 10, "found only %d routes in the Pangolin client; did its style change?" % len(calls)
    problems = [pangolin_route_problem(pangolin_spec, method, path) for method, path in calls]
    # the webhook transport authentik POSTs to
    assert "/v1/resource/" in PANGOLIN_WEBHOOK_SOURCE.read_text(), \
        "%s no longer builds the webhook URL; where does it live now?" % PANGOLIN_WEBHOOK_SOURCE.relative_to(REPO)
    problems.append(pangolin_route_problem(pangolin_spec, *PANGOLIN_WEBHOOK_TARGET))
    # the reads of the feature under way
    problems.extend(pangolin_route_problem(pangolin_spec, method, path) for method, path in PANGOLIN_PLANNED_CALLS)
    problems = [p for p in problems if p is not None]
    assert not problems, "\n".join(problems)


# -- authentik: the client's calls against the schema --------------------------------

@pytest.fixture(scope="module")
def authentik_spec():
    return Spec(AUTHENTIK_CONTRACT)


@pytest.mark.parametrize("method,path,query", AUTHENTIK_CALLS, ids=["%s %s" % c[:2] for c in AUTHENTIK_CALLS])
def test_authentik_call_exists(authentik_spec, method, path, query):
    problem = authentik_spec.not_in_spec(method, path)
    assert problem is None, problem
    template = authentik_spec.template_for_generic(path)
    assert template is not None, "%s %s: not in %s (run %s)" % (method, path, authentik_spec.file, REGENERATE)
    missing = authentik_spec.missing_operation(template, method)
    assert missing is None, "%s %s: %s" % (method, template, missing)
    declared = authentik_spec.parameters(template, method, "query")
    not_declared = authentik_spec.operation(template, method)["query_parameters_not_declared"]
    unknown = [q for q in query if q not in declared and q not in not_declared]
    assert not unknown, "%s %s: %s does not know the filters %s yet (run %s)" % (
        method, template, authentik_spec.file, unknown, REGENERATE)
    undeclared = [q for q in query if q not in declared and (path, q) not in KNOWN_UNDECLARED_FILTERS]
    assert not undeclared, "%s %s: query parameters %s are not declared (authentik would ignore them)" % (
        method, template, undeclared)


def test_known_undeclared_filters_are_still_undeclared(authentik_spec):
    """Drop an exception from the list once authentik declares the filter."""
    for (path, name), reason in KNOWN_UNDECLARED_FILTERS.items():
        template = authentik_spec.template_for_generic(path)
        assert name in authentik_spec.operation(template, "GET")["query_parameters_not_declared"], \
            "%s (not in %s: run %s)" % (reason, authentik_spec.file, REGENERATE)
        assert name not in authentik_spec.parameters(template, "GET", "query"), reason


def test_authentik_call_list_covers_the_client():
    """Every API path literal in the authentik code must be in AUTHENTIK_CALLS (keeps the list honest)."""
    sources = [p for p in sorted(MODULE_UTILS.rglob("*.py")) if "_pangolin" not in p.relative_to(MODULE_UTILS).parts]
    sources += sorted(MODULES.glob("authentik_*.py")) + sorted(MODULES.glob("login_ip_whitelist*.py"))
    assert any(p.match("_authentik/*.py") for p in sources), "the authentik client is not where this test looks"
    known = set(re.sub(r"\{\}", "%s", p) for _m, p, _q in AUTHENTIK_CALLS)
    missing = []
    for source in sources:
        if not source.exists():
            continue
        for literal in re.findall(r'"(/[a-z_]+/[a-z_%/]*)"', source.read_text()):
            if literal == "/api/v3" or literal.startswith("/v1/"):
                continue
            if literal == "/%s/all/":  # owner_of_name(family, ...)
                continue
            if literal == "/core/groups/%s/%s/":  # add_user / remove_user
                continue
            if literal not in known:
                missing.append("%s: %s" % (source.relative_to(REPO), literal))
    assert not missing, "paths used by the client but not in AUTHENTIK_CALLS: %s" % missing
    text = "\n".join(s.read_text() for s in sources if s.exists())
    for family in set(re.findall(r'family = "([a-z_]+)"', text)):  # owner_of_name reads /<family>/all/
        assert "/%s/all/" % family in known, family


# -- the whole chain: both servers, the webhook included -----------------------------

def test_whitelist_chain_conforms_to_both_specs(pangolin_spec, authentik_spec):
    """login_ip_whitelist and its companions against both simulators, then a login.

    Every request the modules send to either server, and the webhook authentik
    then POSTs to Pangolin, must match the published API.
    """
    for name in ("login_ip_whitelist", "authentik_webhook_mapping", "pangolin_resource"):
        module_present(name)
    try:
        from tests.simulators.authentik import AuthentikSimulator
    except ImportError as exc:  # its own requirements (authentik-client) missing
        pytest.skip("authentik simulator not importable: %s" % exc)

    ak, pg = AuthentikSimulator(), PangolinSimulator()
    ak.start()
    pg.start()
    try:
        token = "ak-conformance-token-5d1e8a0c7b2f4e69"
        ak.add_token(token)
        for username in ("alice", "bob"):
            ak.add_user(username, name=username.title(), email="%s@example.com" % username)
        res = pg.add_resource("homelab", "Jellyfin", subdomain="jellyfin")
        root = pg.add_api_key(root=True)
        hook = pg.add_api_key(org_id="homelab", actions=["updateResourceRule"])
        pconn = dict(pangolin_url=pg.base_url, pangolin_api_key=root)
        aconn = dict(authentik_url=ak.base_url, authentik_token=token)

        def run(module, **args):
            result = run_module(module, args)
            assert not result.get("failed"), "%s failed: %s" % (module, result.get("msg"))
            return result

        run("pangolin_resource", resource_id=res, apply_rules=True, **pconn)
        run("authentik_webhook_mapping", name="pangolin-headers", template="pangolin_headers",
            webhook_api_key=hook, **aconn)
        whitelist = dict(pconn, **aconn)
        whitelist.update(resource_id=res, headers_mapping="pangolin-headers")
        run("login_ip_whitelist", users=[{"username": "alice"}, {"username": "bob", "priority": 120}], **whitelist)
        run("login_ip_whitelist", users=[{"username": "alice"}, {"username": "bob", "priority": 120}], **whitelist)
        ak.login("alice", "203.0.113.9")
        assert "203.0.113.9" in [r["value"] for r in pg.rules(res)], "the login did not reach Pangolin"
        run("login_ip_whitelist", users=[{"username": "alice"}], prune=True, **whitelist)
        assert len(pg.rules(res)) == 1

        problems = []
        for entry in pg.log:
            assert 200 <= entry.status < 300, "Pangolin: %s %s answered %s" % (entry.method, entry.path, entry.status)
            problems.extend(check_request(pangolin_spec, entry.method, entry.path, entry.query, entry.body))
        assert any(e.method == "POST" and re.search(r"/rule/\d+$", e.path) and e.authorization
                   for e in pg.log), "no rule update reached Pangolin"
        allowed = set((authentik_spec.template_for_generic(path), name) for path, name in KNOWN_UNDECLARED_FILTERS)
        for entry in ak.log:
            if entry.path.startswith("/_sim/"):  # the simulator's own control route
                continue
            problems.extend(check_request(authentik_spec, entry.method, entry.path, entry.query, entry.body,
                                          allowed_query=allowed))
        checked = [e for e in ak.log if not e.path.startswith("/_sim/")]
        assert len([e for e in checked if e.body is not None]) >= 8, "too few authentik writes were checked"
        assert not problems, "requests that do not match the published APIs:\n" + "\n".join(problems)
    finally:
        ak.stop()
        pg.stop()
