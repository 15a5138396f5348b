"""c2.py against the C2 test vectors. Needs no server.

The vectors are the repository's copy, tests/vectors/c2-auth.json (docs/api.md works the first
one through). As in the Rust tests (src/auth/c2.rs), the reference contract's file
../shared/spec/vectors/c2-auth.json is preferred when it is checked out beside the repository,
and the copy must then be identical to it; without it, the copy alone is used.
"""

import json
import pathlib

import pytest

import c2

REPO = pathlib.Path(__file__).resolve().parents[2]
REPO_VECTORS = REPO / "tests" / "vectors" / "c2-auth.json"
SHARED_VECTORS = REPO.parent / "shared" / "spec" / "vectors" / "c2-auth.json"


def _vectors_path() -> pathlib.Path:
    # The repository's copy must exist either way: a missing copy fails, it is not skipped.
    if not REPO_VECTORS.is_file():
        raise FileNotFoundError(f"test vectors missing: {REPO_VECTORS}")
    return SHARED_VECTORS if SHARED_VECTORS.is_file() else REPO_VECTORS


def _vectors():
    return json.loads(_vectors_path().read_text(encoding="utf-8"))["vectors"]


def test_vectors_file_is_there():
    assert len(_vectors()) >= 3, _vectors_path()


@pytest.mark.skipif(not SHARED_VECTORS.is_file(), reason="no ../shared beside the repository")
def test_repository_copy_is_current():
    assert REPO_VECTORS.read_bytes() == SHARED_VECTORS.read_bytes(), (
        "tests/vectors/c2-auth.json is stale: copy it from ../shared/spec/vectors/"
    )


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_c2_vectors(vector):
    got = c2.sign(
        vector["ak"],
        vector["sk"],
        vector["timestamp"],
        vector["method"],
        vector["uri"],
        vector["signedHeaders"],
        vector["body"].encode("utf-8"),
        query=vector["query"],
    )
    assert got == vector["authorization"]


def test_normalize():
    assert c2.normalize("é ü") == "%C3%A9%20%C3%BC"
    assert c2.normalize("ABCXYZabcxyz0189-._~") == "ABCXYZabcxyz0189-._~"
    assert c2.normalize(b"/+=%\n\xff") == "%2F%2B%3D%25%0A%FF"


def test_canonical_request_layout():
    # The same layouts as the Rust unit test `canonical_request_layout` (src/auth/c2.rs).
    assert (
        c2.canonical_request("POST", "/p", None, "content-type;host", {"host": "h:1", "content-type": "a/b"}, b"{x}")
        == "POST\n/p\ncontent-type;host\ncontent-type:a%2Fb\nhost:h%3A1\n%7Bx%7D"
    )
    assert c2.canonical_request("GET", "/p", {"a": "1"}, "host", {"host": "h"}, b"") == "GET\n/p\na=1\nhost\nhost:h\n"
