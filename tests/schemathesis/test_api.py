"""Schemathesis against a running realstat, every request C2-signed.

The schema is the one the service serves itself (admin listener, `/openapi.yaml`), so this
checks the document and the service against each other. Environment (scripts/schemathesis sets
it):

    REALSTAT_API_URL     e.g. http://127.0.0.1:8080   (the realstatistic listener)
    REALSTAT_ADMIN_URL   e.g. http://127.0.0.1:9090   (health, metrics, openapi.yaml)
    REALSTAT_AK          an access key that may read every VDN (the demo's `demo-ak`)
    REALSTAT_SK          its secret (the demo prints it at start)
    REALSTAT_SCHEMATHESIS_EXAMPLES   fuzzing examples for the realstatistic operation (default 1000)

`test_realstatistic`: schemathesis generates cases from the document (examples, coverage
boundaries, positive and negative fuzzing, methods the document does not list). For each, the
test serializes the body itself, so it knows the exact bytes it signs and sends, signs method,
path, `host` and `content-type` (sometimes `content-length` too, sometimes `host` alone) with
c2.py, an independent implementation of docs/api.md, and sends it with `requests`. One case in
eight gets an authentication fault instead (no signature, wrong secret, stale timestamp,
signature of another body). Then:

- schemathesis' checks: no 5xx; status code, content type, headers (`X-Request-Id`, `Allow`)
  and body as the document says; 405 + `Allow` for methods the document does not list;
- an oracle written from docs/api.md (not from the document) decides the outcome: 405, 413, 401,
  `0100000` with the statistics for a body and Content-Type the spec accepts, else `0100002`;
- a positive case (valid by the document) must be valid by the spec too.

`test_edge_bodies`: exact byte sequences schemathesis does not produce (size limit, BOM,
duplicates, number forms, non-UTF-8), through the same oracle and response checks.
`test_admin`: the admin endpoints, unauthenticated, against the document.
"""

from __future__ import annotations

import datetime
import json
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import STATS
from helpers import (
    CHECKS,
    CONTENT_TYPES,
    INVALID,
    MAX_BODY_BYTES,
    MAX_EXAMPLES,
    api_host,
    api_url,
    cc_vdn_ok,
    decode,
    env,
    serialize,
    sign,
    task_ok,
)

PATH = "/rest/cmsapp/v1/openapi/fromisales/realstatistic"
# Deliberate authentication faults: each must give 401 / 0100001 (after the 405 and 413 checks).
AUTH_FAULTS = ["missing", "wrong secret", "stale timestamp", "other body"]
# Set by the HTTP client from the request itself; a generated value would make the request
# malformed rather than negative.
FRAMING_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "expect", "te", "upgrade"}


schema = schemathesis.pytest.from_fixture("api_schema")


# ---------------------------------------------------------------------------------------------
# The oracle: docs/api.md, "Request", independent of docs/openapi.yaml.

def spec_accepts(body) -> bool:
    """Whether docs/api.md accepts this (already JSON-decoded) body."""
    return isinstance(body, dict) and cc_vdn_ok(body) and task_ok(body.get("taskId"))


def content_type_accepted(value: str) -> bool:
    """docs/api.md: `application/json`, optional `charset=UTF-8`, case-insensitive, blanks
    around `;` tolerated; other parameters are ignored, another charset is refused."""
    media, *params = value.split(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params:
        if not param.strip():
            continue
        name, eq, val = param.partition("=")
        if not eq:
            return False
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _negative_at_header(case) -> bool:
    return case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)


KNOWN_FIELDS = ("ccId", "vdn", "taskId")


def _record(case, response, expectation: str) -> None:
    mode = case.meta.generation.mode.value if case.meta is not None else "explicit"
    phase = case.meta.phase.name.value if case.meta is not None else "explicit"
    STATS["requests"] += 1
    STATS[f"mode {mode}"] += 1
    STATS[f"phase {phase}"] += 1
    code = ""
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            code = " " + str(response.json().get("resultCode"))
        except ValueError:
            code = " (not JSON)"
    STATS[f"{case.method.upper()} -> {response.status_code}{code}"] += 1
    STATS[f"expected {expectation}"] += 1


def _shown(name: str, value: str) -> str:
    # The signature is left out: the prefix says who signed what and when.
    return value.rsplit("/", 1)[0] + "/<signature>" if name == "Authorization" else value


