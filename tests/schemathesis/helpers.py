"""What test_api.py and test_wallboard.py share: the environment, the response checks, the
oracle's id and body rules from docs/api.md, and C2 signing of a request to the service.

The fixtures they share (`api_schema`, `http`) are in conftest.py.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import urllib.parse

import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

import c2

# Fuzzing examples for the realstatistic operation.
MAX_EXAMPLES = int(os.environ.get("REALSTAT_SCHEMATHESIS_EXAMPLES", "1000"))
MAX_BODY_BYTES = 4096
# The document's checks that apply to every signed request.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]
# What real clients send; all must be accepted (docs/api.md: case-insensitive, blanks around `;`).
CONTENT_TYPES = [
    "application/json;charset=UTF-8",
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON ; Charset=UTF-8",
]
_ASCII_DIGITS = re.compile(r"[0-9]+")
U64_MAX = 2**64 - 1
# What the service cannot use: not a body, not an id.
INVALID = object()


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run scripts/schemathesis, or set it to a running service")
    return value


def api_url() -> str:
    return env("REALSTAT_API_URL").rstrip("/")


def api_host() -> str:
    """The `Host` header of requests to the API listener (it is signed)."""
    return urllib.parse.urlsplit(api_url()).netloc


def sign(
    method: str,
    path: str,
    signed: dict,
    body: bytes,
    *,
    query=None,
    secret_suffix: str = "",
    age: datetime.timedelta = datetime.timedelta(0),
) -> str:
    """The Authorization value for this request by REALSTAT_AK, signed over the `signed`
    headers (name -> value) `age` ago, with REALSTAT_SK plus `secret_suffix` (a wrong secret
    when not empty)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return c2.sign(
        env("REALSTAT_AK"),
        env("REALSTAT_SK") + secret_suffix,
        c2.timestamp(now - age),
        method,
        path,
        signed,
        body,
        query=query,
    )


def id_value(value, *, lo: int, hi: int | None, max_digits: int):
    """The value of an id field, or INVALID. `None` (JSON null) is returned as is."""
    if value is None:
        return None
    if isinstance(value, bool):
        return INVALID
    if isinstance(value, int):
        # A JSON number: exact only up to 2^64 - 1 (design.md), never negative.
        if value < 0 or value > U64_MAX:
            return INVALID
        digits = len(str(value))
    elif isinstance(value, str):
        if not _ASCII_DIGITS.fullmatch(value):
            return INVALID
        digits = len(value)
        value = int(value)
    else:
        return INVALID  # float, array, object
    if digits > max_digits or value < lo or (hi is not None and value > hi):
        return INVALID
    return value


def cc_vdn_ok(body: dict) -> bool:
    """`ccId` absent, null or 1..65535; `vdn` 1..5000."""
    cc = id_value(body.get("ccId"), lo=1, hi=65535, max_digits=39)
    vdn = id_value(body.get("vdn"), lo=1, hi=5000, max_digits=39)
    return cc is not INVALID and vdn not in (None, INVALID)


def task_ok(value) -> bool:
    """A task id: 0 or more, at most 30 digits."""
    return id_value(value, lo=0, hi=None, max_digits=30) not in (None, INVALID)


def decode(raw: bytes, known: tuple[str, ...]):
    """What the service reads from `raw`, or INVALID when docs/api.md says it is not a usable
    body: not UTF-8 JSON, NaN/Infinity, or one of the `known` fields given twice (design.md)."""

    class _Object(dict):
        duplicate_known_field = False

    def pairs(items):
        obj = _Object(items)
        names = [name for name, _ in items if name in known]
        obj.duplicate_known_field = len(names) != len(set(names))
        return obj

    try:
        decoded = json.loads(raw.decode("utf-8"), parse_constant=lambda _: INVALID, object_pairs_hook=pairs)
    except ValueError:
        return INVALID
    if _contains_non_json_constant(decoded) or getattr(decoded, "duplicate_known_field", False):
        return INVALID
    return decoded


def _contains_non_json_constant(value) -> bool:
    """NaN and Infinity, which Python's json writes and reads but which are not JSON."""
    if value is INVALID:
        return True
    if isinstance(value, dict):
        return any(_contains_non_json_constant(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_non_json_constant(v) for v in value)
    return False


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def serialize(case, known: tuple[str, ...]) -> tuple[bytes, object]:
    """The exact body bytes to send, and what the server will decode from them (or INVALID)."""
    body = case.body
    if body is None or type(body).__name__ == "NotSet":
        return b"", INVALID
    if isinstance(body, bytes):
        raw = body
    elif isinstance(body, str) and _media_type(case.media_type) != "application/json":
        raw = body.encode("utf-8")
    else:
        try:
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (ValueError, UnicodeEncodeError):
            # NaN/Infinity or lone surrogates: escape what can be escaped; the result may not be
            # JSON, which the server must then refuse as such.
            raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return raw, decode(raw, known)
