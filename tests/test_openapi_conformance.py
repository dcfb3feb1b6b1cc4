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
client makes are listed here and checked against authentik's schema; a guard
test fails when the client grows a path the list does not know.

The specs are read from ``../shared/specs`` beside the checkout; without them
the tests skip and say so (in CI, with CI=true, they fail).
"""

import copy
import importlib.util
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

jsonschema = pytest.importorskip("jsonschema")

from tests.module_harness import run_module  # noqa: E402
from tests.simulators.pangolin import PangolinSimulator  # noqa: E402
from tests.specs import missing_spec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO.parent / "shared" / "specs"
PANGOLIN_SPEC = SPECS / "pangolin-openapi.json"
AUTHENTIK_SPEC = SPECS / "authentik-schema.yml"
MODULES = REPO / "plugins" / "modules"
MODULE_UTILS = REPO / "plugins" / "module_utils"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


# -- OpenAPI 3.0 -> JSON Schema ------------------------------------------------

def _resolve(spec, ref):
    if not ref.startswith("#/"):
        raise AssertionError("only local $refs are supported, got %r" % ref)
    node = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(spec, schema, _seen=()):
    """Translate an OpenAPI 3.0 schema object into draft-4 JSON Schema.

    Inlines local ``$ref``s, turns ``nullable: true`` into a null-accepting
    type, keeps draft-4 boolean ``exclusiveMinimum``/``exclusiveMaximum``,
    reads an ``allOf`` of closed objects as the union it stands for, and
    drops the OpenAPI-only keywords.
    """
    if isinstance(schema, list):
        return [to_json_schema(spec, s, _seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in _seen:  # recursive schema: stop expanding, accept anything below
            return {}
        return to_json_schema(spec, _resolve(spec, ref), _seen + (ref,))
    out = {}
    for key, value in schema.items():
        if key in ("nullable", "discriminator", "readOnly", "writeOnly", "xml", "externalDocs", "example",
                   "deprecated") or key.startswith("x-"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = dict((name, to_json_schema(spec, sub, _seen)) for name, sub in value.items())
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(spec, value, _seen)
        else:
            out[key] = copy.deepcopy(value)
    members = out.get("allOf")
    if members and len(members) > 1 and all(m.get("additionalProperties") is False for m in members):
        # zod-to-openapi renders a union of closed object schemas (Pangolin's
        # "http resource or raw resource" update body) as allOf, which no body
        # but {} could satisfy; the server accepts either alternative.
        out["anyOf"] = out.pop("allOf")
    if schema.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


class Spec(object):
    """The paths of one OpenAPI document, matchable against concrete request paths."""

    def __init__(self, doc, server_prefix):
        self.doc = doc
        self.prefix = server_prefix.rstrip("/")
        self.templates = []
        for template in doc["paths"]:
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            literal = len(re.sub(r"\{[^/]+?\}", "", template))
            self.templates.append((re.compile(pattern), literal, template))

    def template_for(self, path):
        """The spec's templated path for a concrete one; the most literal match wins."""
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix):]
        matches = sorted((-literal, template) for pattern, literal, template in self.templates
                         if pattern.match(path))
        return matches[0][1] if matches else None

    def template_for_generic(self, generic):
        """Match a path written with ``{}`` placeholders (static lists) to the spec's template."""
        wanted = re.sub(r"\{[^/]*\}", "{}", generic)
        for _pattern, _literal, template in self.templates:
            if re.sub(r"\{[^/]*\}", "{}", template) == wanted:
                return template
        return None

    def operation(self, template, method):
        return self.doc["paths"][template].get(method.lower())

    def parameters(self, template, method, where):
        item = self.doc["paths"][template]
        params = list(item.get("parameters", [])) + list(self.operation(template, method).get("parameters", []))
        out = {}
        for param in params:
            if "$ref" in param:
                param = _resolve(self.doc, param["$ref"])
            if param.get("in") == where:
                out[param["name"]] = param
        return out

    def body_schema(self, template, method):
        body = self.operation(template, method).get("requestBody")
        if body is None:
            return None
        if "$ref" in body:
            body = _resolve(self.doc, body["$ref"])
        content = body.get("content", {})
        media = content.get("application/json") or next(iter(content.values()), {})
        schema = media.get("schema")
        return None if schema is None else to_json_schema(self.doc, schema)


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
        return ["%s %s: no such path in the spec" % (method, path)]
    where = "%s %s (%s)" % (method, path, template)
    if spec.operation(template, method) is None:
        return ["%s: the spec has no %s for this path (it has %s)" % (
            where, method, ", ".join(m.upper() for m in spec.doc["paths"][template] if m in METHODS))]
    problems = []
    declared = spec.parameters(template, method, "query")
    for name in sorted(query or {}):
        if name not in declared and (template, name) not in allowed_query:
            problems.append("%s: query parameter %r is not declared" % (where, name))
    path_params = spec.parameters(template, method, "path")
    names = re.findall(r"\{([^/]+?)\}", template)
    concrete = path[len(spec.prefix):] if path.startswith(spec.prefix + "/") else path
    values = re.match("^" + re.sub(r"\\\{[^/]+?\\\}", "([^/]+)", re.escape(template)) + "$", concrete).groups()
    for name, value in zip(names, values):
        param = path_params.get(name)
        if param is None:
            problems.append("%s: path parameter %r is not declared" % (where, name))
            continue
        schema = to_json_schema(spec.doc, param.get("schema", {}))
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
    if not PANGOLIN_SPEC.exists():
        missing_spec("Pangolin OpenAPI document not available at %s" % PANGOLIN_SPEC)
    doc = json.loads(PANGOLIN_SPEC.read_text())
    servers = doc.get("servers") or [{"url": ""}]
    return Spec(doc, servers[0]["url"])