def _describe(method: str, headers: dict, raw: bytes, response, case=None) -> str:
    text = (
        f"\nrequest:  {method} {response.request.url}\n"
        f"          headers {json.dumps({k: _shown(k, v) for k, v in headers.items()})}\n"
        f"          body ({len(raw)} bytes) {raw[:600]!r}\n"
        f"response: {response.status_code} {dict(response.headers)}\n"
        f"          {response.text[:600]!r}"
    )
    if case is not None and case.meta is not None:
        text += (
            f"\ncase:     mode {case.meta.generation.mode.value}, phase {case.meta.phase.name.value}, "
            f"{getattr(case.meta.phase.data, 'description', '')}"
        )
    return text


# ---------------------------------------------------------------------------------------------
# The realstatistic endpoint, signed.


@schema.include(tag="realstatistic").parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_realstatistic(case, http):
    method = case.method.upper()
    raw, decoded = serialize(case, KNOWN_FIELDS)
    spread = zlib.crc32(raw)

    # Headers schemathesis generated: a negative case may drop `Authorization` (then it is sent
    # unsigned and must get 401), set a wrong `Content-Type`, or add unknown headers. A generated
    # `Authorization` value is random text: it is replaced by a real signature.
    generated = {k: v for k, v in (case.headers or {}).items() if k.lower() not in FRAMING_HEADERS}
    unsigned = _negative_at_header(case) and not any(k.lower() == "authorization" for k in generated)
    extra = {k: v for k, v in generated.items() if k.lower() not in ("authorization", "content-type")}
    content_type = next((v for k, v in generated.items() if k.lower() == "content-type"), None)
    if content_type is None:
        # Spread the accepted spellings over the cases, deterministically.
        content_type = CONTENT_TYPES[spread % len(CONTENT_TYPES)]
    # One case in eight carries an authentication fault (on top of whatever else it has).
    fault = AUTH_FAULTS[(spread >> 14) % len(AUTH_FAULTS)] if (spread >> 11) % 8 == 0 else None
    if unsigned:
        fault = "missing"
    response, headers = send(http, method, case.formatted_path, raw, content_type, extra, fault, spread)
    expectation = expected(method, raw, decoded, content_type, fault)
    where = _describe(method, headers, raw, response, case)
    _record(case, response, expectation)
    if fault:
        STATS[f"auth fault: {fault}"] += 1

    case.validate_response(response, checks=CHECKS, headers=headers)

    if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE and method == "POST":
        # The document and the spec must agree on what is valid.
        assert spec_accepts(decoded), "the document generated, as valid, a body docs/api.md refuses" + where
    check_outcome(response, expectation, method, where)


def send(http, method, path, raw, content_type, extra_headers=None, fault=None, spread=0):
    """Sends `raw` as is, C2-signed over `host`, `content-type` (and `content-length` or only
    `host`, depending on `spread`), unless `fault` says how to get authentication wrong."""
    api, host = api_url(), api_host()
    headers = dict(extra_headers or {})
    headers["Host"] = host
    headers["Content-Type"] = content_type
    if fault != "missing":
        signed = {"host": host, "content-type": content_type}
        if method == "POST" and (spread >> 8) % 2:
            signed["content-length"] = str(len(raw))  # what requests sends for a POST
        if (spread >> 9) % 4 == 0:
            del signed["content-type"]  # `host` alone, as in the first vector
        headers["Authorization"] = sign(
            method,
            path,
            signed,
            raw + b" " if fault == "other body" else raw,
            secret_suffix="x" if fault == "wrong secret" else "",
            age=datetime.timedelta(minutes=20 if fault == "stale timestamp" else 0),
        )
    response = http.request(method, api + path, data=raw, headers=headers, timeout=30)
    return response, headers


def expected(method, raw, decoded, content_type, fault) -> str:
    """`"<status> <resultCode>"` as docs/api.md says, in the service's check order."""
    if method != "POST":
        return "405 0100001"
    if len(raw) > MAX_BODY_BYTES:
        return "413 0100002"
    if fault:
        return "401 0100001"
    if content_type_accepted(content_type) and spec_accepts(decoded):
        return "200 0100000"
    return "200 0100002"


def check_outcome(response, expectation: str, method: str, where: str) -> None:
    status, _, code = expectation.partition(" ")
    assert response.status_code == int(status), f"expected HTTP {expectation}" + where
    if method != "HEAD":
        got = response.json().get("resultCode")
        assert got == code, f"expected resultCode {code}, got {got}" + where
    if code == "0100000":
        values = response.json()["resultDesc"]
        assert all(isinstance(v, str) for v in values.values()), where


