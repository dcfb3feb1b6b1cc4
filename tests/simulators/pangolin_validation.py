"""What the Pangolin simulator's Integration API checks a request against: a zod look-alike,
the rule value checks of ``server/lib/validators.ts`` and the routes' field schemas.

Part of the Pangolin simulator (``tests/simulators/pangolin.py`` puts the parts together);
the routes in ``pangolin_api.py`` use it. Bodies and list queries are strict zod schemas
with zod's messages (§3, §7; section numbers refer to the project's Pangolin API
reference). The request log's query (``request_log_query``, used by ``pangolin_logs.py``)
is checked the same way, its time bounds with a model of JS ``Date.parse``
(``js_date_parse``); a query name given twice is an array, as Express 5's parser makes it.
"""

import email.utils
import ipaddress
import math
import re

ACTIONS = ("ACCEPT", "DROP", "PASS")
MATCHES = ("CIDR", "IP", "PATH", "COUNTRY", "COUNTRY_IS_NOT", "ASN", "REGION")
RULE_MODES = ("http", "ssh", "rdp", "vnc")  # §3.1: rules only on these modes

# server/db/countries.ts: ISO-3166 alpha-2 codes (upper case only) plus ALL
COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW ALL
""".split())

# server/db/regions.ts: UN M.49 regions and sub-regions
REGIONS = frozenset("""
002 015 202 014 017 018 011 019 419 029 013 005 021 142 143 030 035 034 145
150 151 154 039 155 009 053 054 057 061
""".split())

PATH_CHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;#=@:]")
V4_PREFIX = re.compile(r"^(3[0-2]|[12]?[0-9])$")
V6_PREFIX = re.compile(r"^(12[0-8]|1[01][0-9]|[1-9]?[0-9])$")


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# -- zod look-alike ------------------------------------------------------
# A field spec is (kind, options). kinds: int, number, bool, str, enum, array,
# tuple (z.tuple([item], item): an array whose first item is required).
# Messages follow zod v4 + zod-validation-error, e.g.
# 'Validation error: Invalid input: expected number, received undefined at "priority"'.

def _js_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "NaN" if value != value else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


EXPECTED = {"int": "number", "number": "number", "bool": "boolean", "str": "string", "array": "array",
            "tuple": "tuple"}


def _check_field(kind, opts, value):
    """Return a zod message for one present value, or None."""
    if value is None and opts.get("nullable"):
        return None
    if kind == "enum":
        if value not in opts["values"]:
            return "Invalid option: expected one of %s" % "|".join('"%s"' % v for v in opts["values"])
        return None
    expected = EXPECTED[kind]
    if kind == "tuple" and isinstance(value, list):
        return None
    if _js_type(value) != expected:
        return "Invalid input: expected %s, received %s" % (expected, _js_type(value))
    if kind == "int" and not (math.isfinite(value) and value == int(value)):
        return "Invalid input: expected int, received number"  # z.int() on 1.5
    if kind in ("int", "number"):
        if "gt" in opts and not value > opts["gt"]:
            return "Too small: expected number to be >%s" % opts["gt"]
        if "min" in opts and value < opts["min"]:
            return "Too small: expected number to be >=%s" % opts["min"]
        if "max" in opts and value > opts["max"]:
            return "Too big: expected number to be <=%s" % opts["max"]
    if kind == "str":
        if "min" in opts and len(value) < opts["min"]:
            return "Too small: expected string to have >=%d characters" % opts["min"]
        if "max" in opts and len(value) > opts["max"]:
            return "Too big: expected string to have <=%d characters" % opts["max"]
        if "regex" in opts and not re.search(opts["regex"], value):
            return "Invalid string: must match pattern /%s/" % opts["regex"]
    return None


def zod_strict(data, fields, required=(), strict=True, nonempty_msg=None, path=""):
    """Validate ``data`` against ``fields``; raise ApiError(400) like the server."""
    issues = []

    def at(name):
        return "%s.%s" % (path, name) if path and not name.startswith("[") else path + name

    if not isinstance(data, dict):
        issues.append(("Invalid input: expected object, received %s" % (
            "undefined" if data is ... else _js_type(data)), path))
    else:
        for name, (kind, opts) in fields.items():
            if name not in data:
                if name in required:
                    if kind == "enum":
                        msg = _check_field(kind, opts, None)
                    else:
                        msg = "Invalid input: expected %s, received undefined" % EXPECTED[kind]
                    issues.append((msg, at(name)))
                continue
            msg = _check_field(kind, opts, data[name])
            if msg:
                issues.append((msg, at(name)))
            elif kind == "array" and data[name] is not None and "items" in opts:
                for i, item in enumerate(data[name]):
                    try:
                        zod_strict(item, opts["items"], opts.get("items_required", ()),
                                   path="%s[%d]" % (at(name), i))
                    except ApiError as exc:
                        issues.append((exc.message[len("Validation error: "):], None))
            elif kind == "tuple":
                item_kind, item_opts = opts["item"]
                for i in range(max(1, len(data[name]))):  # the rest element makes later items optional
                    msg = ("Invalid input: expected %s, received undefined" % EXPECTED[item_kind]
                           if i >= len(data[name]) else _check_field(item_kind, item_opts, data[name][i]))
                    if msg:
                        issues.append((msg, "%s[%d]" % (at(name), i)))
        unknown = [k for k in data if k not in fields]
        if strict and unknown:
            issues.append(("Unrecognized key%s: %s" % ("s" if len(unknown) > 1 else "",
                                                       ", ".join('"%s"' % k for k in unknown)), path))
        if not issues and nonempty_msg and not data:
            issues.append((nonempty_msg, path))
    if issues:
        parts = [m if p is None else ('%s at "%s"' % (m, p) if p else m) for m, p in issues]
        raise ApiError(400, "Validation error: " + "; ".join(parts))


def _js_str(value):
    """String(value) for a JSON number: 7.0 prints as 7."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


