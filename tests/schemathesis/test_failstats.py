"""Schemathesis on the vendor's failure statistics route (tag `isales` of the served document),
every request C2-signed over its query string like test_wallboard.py signs the stream.

Generated path and query strings (positive and negative, and methods the document does not list)
are signed as sent. The document's checks apply to every answer; an oracle written from
docs/api.md ("Failure statistics") decides 405 / `0200000` / `0100002`: `vdnId` 1..5000,
`campaignId` once and 1..30 digits, `ccId` at most once and 1..65535, `startDate` and `endDate`
both or neither, each a real date `yyyy-MM-dd`, the end not before the start and at most 30 days
after it. A success lists days ascending within the range asked, each with at least one cause.
"""

from __future__ import annotations

import datetime
import os
import re
import urllib.parse

from hypothesis import HealthCheck, settings
import requests
import schemathesis

from conftest import STATS
from helpers import CHECKS, INVALID, api_host, api_url, id_value, sign

EXAMPLES = int(os.environ.get("REALSTAT_SCHEMATHESIS_FAILSTATS_EXAMPLES", "300"))
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

schema = schemathesis.pytest.from_fixture("api_schema")


def _form_decode(text: str) -> str | None:
    """The service's form decoding (`+` a space, `%XX` a byte); None when not UTF-8."""
    try:
        return urllib.parse.unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _pairs(raw: str) -> list[tuple[str | None, str | None]]:
    out = []
    for piece in filter(None, raw.split("&")):
        k, _, v = piece.partition("=")
        out.append((_form_decode(k), _form_decode(v)))
    return out


def _date(text: str | None) -> datetime.date | None:
    if text is None or not DATE.fullmatch(text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def accepts(vdn_text: str, raw_query: str) -> tuple[bool, tuple | None]:
    """Whether docs/api.md accepts the request, and the date range it names (None: today)."""
    by_name: dict[str | None, list[str | None]] = {}
    for k, v in _pairs(raw_query):
        by_name.setdefault(k, []).append(v)

    def ok_id(v, lo, hi, digits):
        return v is not None and id_value(v, lo=lo, hi=hi, max_digits=digits) not in (None, INVALID)

    cc, campaign = by_name.get("ccId", []), by_name.get("campaignId", [])
    start, end = by_name.get("startDate", []), by_name.get("endDate", [])
    vdn = _form_decode(vdn_text)
    if not (ok_id(vdn, 1, 5000, 39) and len(cc) <= 1 and all(ok_id(v, 1, 65535, 39) for v in cc)):
        return False, None
    if len(campaign) != 1 or not ok_id(campaign[0], 0, None, 30):
        return False, None
    if len(start) > 1 or len(end) > 1 or len(start) != len(end):
        return False, None
    if not start:
        return True, None
    first, last = _date(start[0]), _date(end[0])
    if first is None or last is None or last < first or (last - first).days > 30:
        return False, None
    return True, (first, last)


@schema.include(tag="isales").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_failstats(case, http, api_schema):
    method = case.method.upper()
    prepared = requests.Request(method, api_url() + case.formatted_path, params=case.query).prepare()
    split = urllib.parse.urlsplit(prepared.url)
    raw_query = split.query
    host = api_host()
    headers = {"Host": host}
    # The pairs as the service decodes them (bytes: `+` a space, `%XX` a byte, a bad escape as is).
    query = [
        tuple(urllib.parse.unquote_to_bytes(x.replace("+", " ")) for x in piece.partition("=")[::2])
        for piece in filter(None, raw_query.split("&"))
    ]
    headers["Authorization"] = sign(method, split.path, {"host": host}, b"", query=query or None)
    response = http.request(method, prepared.url, headers=headers, timeout=30)
    code = response.json().get("resultCode") if method != "HEAD" else ""
    STATS["requests"] += 1
    STATS[f"isales {method} failcategorystatistics -> {response.status_code} {code}"] += 1
    case.validate_response(response, checks=CHECKS, headers=headers)
    vdn_text = split.path.split("/")[-2]
    ok, dates = accepts(vdn_text, raw_query)
    if method != "GET":
        assert (response.status_code, code) == (405, "0100001")
        return
    want = (200, "0200000") if ok else (200, "0100002")
    assert (response.status_code, code) == want, f"{prepared.url}: {response.text[:300]}"
    if ok:
        days = [d["statDate"] for d in response.json()["data"]]
        assert days == sorted(set(days))
        if dates is not None:
            first, last = dates
            assert all(first.isoformat() <= d <= last.isoformat() for d in days)
        assert all(d["failData"] for d in response.json()["data"])
