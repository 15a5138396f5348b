"""C2 (`auth-v2`) AK/SK request signing, as docs/api.md ("C2 signature") defines it.

An independent Python implementation of the scheme (not a binding to the Rust one), so the
schemathesis run also checks that a second client, written from the documentation,
interoperates. Checked against the test vectors (tests/vectors/c2-auth.json) by test_c2.py.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
from collections.abc import Mapping

SCHEME = "auth-v2"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def normalize(value: str | bytes) -> str:
    """Percent-encodes every UTF-8 byte except A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex)."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in data)


def timestamp(now: _dt.datetime | None = None) -> str:
    """`yyyy-MM-ddTHH:mm:ssZ` in UTC."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return now.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hmac_hex(key: bytes, msg: bytes) -> str:
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def canonical_query(query) -> str | None:
    """`query`: a mapping, or a sequence of (name, value) pairs (names may repeat), decoded."""
    if not query:
        return None
    pairs = query.items() if hasattr(query, "items") else query
    return "&".join(sorted(f"{normalize(k)}={normalize(v)}" for k, v in pairs))


def canonical_request(
    method: str,
    uri: str,
    query: Mapping[str, str] | None,
    signed_headers: str,
    headers: Mapping[str, str | bytes],
    body: bytes,
) -> str:
    lines = [method, uri]
    q = canonical_query(query)
    if q is not None:
        lines.append(q)
    lines.append(signed_headers)
    lines.append("\n".join(sorted(f"{normalize(name.lower())}:{normalize(value)}" for name, value in headers.items())))
    text = "\n".join(lines) + "\n"
    if body:
        text += normalize(body)
    return text


def sign(
    ak: str,
    sk: str | bytes,
    ts: str,
    method: str,
    uri: str,
    headers: Mapping[str, str | bytes],
    body: bytes = b"",
    query: Mapping[str, str] | None = None,
) -> str:
    """The Authorization value for a request whose signed headers are `headers` (name -> value).

    The header names are lower-cased and sorted for `signedHeaders`, as the vendor's clients do.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if "host" not in lowered:
        raise ValueError("the host header must be signed")
    signed_headers = ";".join(sorted(lowered))
    prefix = f"{SCHEME}/{ak}/{ts}/{signed_headers}"
    sk_bytes = sk.encode("utf-8") if isinstance(sk, str) else sk
    signing_key = _hmac_hex(sk_bytes, prefix.encode("utf-8"))
    canonical = canonical_request(method, uri, query, signed_headers, lowered, body)
    # The second HMAC is keyed with the hex *text* of the first, as the vendor's demo does.
    signature = _hmac_hex(signing_key.encode("ascii"), canonical.encode("utf-8"))
    return f"{prefix}/{signature}"