def _js_number(raw):
    """JS Number() on a string: trimmed, "" is 0, 0x/0o/0b prefixes, Infinity, junk is NaN
    (Python's "1_000", "inf" or "nan" are junk too); integral floats become ints."""
    raw = raw.strip()
    if not raw:
        return 0
    prefixed = re.fullmatch(r"0([xXoObB])([0-9a-fA-F]+)", raw)
    if prefixed:
        try:
            return int(prefixed.group(2), {"x": 16, "o": 8, "b": 2}[prefixed.group(1).lower()])
        except ValueError:
            return float("nan")
    if re.fullmatch(r"[+-]?Infinity", raw):
        return float(raw.replace("Infinity", "inf"))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", raw):
        return float("nan")
    value = float(raw)
    return int(value) if math.isfinite(value) and value == int(value) else value


def zod_query(req, fields, strict=True):
    """Strict limit/offset style query: string -> Number -> int check (§3.4)."""
    unknown = [k for k in req.query if k not in fields]
    if strict and unknown:
        raise ApiError(400, "Validation error: Unrecognized key%s: %s" % (
            "s" if len(unknown) > 1 else "", ", ".join('"%s"' % k for k in unknown)))
    out = {}
    for name, (default, opts) in fields.items():
        value = _js_number(req.q(name, default))
        if value != value:
            raise ApiError(400, 'Validation error: Invalid input: expected number, received NaN at "%s"' % name)
        msg = _check_field("int", opts, value)
        if msg:
            raise ApiError(400, 'Validation error: %s at "%s"' % (msg, name))
        out[name] = value
    return out


