"""The Dockerfile against Cargo.toml (the build context cargo needs), .dockerignore, the files the
crate compiles in, and the binary's admin routes and environment variables."""
import fnmatch
import re
import tomllib

from . import facts as F
from .common import ROOT, read
from .report import err
from .settings import check_env, check_route


def dockerignore_excluded():
    """A predicate: is a path excluded from the build context by .dockerignore (the last
    matching pattern wins; "!" re-includes)."""
    ignore = [l.strip() for l in read(".dockerignore").splitlines() if l.strip() and not l.startswith("#")]

    def excluded(path):
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        out = False
        for pat in ignore:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/").removeprefix("**/")
            if any(fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], pat)
                   for p in prefixes):
                out = not neg
        return out
    return excluded


def cargo_targets():
    """The source file of every target Cargo.toml declares (the dependency layer needs a
    placeholder for each)."""
    cargo = tomllib.loads(read("Cargo.toml"))
    needed = [cargo.get("lib", {}).get("path", "src/lib.rs")]
    for kind, d in (("bin", "src/bin"), ("bench", "benches"), ("test", "tests"), ("example", "examples")):
        needed += [b.get("path", f"{d}/{b['name']}.rs") for b in cargo.get(kind, [])]
    return needed


def compiled_in():
    """(source, file) for every file the crate compiles in with include_str!/include_bytes!: the
    build context must hold them. (Build inputs, like Cargo.toml's targets: not facts the binary
    could report.)"""
    out = []
    for f in sorted((ROOT / "src").rglob("*.rs")):
        for inc in re.findall(r'include_(?:str|bytes)!\("([^"]+)"\)', f.read_text()):
            out.append((f.relative_to(ROOT).as_posix(), (f.parent / inc).resolve().relative_to(ROOT).as_posix()))
    return out


def section_dockerfile():
    where = "Dockerfile"
    text = read(where)
    needed = cargo_targets()
    dummy = re.search(r"RUN mkdir -p (.*?)cargo build ", text, re.S)
    for p in needed:
        if not dummy or f"> {p}" not in dummy.group(1):
            err(where, f"the dependency layer does not create a placeholder {p} (Cargo.toml declares it)")
        top = p.split("/")[0]
        if not re.search(rf"^COPY {top} ", text, re.M):
            err(where, f"{top}/ is never copied into the builder")
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, re.M)
    excluded = dockerignore_excluded()
    for src in copied:
        if not (ROOT / src).exists():
            err(where, f"COPY source {src} does not exist")
        if excluded(src):
            err(where, f"COPY source {src} is excluded by .dockerignore")
    for source, target in compiled_in():
        if not any(target == c or target.startswith(c.rstrip("/") + "/") for c in copied):
            err(where, f"{source} compiles in {target}, which the Dockerfile never copies")
        elif excluded(target):
            err(where, f"{target} (compiled in by {source}) is excluded by .dockerignore")
    # Every listener's default port is exposed; a shell fallback for a setting is its default.
    listeners = {s.key: s.default.rpartition(":")[2] for s in F.FACTS.settings.values()
                 if s.type == "address" and s.default}
    if not listeners:
        err(where, "the schema gives no listener address with a default")
    for key, port in sorted(listeners.items()):
        if not re.search(rf"^EXPOSE .*\b{port}\b", text, re.M):
            err(where, f"does not EXPOSE {port} (the default port of {key})")
    by_env = {s.env: s for s in F.FACTS.settings.values()}
    for env, fallback in re.findall(r"\$\{(REALSTAT_\w+):-([^}]*)\}", text):
        if env in by_env and fallback != by_env[env].default:
            err(where, f"${{{env}:-{fallback}}}: the default of {by_env[env].key} is {by_env[env].default!r}")
    if not re.search(r"^USER 10001", text, re.M):
        err(where, "does not run as uid 10001")
    if 'ENTRYPOINT ["realstat"]' not in text or 'CMD ["serve"]' not in text:
        err(where, 'ENTRYPOINT ["realstat"] / CMD ["serve"] missing')
    for path in re.findall(r"GET (/\S+) HTTP", text):
        check_route(where, "HEALTHCHECK requests", path)
    check_env(where, re.findall(r"\b(REALSTAT_[A-Z_]+)=", text))
    # The build-time variables reach the build: an ARG, passed on to cargo by an ENV.
    for env in F.BUILD_TIME_ENV:
        if not re.search(rf"^ARG {env}\b", text, re.M) or not re.search(rf"^ENV {env}=", text, re.M):
            err(where, f"{env} (read when the binary is compiled) is not an ARG passed on by ENV")
    print(f"placeholder targets {needed}; compiled-in files {[t for _, t in compiled_in()]}; "
          f"admin routes {sorted(F.FACTS.routes)}")