# ---------------------------------------------------------------------------------------------
# Bodies schemathesis does not produce (it serializes valid JSON, and stays far below 4 KiB):
# the exact bytes are the point here. Same oracle, same checks of the response.


def _sized(n: int) -> bytes:
    """A valid request body of exactly `n` bytes (padding in an unknown field)."""
    head, tail = b'{"vdn":92,"taskId":"1122104910","pad":"', b'"}'
    return head + b"x" * (n - len(head) - len(tail)) + tail


EDGE_BODIES = [
    pytest.param(_sized(MAX_BODY_BYTES), id="exactly 4096 bytes"),
    pytest.param(_sized(MAX_BODY_BYTES + 1), id="4097 bytes"),
    pytest.param(b' \r\n\t{"vdn":92,"taskId":1}\n ', id="blanks around the object"),
    pytest.param(b'{"vdn":92,"taskId":1,"vdn":93}', id="duplicate field"),
    pytest.param(b'{"vdn":92,"taskId":1,"x":1,"x":2}', id="duplicate unknown field"),
    pytest.param(b'\xef\xbb\xbf{"vdn":92,"taskId":1}', id="byte order mark"),
    pytest.param(b'{"vdn":92,"taskId":1}{}', id="trailing data"),
    pytest.param(b'{"vdn":92,"taskId":1,}', id="trailing comma"),
    pytest.param(b'{"vdn":-0,"taskId":1}', id="minus zero"),
    pytest.param(b'{"vdn":92,"taskId":1e2}', id="exponent"),
    pytest.param(b'{"vdn":92.0,"taskId":1}', id="integral float"),
    pytest.param(b'{"vdn":"\\u0039\\u0032","taskId":1}', id="escaped digits"),
    pytest.param(b'{"vdn":"\xd9\xa9\xd9\xa2","taskId":1}', id="arabic-indic digits"),
    pytest.param(b'{"vdn":92,"taskId":"' + b"1" * 30 + b'"}', id="30-digit taskId"),
    pytest.param(b'{"vdn":92,"taskId":"' + b"1" * 31 + b'"}', id="31-digit taskId"),
    pytest.param(b'{"vdn":92,"taskId":18446744073709551616}', id="taskId 2^64 as a number"),
    pytest.param(b'{"vdn":92,"taskId":1,"x":1e400}', id="huge number in an unknown field"),
    pytest.param(b'{"vdn":92,"taskId":1,"x":"\\ud800"}', id="lone surrogate in an unknown field"),
    pytest.param(b'{"vdn":92,"taskId":1,"x":NaN}', id="NaN in an unknown field"),
    pytest.param(
        b'{"vdn":92,"taskId":1,"x":"\xff"}',
        id="invalid UTF-8 in an unknown field",
    ),
    pytest.param(b"", id="empty body"),
]


@pytest.mark.parametrize("raw", EDGE_BODIES)
def test_edge_bodies(raw, http, api_schema):
    decoded = decode(raw, KNOWN_FIELDS)
    content_type = CONTENT_TYPES[0]
    response, headers = send(http, "POST", PATH, raw, content_type)
    expectation = expected("POST", raw, decoded, content_type, None)
    where = _describe("POST", headers, raw, response)
    STATS["requests"] += 1
    STATS[f"edge bodies: expected {expectation}"] += 1
    # The schema's response checks, through a case of the documented operation.
    case = api_schema[PATH]["POST"].Case(body=decoded if decoded is not INVALID else None)
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    check_outcome(response, expectation, "POST", where)


# ---------------------------------------------------------------------------------------------
# The admin listener: unauthenticated GETs.


@schema.include(tag="admin").parametrize()
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_admin(case, http):
    admin = env("REALSTAT_ADMIN_URL").rstrip("/")
    response = case.call(base_url=admin, session=http, timeout=30)
    STATS["requests"] += 1
    if case.method.upper() == "GET":
        STATS[f"admin GET {case.path} -> {response.status_code}"] += 1
    else:
        STATS[f"admin other methods, any path -> {response.status_code}"] += 1
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    if case.method.upper() == "GET" and case.path != "/health/ready":
        assert response.status_code == 200, response.text[:300]