def page_param(req, name, default):
    """listResources/listRoles: invalid values fall back to defaults (.catch)."""
    try:
        value = int(req.q(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


# -- value checks (server/lib/validators.ts, §3.1) -------------------------

def _is_ip(value):
    if "%" in value:  # zod rejects zone ids
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _is_cidr(value):
    addr, sep, prefix = value.partition("/")
    if not sep or not _is_ip(addr):
        return False
    return bool((V6_PREFIX if ":" in addr else V4_PREFIX).match(prefix))


def _is_url_glob(value):
    if value == "/":
        return True
    pattern = value[1:] if value.startswith("/") else value
    if not pattern:
        return False
    segments = pattern.split("/")
    for i, seg in enumerate(segments):
        if not seg and i != len(segments) - 1:
            return False  # "//"
        j = 0
        while j < len(seg):
            if re.fullmatch(r"%[0-9A-Fa-f]{2}", seg[j:j + 3]):
                j += 3
                continue
            if not PATH_CHAR.fullmatch(seg[j]):
                return False
            j += 1
    return True


def _is_asn(value):
    v = value.strip().upper()
    return v in ("ALL", "AS0") or bool(re.fullmatch(r"AS\d+", v))


VALUE_CHECKS = {
    "IP": (_is_ip, "Invalid IP provided"),
    "CIDR": (_is_cidr, "Invalid CIDR provided"),
    "PATH": (_is_url_glob, "Invalid URL glob pattern provided"),
    "COUNTRY": (COUNTRIES.__contains__, "Invalid country code provided"),
    "COUNTRY_IS_NOT": (COUNTRIES.__contains__, "Invalid country code provided"),
    "ASN": (_is_asn, "Invalid ASN provided"),
    "REGION": (REGIONS.__contains__, "Invalid region ID provided"),
}


def check_rule_value(match, value):
    ok, message = VALUE_CHECKS[match]
    if not ok(value):
        raise ApiError(400, message)


RULE_FIELDS = {
    "action": ("enum", {"values": ACTIONS}),
    "match": ("enum", {"values": MATCHES}),
    "value": ("str", {"min": 1}),
    "priority": ("int", {}),
    "enabled": ("bool", {}),
}

_NSTR = ("str", {"nullable": True})
HTTP_RESOURCE_FIELDS = {
    "name": ("str", {"min": 1, "max": 255}),
    "niceId": ("str", {"min": 1, "max": 255, "regex": r"^[a-zA-Z0-9-]+$"}),
    "subdomain": _NSTR,
    "ssl": ("bool", {}), "sso": ("bool", {}), "blockAccess": ("bool", {}),
    "emailWhitelistEnabled": ("bool", {}), "applyRules": ("bool", {}),
    "domainId": ("str", {}), "enabled": ("bool", {}), "stickySession": ("bool", {}),
    "tlsServerName": _NSTR, "setHostHeader": _NSTR,
    "skipToIdpId": ("int", {"nullable": True, "gt": 0}),
    "headers": ("array", {"nullable": True, "items": {"name": ("str", {}), "value": ("str", {})},
                          "items_required": ("name", "value")}),
    "maintenanceModeEnabled": ("bool", {}),
    "maintenanceModeType": ("enum", {"values": ("forced", "automatic")}),
    "maintenanceTitle": ("str", {"nullable": True, "max": 255}),
    "maintenanceMessage": ("str", {"nullable": True, "max": 2000}),
    "maintenanceEstimatedTime": ("str", {"nullable": True, "max": 100}),
    "postAuthPath": _NSTR,
    "pamMode": ("enum", {"values": ("passthrough", "push")}),
    "authDaemonMode": ("enum", {"values": ("site", "remote", "native")}),
    "authDaemonPort": ("int", {"nullable": True, "min": 1, "max": 65535}),
    "resourcePolicyId": ("number", {"nullable": True}),
}
RAW_RESOURCE_FIELDS = {
    "name": ("str", {"min": 1, "max": 255}), "niceId": ("str", {"min": 1, "max": 255}),
    "proxyPort": ("int", {"min": 1, "max": 65535}), "stickySession": ("bool", {}),
    "enabled": ("bool", {}), "proxyProtocol": ("bool", {}),
    "proxyProtocolVersion": ("int", {"min": 1}), "resourcePolicyId": ("number", {"nullable": True}),
}
IDP_UPDATE_FIELDS = {k: ("str", {}) for k in (
    "name", "clientId", "clientSecret", "authUrl", "tokenUrl", "identifierPath", "emailPath",
    "namePath", "scopes", "defaultRoleMapping", "defaultOrgMapping", "tags")}
IDP_UPDATE_FIELDS["autoProvision"] = ("bool", {})
IDP_UPDATE_FIELDS["variant"] = ("enum", {"values": ("oidc", "google", "azure")})
IDP_ORG_FIELDS = {"roleMapping": ("str", {}), "orgMapping": ("str", {})}
LIMIT_OFFSET = {"limit": ("1000", {"min": 0}), "offset": ("0", {"min": 0})}
# resource rule list: limit must be > 0 (§3.4)
RULE_LIST_QUERY = {"limit": ("1000", {"gt": 0}), "offset": ("0", {"min": 0})}
# listOrgApiKeys/listApiKeyActions: the same limits, but a plain z.object (unknown params ignored)
KEY_LIST_QUERY = RULE_LIST_QUERY
# listOrgs.ts: the same (z.object, limit > 0)
ORG_LIST_QUERY = KEY_LIST_QUERY
API_KEY_FIELDS = {"name": ("str", {"min": 1, "max": 255})}  # createOrgApiKey.ts: z.object, not strict
KEY_ACTIONS_FIELDS = {"actionIds": ("tuple", {"item": ("str", {})})}  # setApiKeyActions.ts: z.strictObject


# -- the request log's query (server/routers/auditLogs/queryRequestAuditLog.ts) ----------

MAX_DATE_MS = 8.64e15  # the range of a JS Date
_ISO_DATE = re.compile(r"([+-]\d{6}|\d{4})(?:-(\d\d)(?:-(\d\d))?)?"
                       r"(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(Z|[+-]\d\d:\d\d)?)?")
_SPACED_DATE = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})"
                          r"(?:[ T](\d{1,2}):(\d\d)(?::(\d\d)(?:\.(\d+))?)?\s*(Z|GMT|UTC|[+-]\d\d:?\d\d)?)?")


