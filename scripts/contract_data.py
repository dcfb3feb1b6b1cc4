#!/usr/bin/env python3
"""Derive the API contract data under tests/contract/ from the reference specs.

    python scripts/contract_data.py                 # (re)write tests/contract/*.json
    python scripts/contract_data.py --check         # exit 1 if regenerating would change a file
    python scripts/contract_data.py --specs DIR     # read the specs from DIR

The reference specs live in ``../shared/specs`` beside the checkout (Pangolin's
OpenAPI document, authentik's schema and the transcripts observed on real
servers). From them this writes, trimmed to what the collection uses:

- ``pangolin.json``, ``authentik.json``: the operations the collection calls
  (``tests/api_calls.py``), each with its path and query parameters and its
  request-body schema, translated from OpenAPI 3.0 to plain draft-4 JSON
  Schema with every ``$ref`` inlined;
- ``observed-pangolin.json``, ``observed-authentik.json``: the observed
  exchanges the replay tests send again, with what they assert of each answer.

Each file names its source and that file's sha256. See tests/contract/README.md.
Needs the standard library, PyYAML and jsonschema only.
"""

import argparse
import copy
import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "tests" / "contract"
DEFAULT_SPECS = REPO.parent / "shared" / "specs"
FORMAT = 1
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

PANGOLIN_SPEC = "pangolin-openapi.json"
AUTHENTIK_SPEC = "authentik-schema.yml"
OBSERVED_PANGOLIN = "observed-pangolin-1.22.0.json"
OBSERVED_AUTHENTIK = "observed-authentik-2026.5.0-rc1.json"