@pytest.fixture(scope="module")
def pangolin_server():
    sim = PangolinSimulator()
    sim.start()
    yield sim
    sim.stop()


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
    spec_ = importlib.util.find_spec("ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render")
    if spec_ is None:
        pytest.skip("render module_utils not available")
    from ansible_collections.homelab.pangolin_authentik.plugins.module_utils._authentik.render import rule_body_expression

    template = pangolin_spec.template_for("/v1/resource/3/rule/17")
    assert template == "/resource/{resourceId}/rule/{ruleId}"
    assert pangolin_spec.operation(template, "POST") is not None
    schema = pangolin_spec.body_schema(template, "POST")
    for client_ip in ("203.0.113.7", "2001:db8::7", None):
        expression = rule_body_expression(150, action="ACCEPT", placeholder="0.0.0.0", enabled=True)
        event = SimpleNamespace(client_ip=client_ip)
        request = SimpleNamespace(context={"notification": SimpleNamespace(event=event)})
        code = "def handler(request):\n" + "\n".join("    " + line for line in expression.splitlines())
        scope = {}
        exec(compile(code, "<webhook mapping>", "exec"), scope)  # noqa: S102 - our own rendered text
        body = scope["handler"](request)
        assert validate(schema, body) == [], body
        assert body["value"] == (client_ip or "0.0.0.0")


# -- Pangolin: every route of the client, exercised or not ------------------------

CALL = re.compile(r'self\.call\(\s*"(GET|PUT|POST|DELETE|PATCH)",\s*"([^"]+)"')


def test_every_pangolin_client_route_exists(pangolin_spec):
    source = (MODULE_UTILS / "pangolin.py").read_text()
    calls = sorted(set(CALL.findall(source)))
    assert len(calls) >= 10, "found only %d routes in the Pangolin client; did its style change?" % len(calls)
    problems = []
    for method, path in calls:
        generic = re.sub(r"%[ds]", "{}", path)
        template = pangolin_spec.template_for_generic(generic)
        if template is None:
            problems.append("%s %s: no such path" % (method, path))
        elif pangolin_spec.operation(template, method) is None:
            problems.append("%s %s (%s): no such method" % (method, path, template))
    # the webhook transport authentik POSTs to
    if (MODULE_UTILS / "runner.py").exists():
        assert "/v1/resource/" in (MODULE_UTILS / "runner.py").read_text()
        template = pangolin_spec.template_for_generic("/resource/{}/rule/{}")
        if template is None or pangolin_spec.operation(template, "POST") is None:
            problems.append("POST /resource/{}/rule/{} (webhook target): not in the spec")
    assert not problems, "\n".join(problems)


# -- authentik: the client's calls against the schema --------------------------------

