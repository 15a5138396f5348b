"""Schemathesis on the wallboard routes (tag `wallboard` of the served document), every request
C2-signed like test_api.py does it.

- `realstatisticsBatch` and `realstatisticBreakdown` (POST): schemathesis generates bodies
  (positive and negative); the test sends the exact bytes it signs; the document's checks apply
  and an oracle written from docs/api.md ("Wallboard routes") decides 405 / 413 / 401 /
  `0100000` / `0100002`.
- `realstatisticStream` (GET): generated query strings are signed as sent (the query is part of
  the canonical request, repeated `taskId` included). A refusal is JSON and goes through the
  document's checks; a stream is read up to its first events, each `data` checked against the
  `BatchRow` schema, one per requested task in request order, then closed.
- `wallboardPage`: the page, unauthenticated.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import urllib.parse

import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from conftest import STATS
from helpers import (
    CHECKS,
    CONTENT_TYPES,
    INVALID,
    MAX_BODY_BYTES,
    api_host,
    api_url,
    cc_vdn_ok,
    id_value,
    serialize,
    sign,
    task_ok,
)

EXAMPLES = int(os.environ.get("REALSTAT_SCHEMATHESIS_WALLBOARD_EXAMPLES", "300"))
STREAM = "/rest/cmsapp/v1/openapi/fromisales/realstatistic/stream"
BATCH = "/rest/cmsapp/v1/openapi/fromisales/realstatistics"
BREAKDOWN = "/rest/cmsapp/v1/openapi/fromisales/realstatistic/breakdown"

schema = schemathesis.pytest.from_fixture("api_schema")


def batch_accepts(body) -> bool:
    if not isinstance(body, dict) or not cc_vdn_ok(body):
        return False
    ids = body.get("taskIds")
    return isinstance(ids, list) and 1 <= len(ids) <= 100 and all(task_ok(t) for t in ids)


def day_ok(day) -> bool:
    """`day`: absent, null, "today", "yesterday", or a real date yyyy-MM-dd."""
    if day in (None, "today", "yesterday"):
        return True
    if not isinstance(day, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day):
        return False
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        return False
    return True


def breakdown_accepts(body) -> bool:
    if not isinstance(body, dict) or not cc_vdn_ok(body) or not task_ok(body.get("taskId")):
        return False
    return day_ok(body.get("day")) and body.get("timeGrain") in (
        None,
        "15MIN",
        "30MIN",
        "60MIN",
    )


POSTS = {
    BATCH: (("ccId", "vdn", "taskIds"), batch_accepts),
    BREAKDOWN: (("ccId", "vdn", "taskId", "day", "timeGrain"), breakdown_accepts),
}


def _form_decode(text: str) -> bytes:
    """The service's form decoding: `+` is a space, `%XX` a byte, a bad escape stays as is."""
    b = text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x2B:
            out.append(0x20)
            i += 1
        elif b[i] == 0x25 and i + 2 < len(b) and all(chr(c) in "0123456789abcdefABCDEF" for c in b[i + 1 : i + 3]):
            out.append(int(b[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def _query_pairs(raw: str) -> list[tuple[bytes, bytes]]:
    pairs = []
    for piece in filter(None, raw.split("&")):
        k, _, v = piece.partition("=")
        pairs.append((_form_decode(k), _form_decode(v)))
    return pairs


def stream_accepts(pairs) -> tuple[bool, int]:
    """Whether docs/api.md accepts these parameters, and how many tasks they name."""

    def digits(v: bytes, lo: int, hi: int | None, max_digits: int) -> bool:
        try:
            text = v.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return id_value(text, lo=lo, hi=hi, max_digits=max_digits) not in (None, INVALID)

    by_name: dict[bytes, list[bytes]] = {}
    for k, v in pairs:
        by_name.setdefault(k, []).append(v)
    cc, vdn, tasks = by_name.get(b"ccId", []), by_name.get(b"vdn", []), by_name.get(b"taskId", [])
    ok = (
        len(cc) <= 1
        and all(digits(v, 1, 65535, 39) for v in cc)
        and len(vdn) == 1
        and digits(vdn[0], 1, 5000, 39)
        and 1 <= len(tasks) <= 100
        and all(digits(t, 0, None, 30) for t in tasks)
    )
    return ok, len(tasks)


def _sign(method: str, path: str, raw_query: str, body: bytes, content_type: str | None) -> dict:
    host = api_host()
    signed = {"host": host}
    headers = {"Host": host}
    if content_type is not None:
        signed["content-type"] = content_type
        headers["Content-Type"] = content_type
    headers["Authorization"] = sign(method, path, signed, body, query=_query_pairs(raw_query) or None)
    return headers


COUNT = re.compile(r"(0|[1-9][0-9]*)")
RATE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]?[1-9])?%")
ROW_FIELDS = ["taskId", "totalCount", "succCount", "failCount", "succRate", "compCount", "compRate",
              "waitCount", "execCount"]


def is_row(row: dict) -> bool:
    """A batch row as docs/api.md describes it: the canonical id, then the eight values."""
    return (
        list(row) == ROW_FIELDS
        and all(isinstance(v, str) for v in row.values())
        and all(COUNT.fullmatch(row[f]) for f in ROW_FIELDS if f.endswith("Count") or f == "taskId")
        and all(RATE.fullmatch(row[f]) for f in ("succRate", "compRate"))
    )


def _record(case, what: str) -> None:
    STATS["requests"] += 1
    STATS[f"wallboard {case.method.upper()} {case.path.rsplit('/', 1)[-1]} -> {what}"] += 1


def _read_events(response, count: int) -> list[dict]:
    """The first `count` events of a stream (comments skipped)."""
    events, data = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            events.append(data)
            data = None
            if len(events) == count:
                break
    return events


@schema.include(tag="wallboard").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_wallboard(case, http, api_schema):
    api = api_url()
    method = case.method.upper()
    if case.path == "/wallboard":
        response = http.request(method, api + "/wallboard", timeout=30)
        _record(case, str(response.status_code))
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == (200 if method == "GET" else 405)
        return
    if case.path == STREAM:
        return check_stream(case, http, api, method, api_schema)
    known, accepts = POSTS[case.path]
    raw, decoded = serialize(case, known)
    content_type = CONTENT_TYPES[len(raw) % len(CONTENT_TYPES)]
    headers = _sign(method, case.formatted_path, "", raw, content_type)
    response = http.request(method, api + case.formatted_path, data=raw, headers=headers, timeout=30)
    code = response.json().get("resultCode") if method != "HEAD" else ""
    _record(case, f"{response.status_code} {code}")
    case.validate_response(response, checks=CHECKS, headers=headers)
    if method != "POST":
        want = (405, "0100001")
    elif len(raw) > MAX_BODY_BYTES:
        want = (413, "0100002")
    elif decoded is not INVALID and accepts(decoded):
        want = (200, "0100000")
    else:
        want = (200, "0100002")
    assert (response.status_code, code) == want, f"{method} {case.path} {raw[:300]!r}: {response.text[:300]}"
    if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE and method == "POST":
        # A pattern cannot tell a real date from 2026-02-30: such a `day` may be refused.
        assert accepts(decoded) or (isinstance(decoded, dict) and not day_ok(decoded.get("day"))), (
            f"the document generated, as valid, a body docs/api.md refuses: {raw!r}"
        )


def check_stream(case, http, api, method, api_schema):
    prepared = requests.Request(method, api + case.formatted_path, params=case.query).prepare()
    raw_query = urllib.parse.urlsplit(prepared.url).query
    headers = _sign(method, case.formatted_path, raw_query, b"", None)
    url = api + case.formatted_path + (f"?{raw_query}" if raw_query else "")
    # A session of its own, closed at the end: its socket then really closes, and the service
    # gives the stream's place back (a pooled connection would stay open and hold it).
    with requests.Session() as own, own.request(method, url, headers=headers, stream=True, timeout=30) as response:
        is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
        ok, count = stream_accepts(_query_pairs(raw_query))
        if method != "GET":
            assert response.status_code == 405 and response.headers.get("allow") == "GET"
        elif not ok:
            assert not is_stream, f"a stream for refused parameters {raw_query!r}"
        if not is_stream:
            _record(case, f"{response.status_code} {response.json().get('resultCode') if method != 'HEAD' else ''}")
            case.validate_response(response, checks=CHECKS, headers=headers)
            if method == "GET":
                assert (response.status_code, response.json()["resultCode"]) == (200, "0100002"), (
                    f"{raw_query!r}: {response.text[:300]}"
                )
            return
        _record(case, "200 stream")
        assert ok, f"a stream for parameters docs/api.md refuses: {raw_query!r}"
        assert response.status_code == 200
        assert response.headers.get("x-request-id", "").isdigit()
        events = _read_events(response, count)
        assert len(events) == count, f"{count} tasks, {len(events)} first events"
        wanted = [
            str(int(v.decode())) for k, v in _query_pairs(raw_query) if k == b"taskId"
        ]
        assert [e["taskId"] for e in events] == wanted
        for e in events:
            assert is_row(e), e