def _days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date; a day past the month's end
    rolls over, as MakeDay does."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _ms(year, month, day, hour, minute, second, fraction, tz):
    if not (1 <= month <= 12 and 1 <= day <= 31 and minute <= 59 and second <= 59):
        return None
    if hour > 24 or (hour == 24 and (minute or second or int(fraction or "0"))):
        return None
    offset = 0
    if tz and tz not in ("Z", "GMT", "UTC"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    ms = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute - offset) * 60000 + second * 1000
    ms += int((fraction or "0")[:3].ljust(3, "0"))
    return ms if abs(ms) <= MAX_DATE_MS else None


def js_date_parse(text):
    """``Date.parse(text)`` in milliseconds, or None for NaN.

    The ECMAScript date-time forms (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, with ``THH:mm``,
    ``:ss``, ``.sss`` and ``Z``/``±HH:mm``; ``±YYYYYY`` years), V8's lenient
    ``YYYY-MM-DD HH:mm[:ss]`` / ``YYYY/MM/DD`` forms and RFC 2822 dates. Times without
    an offset are the server's local time, taken as UTC (a container's default). V8's
    legacy parser accepts more (``Jan 1 2024``, ``0``, ...); those are NaN here.
    """
    m = _ISO_DATE.fullmatch(text)
    if m:
        year = int(m.group(1))
        if m.group(1) == "-000000":
            return None
        return _ms(year, int(m.group(2) or 1), int(m.group(3) or 1), int(m.group(4) or 0),
                   int(m.group(5) or 0), int(m.group(6) or 0), m.group(7), m.group(8))
    m = _SPACED_DATE.fullmatch(text.strip())
    if m:
        return _ms(int(m.group(1)), int(m.group(3)), int(m.group(4)), int(m.group(5) or 0),
                   int(m.group(6) or 0), int(m.group(7) or 0), m.group(8), m.group(9))
    try:
        parts = email.utils.parsedate_tz(text)
    except (TypeError, ValueError, IndexError):
        parts = None
    if parts is None or parts[0] < 100:
        return None
    ms = _ms(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], None, None)
    return None if ms is None else ms - (parts[9] or 0) * 1000