def load_calls():
    """tests/api_calls.py, loaded from its file (it needs nothing from the test suite)."""
    spec = importlib.util.spec_from_file_location("api_calls", REPO / "tests" / "api_calls.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dump(data):
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- OpenAPI 3.0 -> JSON Schema ------------------------------------------------

def resolve(doc, ref):
    if not ref.startswith("#/"):
        raise ValueError("only local $refs are supported, got %r" % ref)
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(doc, schema, _seen=()):
    """Translate an OpenAPI 3.0 schema object into draft-4 JSON Schema.

    Inlines local ``$ref``s, turns ``nullable: true`` into a null-accepting
    type, keeps draft-4 boolean ``exclusiveMinimum``/``exclusiveMaximum``,
    reads an ``allOf`` of closed objects as the union it stands for, and
    drops the OpenAPI-only keywords.
    """
    if isinstance(schema, list):
        return [to_json_schema(doc, s, _seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in _seen:  # recursive schema: stop expanding, accept anything below
            return {}
        return to_json_schema(doc, resolve(doc, ref), _seen + (ref,))
    out = {}
    for key, value in schema.items():
        if key in ("nullable", "discriminator", "readOnly", "writeOnly", "xml", "externalDocs", "example",
                   "deprecated") or key.startswith("x-"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = dict((name, to_json_schema(doc, sub, _seen)) for name, sub in value.items())
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(doc, value, _seen)
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


def checked(schema, where):
    """A translated schema, after making sure it is valid draft-4 JSON Schema."""
    try:
        jsonschema.Draft4Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SystemExit("%s: the translated schema is not valid draft-4 JSON Schema: %s" % (where, exc.message))
    return schema


# -- operations ----------------------------------------------------------------

def generic(template):
    return re.sub(r"\{[^/]*\}", "{}", template)


def literal_length(template):
    return len(re.sub(r"\{[^/]+?\}", "", template))


def segments_overlap(a, b):
    """Whether some concrete path segment could match both template segments."""
    if "{" not in a and "{" not in b:
        return a == b
    if "{" in a and "{" in b:
        return True  # two parameters (or mixed segments): assume they can meet
    pattern, text = (a, b) if "{" in a else (b, a)
    return re.match("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(pattern)) + "$", text) is not None


def overlaps(a, b):
    left, right = a.split("/"), b.split("/")
    return len(left) == len(right) and all(segments_overlap(x, y) for x, y in zip(left, right))


def methods_of(item):
    return sorted(m.upper() for m in item if m in METHODS)


def parameters(doc, template, method):
    """The operation's parameters by (in, name); operation-level ones override path-level ones."""
    item = doc["paths"][template]
    out = {}
    for param in list(item.get("parameters", [])) + list(item[method.lower()].get("parameters", [])):
        if "$ref" in param:
            param = resolve(doc, param["$ref"])
        out[(param.get("in"), param["name"])] = param
    return out


def request_body(doc, operation):
    """(translated schema, model name or None) of the operation's JSON request body, or (None, None)."""
    body = operation.get("requestBody")
    if body is None:
        return None, None
    if "$ref" in body:
        body = resolve(doc, body["$ref"])
    content = body.get("content", {})
    media = content.get("application/json") or next(iter(content.values()), {})
    schema = media.get("schema")
    if schema is None:
        return None, None
    model = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else None
    return to_json_schema(doc, schema), model


def contract(doc, source, wanted, filters=None):
    """The contract data of ``wanted`` ((method, path with {}) pairs) in one OpenAPI document.

    ``filters``: for each wanted pair, the query parameters the client sends;
    only those are kept, split into declared and not declared. Without it every
    declared query parameter is kept.
    """
    by_generic = {}
    for template in doc["paths"]:
        by_generic.setdefault(generic(template), []).append(template)
    paths, not_in_spec = {}, []
    for method, path in wanted:
        templates = by_generic.get(generic(path), [])
        if len(templates) > 1:
            raise SystemExit("%s: %s %s matches several templates: %s" % (source.name, method, path, templates))
        if not templates:
            not_in_spec.append({"method": method, "path": path, "problem": "no such path"})
            continue
        template = templates[0]
        item = doc["paths"][template]
        if method.lower() not in item:
            not_in_spec.append({"method": method, "path": path,
                                "problem": "no %s for %s (it has %s)" % (method, template,
                                                                         ", ".join(methods_of(item)))})
            continue
        where = "%s %s %s" % (source.name, method, template)
        params = parameters(doc, template, method)
        query = dict((name, param) for (place, name), param in params.items() if place == "query")
        record = {
            "path_parameters": dict((name, checked(to_json_schema(doc, param.get("schema", {})), where))
                                    for (place, name), param in sorted(params.items()) if place == "path"),
        }
        if filters is None:
            record["query_parameters"] = dict((name, checked(to_json_schema(doc, param.get("schema", {})), where))
                                              for name, param in sorted(query.items()))
        else:
            sent = filters[(method, path)]
            record["query_parameters"] = dict((name, checked(to_json_schema(doc, query[name].get("schema", {})),
                                                             where))
                                              for name in sorted(sent) if name in query)
            record["query_parameters_not_declared"] = sorted(name for name in sent if name not in query)
        body, model = request_body(doc, item[method.lower()])
        record["request_body"] = None if body is None else checked(body, where)
        if model is not None:
            record["request_model"] = model
        entry = paths.setdefault(template, {"methods_in_spec": methods_of(item), "operations": {}})
        entry["operations"][method] = record
    overlapping = {}
    for template in doc["paths"]:
        if template in paths:
            continue
        if any(overlaps(template, mine) and literal_length(template) >= literal_length(mine) for mine in paths):
            overlapping[template] = methods_of(doc["paths"][template])
    servers = doc.get("servers") or [{"url": ""}]
    return {
        "format": FORMAT,
        "source": {"file": source.name, "sha256": sha256(source), "info_version": doc["info"]["version"],
                   "title": doc["info"].get("title")},
        "server_prefix": servers[0]["url"].rstrip("/"),
        "paths": paths,
        "overlapping_paths": overlapping,
        "not_in_spec": not_in_spec,
    }


def pangolin_contract(specs, calls):
    source = specs / PANGOLIN_SPEC
    return contract(json.loads(source.read_text(encoding="utf-8")), source, calls.pangolin_calls())


def authentik_contract(specs, calls):
    source = specs / AUTHENTIK_SPEC
    doc = yaml.load(source.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    filters = {}
    for method, path, query in calls.AUTHENTIK_CALLS:
        filters.setdefault((method, path), set()).update(query)
    wanted = sorted(filters)
    for (path, name) in calls.KNOWN_UNDECLARED_FILTERS:
        if ("GET", path) not in filters or name not in filters[("GET", path)]:
            raise SystemExit("KNOWN_UNDECLARED_FILTERS names %s %r, which AUTHENTIK_CALLS does not send"
                             % (path, name))
    return contract(doc, source, wanted, filters)


# -- observed transcripts ------------------------------------------------------

# What each replay test asserts of an answer (the rest of the recorded answer is dropped).
EXPECT_FIELDS = {
    "authentik": ("status", "json", "keys", "pagination_keys", "result_keys"),
    "pangolin": ("status", "json", "type", "keys", "success", "error", "env_status", "message", "data_type",
                 "data_keys"),
}


def observed(source, server_kind):
    raw = json.loads(source.read_text(encoding="utf-8"))
    exchanges = []
    captured = raw.get("captured", {})
    unknown = set(captured) - set(str(i) for i in range(len(raw["steps"])))
    if unknown:
        raise SystemExit("%s: captures for steps that do not exist: %s" % (source.name, sorted(unknown)))
    for index, step in enumerate(raw["steps"]):
        parts = urlsplit(step["path"])
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if urlencode(query) != parts.query or parts.fragment:
            raise SystemExit("%s: step %d: the query of %r does not survive as a mapping"
                             % (source.name, index, step["path"]))
        seen = step["observed"]
        exchange = {
            "request": {"method": step["method"], "path": parts.path, "query": query,
                        "headers": step["headers"] or {}, "body": step["body"]},
            "expect": dict((key, seen[key]) for key in EXPECT_FIELDS[server_kind] if key in seen),
        }
        if str(index) in captured:
            exchange["capture"] = captured[str(index)]
        exchanges.append(exchange)
    return {
        "format": FORMAT,
        "source": {"file": source.name, "sha256": sha256(source)},
        "server": raw["server"],
        "how_observed": raw.get("how_observed"),
        "placeholders": raw.get("placeholders_given") or {},
        "exchanges": exchanges,
    }


# -- main ----------------------------------------------------------------------

def generate(specs):
    """{file name: text} of every contract file."""
    calls = load_calls()
    files = {
        "pangolin.json": pangolin_contract(specs, calls),
        "authentik.json": authentik_contract(specs, calls),
        "observed-pangolin.json": observed(specs / OBSERVED_PANGOLIN, "pangolin"),
        "observed-authentik.json": observed(specs / OBSERVED_AUTHENTIK, "authentik"),
    }
    for name, data in files.items():
        for missing in data.get("not_in_spec", []):
            print("warning: %s: %s %s is not in %s: %s" % (name, missing["method"], missing["path"],
                                                           data["source"]["file"], missing["problem"]),
                  file=sys.stderr)
    return dict((name, dump(data)) for name, data in files.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS,
                        help="the reference specs (default: ../shared/specs beside the checkout)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if regenerating would change a file under tests/contract/")
    args = parser.parse_args(argv)
    specs = args.specs.resolve()
    if not specs.is_dir():
        if args.check:
            print("contract data: %s is not there; the tests replay tests/contract/ as it is, and the data is "
                  "checked against the specs where they are beside the checkout" % specs)
            return 0
        print("contract data: %s is not there; cannot regenerate" % specs, file=sys.stderr)
        return 2
    needed = (PANGOLIN_SPEC, AUTHENTIK_SPEC, OBSERVED_PANGOLIN, OBSERVED_AUTHENTIK)
    absent = [name for name in needed if not (specs / name).is_file()]
    if absent:
        print("contract data: %s lacks %s" % (specs, ", ".join(absent)), file=sys.stderr)
        return 2
    files = generate(specs)
    relative = CONTRACT.relative_to(REPO)
    if args.check:
        stale = [name for name, text in sorted(files.items())
                 if not (CONTRACT / name).is_file() or (CONTRACT / name).read_text(encoding="utf-8") != text]
        extra = sorted(p.name for p in CONTRACT.glob("*.json") if p.name not in files)
        for name in stale:
            print("contract data: %s/%s differs from what %s gives" % (relative, name, specs))
        for name in extra:
            print("contract data: %s/%s is not generated from the specs" % (relative, name))
        if stale or extra:
            print("contract data: out of date; run python scripts/contract_data.py")
            return 1
        print("contract data: %s/ matches %s (%d files)" % (relative, specs, len(files)))
        return 0
    CONTRACT.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        path = CONTRACT / name
        changed = not path.is_file() or path.read_text(encoding="utf-8") != text
        if changed:
            path.write_text(text, encoding="utf-8")
        print("%-8s %s/%s (%d bytes)" % ("written" if changed else "same", relative, name, len(text.encode())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