# (method, path with {} for ids, query parameters sent). Collection endpoints
# are listed with the page parameters the client always adds.
PAGE = ("page", "page_size")
AUTHENTIK_CALLS = [
    ("GET", "/admin/version/", ()),
    ("GET", "/core/users/", PAGE + ("username", "include_groups")),
    ("POST", "/core/users/", ()),
    ("PATCH", "/core/users/{}/", ()),
    ("DELETE", "/core/users/{}/", ()),
    ("POST", "/core/users/{}/set_password/", ()),
    ("GET", "/core/groups/", PAGE + ("name", "include_users")),
    ("POST", "/core/groups/", ()),
    ("PATCH", "/core/groups/{}/", ()),
    ("DELETE", "/core/groups/{}/", ()),
    ("POST", "/core/groups/{}/add_user/", ()),
    ("POST", "/core/groups/{}/remove_user/", ()),
    ("GET", "/propertymappings/all/", PAGE + ("name",)),
    ("GET", "/policies/all/", PAGE + ("name",)),
    ("GET", "/policies/bindings/", PAGE + ("target", "target_in")),
    ("POST", "/policies/bindings/", ()),
    ("PUT", "/policies/bindings/{}/", ()),
    ("DELETE", "/policies/bindings/{}/", ()),
    # the doctor and expiry: what authentik recorded
    ("GET", "/events/events/", PAGE + ("action", "username", "ordering")),
    ("GET", "/tasks/tasks/", PAGE + ("aggregated_status", "rel_obj_content_type__app_label",
                                     "rel_obj_content_type__model", "ordering", "state", "actor_name")),
    # follow_sessions reads every session; a revocation ends the user's own
    ("GET", "/core/authenticated_sessions/", PAGE + ("user__username",)),
    ("DELETE", "/core/authenticated_sessions/{}/", ()),
]
for _collection in ("/propertymappings/notification/", "/policies/expression/", "/policies/event_matcher/",
                    "/events/transports/", "/events/rules/"):
    AUTHENTIK_CALLS += [("GET", _collection, PAGE + ("name",)), ("POST", _collection, ()),
                        ("PATCH", _collection + "{}/", ()), ("DELETE", _collection + "{}/", ())]

# Filters authentik does not declare (it ignores unknown filters silently). Each
# is only acceptable because the client re-checks the field on every row.
KNOWN_UNDECLARED_FILTERS = {
    ("/policies/all/", "name"): "authentik has no name filter on /policies/all/; find_by re-checks names "
                                "client-side, so this only costs reading every page",
}


@pytest.fixture(scope="module")
def authentik_spec():
    if not AUTHENTIK_SPEC.exists():
        missing_spec("authentik schema not available at %s" % AUTHENTIK_SPEC)
    yaml = pytest.importorskip("yaml")
    doc = yaml.load(AUTHENTIK_SPEC.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    servers = doc.get("servers") or [{"url": ""}]
    return Spec(doc, servers[0]["url"])


@pytest.mark.parametrize("method,path,query", AUTHENTIK_CALLS, ids=["%s %s" % c[:2] for c in AUTHENTIK_CALLS])
def test_authentik_call_exists(authentik_spec, method, path, query):
    template = authentik_spec.template_for_generic(path)
    assert template is not None, "%s %s: no such path in authentik's schema" % (method, path)
    assert authentik_spec.operation(template, method) is not None, \
        "%s %s: authentik's schema has only %s" % (method, template, sorted(authentik_spec.doc["paths"][template]))
    declared = authentik_spec.parameters(template, method, "query")
    undeclared = [q for q in query if q not in declared and (path, q) not in KNOWN_UNDECLARED_FILTERS]
    assert not undeclared, "%s %s: query parameters %s are not declared (authentik would ignore them)" % (
        method, template, undeclared)


def test_known_undeclared_filters_are_still_undeclared(authentik_spec):
    """Drop an exception from the list once authentik declares the filter."""
    for (path, name), reason in KNOWN_UNDECLARED_FILTERS.items():
        template = authentik_spec.template_for_generic(path)
        assert name not in authentik_spec.parameters(template, "GET", "query"), reason


def test_authentik_call_list_covers_the_client():
    """Every API path literal in the authentik code must be in AUTHENTIK_CALLS (keeps the list honest)."""
    sources = [p for p in sorted(MODULE_UTILS.glob("*.py")) if not p.name.startswith("pangolin")] + \
        sorted(MODULES.glob("authentik_*.py")) + sorted(MODULES.glob("login_ip_whitelist*.py"))
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
                missing.append("%s: %s" % (source.name, literal))
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