REQUEST_LOG_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
REQUEST_LOG_QUERY = ("timeStart", "timeEnd", "action", "method", "reason", "resourceId", "actor", "location",
                     "host", "path", "limit", "offset")


def _query_value(req, name):
    """Express 5's query parser: one value is a string, a repeated name an array."""
    values = req.query.get(name)
    if values is None:
        return ...
    return values[0] if len(values) == 1 else list(values)


def _positive_int(value, gt=0):
    """``z.string().transform(Number).pipe(z.int()...)``: the message, or the number."""
    number = _js_number(value)
    if number != number:
        return "Invalid input: expected number, received NaN", None
    msg = _check_field("int", {"gt": gt} if gt is not None else {"min": 0}, number)
    return msg, number


def request_log_query(req, now):
    """Parse GET /org/{orgId}/logs/request's query like its zod schema (a strictObject).

    Returns ``{timeStart, timeEnd (unix seconds), action, method, reason, resourceId, actor,
    location, host, path, limit, offset}`` (None where absent); raises ApiError(400) with
    every issue, in the schema's order, an unknown name last.
    """
    issues, out = [], {}

    def string(name):
        value = _query_value(req, name)
        if value is not ... and not isinstance(value, str):
            issues.append(("Invalid input: expected string, received array", name))
            return None
        return None if value is ... else value

    day = 86400
    seven_days_ago = (int(now) // day - 7) * day  # getSevenDaysAgo(): midnight seven days back
    for name, default_ms in (("timeStart", seven_days_ago * 1000), ("timeEnd", now * 1000)):
        value = string(name)
        ms = default_ms if value is None else js_date_parse(value)
        if ms is None:
            issues.append(("%s must be a valid ISO date string" % name, name))
        out[name] = None if ms is None else math.floor(ms / 1000)
    action = _query_value(req, "action")
    if action is ... or isinstance(action, str):
        out["action"] = None if action is ... else action == "true"
    else:
        issues.append(("Invalid input", "action"))  # z.union([z.boolean(), z.string()])
    method = _query_value(req, "method")
    out["method"] = None if method is ... else method
    if method is not ... and method not in REQUEST_LOG_METHODS:
        issues.append((_check_field("enum", {"values": REQUEST_LOG_METHODS}, method), "method"))
    for name in ("reason", "resourceId"):
        value = string(name)
        out[name] = None
        if value is not None:
            msg, number = _positive_int(value)
            if msg:
                issues.append((msg, name))
            out[name] = number
    for name in ("actor", "location", "host", "path"):
        out[name] = string(name)
    for name, default, gt in (("limit", "1000", 0), ("offset", "0", None)):
        value = string(name)
        msg, number = _positive_int(default if value is None else value, gt)
        if msg:
            issues.append((msg, name))
        out[name] = number
    unknown = [k for k in req.query if k not in REQUEST_LOG_QUERY]
    if unknown:
        issues.append(("Unrecognized key%s: %s" % ("s" if len(unknown) > 1 else "",
                                                   ", ".join('"%s"' % k for k in unknown)), None))
    if issues:
        raise ApiError(400, "Validation error: " + "; ".join(
            m if p is None else '%s at "%s"' % (m, p) for m, p in issues))
    return out
