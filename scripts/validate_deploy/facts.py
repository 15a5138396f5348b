"""What the deployment files must agree with, from the binary:

  realstat config schema   the settings (config-file key, environment variable, flag, type, list,
                           default), the keys-file table and fields, each command's flags and
                           environment variables
  realstat metrics list    the admin listener's routes; every metric with its type and labels

The binary is $REALSTAT_BIN when set, otherwise `cargo build --bin realstat` (debug profile)
builds it and cargo says where it is (CARGO_TARGET_DIR and cargo's config respected).

Test hook: REALSTAT_SCHEMA_JSON and REALSTAT_METRICS_JSON name files holding those two documents;
each one set replaces the binary for that document (no binary is built when both are set).
"""
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .report import CheckFailed, err

ROOT = Path.cwd()

# Environment variables read when the binary is compiled, not when it runs: the binary cannot
# list them. REALSTAT_GIT_HASH (option_env!) becomes the git label of realstat_build_info; the
# Dockerfile passes it as a build argument.
BUILD_TIME_ENV = {"REALSTAT_GIT_HASH": ("realstat_build_info", "git")}

METRIC_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FactsError(CheckFailed):
    """The facts could not be had: the check fails with this message."""


@dataclass
class Setting:
    key: str          # dotted path in the config file: "kafka.topic"
    env: str
    flag: str
    type: str
    list: bool
    default: object
    description: str


@dataclass
class Facts:
    source: str                                    # where the facts came from, for the output
    settings: dict = field(default_factory=dict)   # key -> Setting
    keys_table: str = ""                           # the keys file's array of tables: [[key]]
    keys_fields: set = field(default_factory=set)
    commands: dict = field(default_factory=dict)   # command -> {"flags": set, "env": set}
    routes: set = field(default_factory=set)
    metrics: dict = field(default_factory=dict)    # name -> (type, [labels])
    help: dict = field(default_factory=dict)       # name -> help text

    @property
    def envs(self):
        """Every environment variable the binary reads at run time, or its build reads."""
        out = set(BUILD_TIME_ENV)
        for c in self.commands.values():
            out |= c["env"]
        return out | {s.env for s in self.settings.values()}

    def tables(self):
        """Config-file tables: every dotted prefix of a key (a `table` setting is one too)."""
        out = set()
        for key in self.settings:
            parts = key.split(".")
            out |= {".".join(parts[:i]) for i in range(1, len(parts))}
        return out


def _binary():
    if os.environ.get("REALSTAT_BIN"):
        return os.environ["REALSTAT_BIN"], "$REALSTAT_BIN"
    cmd = ["cargo", "build", "--quiet", "--bin", "realstat", "--message-format=json-render-diagnostics"]
    try:
        p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise FactsError(f"cannot run cargo to build the binary (or set REALSTAT_BIN): {e}") from e
    if p.returncode != 0:
        print(p.stderr.rstrip("\n"))  # the compiler's errors, inside this check's output
        raise FactsError(f"{' '.join(cmd)} failed (exit {p.returncode})")
    for line in p.stdout.splitlines():
        msg = json.loads(line) if line.startswith("{") else {}
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "realstat" \
                and msg.get("executable"):
            return msg["executable"], "cargo build --bin realstat"
    raise FactsError(f"{' '.join(cmd)} named no realstat executable")


def _document(hook, args, binary):
    """One JSON document: from the test hook's file, or from the binary."""
    if os.environ.get(hook):
        path = os.environ[hook]
        try:
            return json.loads(Path(path).read_text()), f"${hook}={path}"
        except (OSError, json.JSONDecodeError) as e:
            raise FactsError(f"${hook}: {e}") from e
    exe, how = binary()
    try:
        p = subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise FactsError(f"cannot run {exe} ({how}): {e}") from e
    if p.returncode != 0:
        raise FactsError(f"`realstat {' '.join(args)}` exited {p.returncode}: {p.stderr.strip()}")
    try:
        return json.loads(p.stdout), f"`realstat {' '.join(args)}` ({how}: {exe})"
    except json.JSONDecodeError as e:
        raise FactsError(f"`realstat {' '.join(args)}` printed no JSON object: {e}") from e


def _need(cond, what):
    if not cond:
        raise FactsError(f"unexpected shape: {what}")


def parse_schema(doc, facts):
    """`realstat config schema` into facts, checking its shape (the contract of that command)."""
    _need(isinstance(doc, dict) and {"settings", "keys_file", "commands"} <= set(doc),
          "want an object with settings, keys_file and commands")
    for s in doc["settings"]:
        _need(isinstance(s, dict) and {"key", "env", "flag", "type", "list", "default"} <= set(s),
              f"setting {s!r}")
        _need(s["key"] not in facts.settings, f"setting {s['key']} listed twice")
        _need(s["env"].startswith("REALSTAT_") and s["flag"].startswith("--"),
              f"setting {s['key']}: env {s['env']!r}, flag {s['flag']!r}")
        _need(s["default"] is None or isinstance(s["default"], str),
              f"setting {s['key']}: default {s['default']!r} is neither a string nor null")
        facts.settings[s["key"]] = Setting(s["key"], s["env"], s["flag"], s["type"], bool(s["list"]),
                                           s["default"], s.get("description", ""))
    kf = doc["keys_file"]
    _need(isinstance(kf, dict) and kf.get("table") and kf.get("fields"), f"keys_file {kf!r}")
    facts.keys_table, facts.keys_fields = kf["table"], set(kf["fields"])
    for name, c in doc["commands"].items():
        _need(isinstance(c, dict) and isinstance(c.get("flags"), list) and isinstance(c.get("env"), list),
              f"command {name}")
        _need(all(f.startswith("--") for f in c["flags"]), f"command {name}: flags {c['flags']}")
        facts.commands[name] = {"flags": set(c["flags"]), "env": set(c["env"])}
    _need(facts.settings, "no settings")
    _need("serve" in facts.commands, "no serve command")
    for s in facts.settings.values():
        _need(s.flag in facts.commands["serve"]["flags"] and s.env in facts.commands["serve"]["env"],
              f"serve does not take setting {s.key} ({s.flag}, {s.env})")


def parse_metrics(doc, facts):
    """`realstat metrics list` into facts, checking its shape."""
    _need(isinstance(doc, dict) and isinstance(doc.get("routes"), list) and isinstance(doc.get("metrics"), list),
          "want an object with routes and metrics")
    _need(all(isinstance(r, str) and r.startswith("/") for r in doc["routes"]), f"routes {doc['routes']}")
    facts.routes = set(doc["routes"])
    for m in doc["metrics"]:
        _need(isinstance(m, dict) and {"name", "type", "labels"} <= set(m), f"metric {m!r}")
        _need(m["type"] in METRIC_TYPES, f"metric {m['name']}: type {m['type']!r}")
        _need(m["name"] not in facts.metrics, f"metric {m['name']} listed twice")
        facts.metrics[m["name"]] = (m["type"], list(m["labels"]))
        facts.help[m["name"]] = m.get("help", "")
    _need(facts.routes and facts.metrics, "no routes or no metrics")


def load():
    """The facts, from the binary (built when needed) or the test hook's files."""
    exe = []

    def binary():
        if not exe:
            exe.append(_binary())
        return exe[0]

    schema, s_from = _document("REALSTAT_SCHEMA_JSON", ["config", "schema"], binary)
    metrics, m_from = _document("REALSTAT_METRICS_JSON", ["metrics", "list"], binary)
    facts = Facts(source=f"schema from {s_from}; metrics from {m_from}")
    parse_schema(schema, facts)
    parse_metrics(metrics, facts)
    return facts


# The facts of this run, set by main() before any check that needs them.
FACTS = None

TARGET_LABELS = {"instance", "job", "service", "pod", "namespace", "container", "endpoint"}
BUILTIN_SERIES = {"up": set()}  # produced by Prometheus itself for every target


def series_facts(name):
    """(known, labels) of a series name as it appears in PromQL (histogram suffixes included)."""
    metrics = FACTS.metrics
    if name in BUILTIN_SERIES:
        return True, BUILTIN_SERIES[name] | TARGET_LABELS
    if name in metrics:
        kind, labels = metrics[name]
        if kind in ("histogram", "summary"):
            return False, set()  # only queried through a suffix (a summary: or by quantile)
        return True, set(labels) | TARGET_LABELS
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and metrics.get(base, ("",))[0] == "histogram":
            extra = {"le"} if suffix == "_bucket" else set()
            return True, set(metrics[base][1]) | extra | TARGET_LABELS
    return False, set()


def load_and_print():
    """The facts check: loads the facts and prints them. Returns them."""
    facts = load()
    print(facts.source)
    print(f"{len(facts.metrics)} metrics:")
    for n, (k, labels) in sorted(facts.metrics.items()):
        print(f"  {n} {k} {labels}")
    print(f"{len(facts.settings)} settings; config tables {sorted(facts.tables())}")
    print(f"{len(facts.envs)} environment variables: {' '.join(sorted(facts.envs))}")
    for cmd, c in sorted(facts.commands.items()):
        print(f"realstat {cmd}: {' '.join(sorted(c['flags']))}")
    print(f"keys file: [[{facts.keys_table}]] {sorted(facts.keys_fields)}; admin routes {sorted(facts.routes)}")
    # Build-time variables: the metric that shows them must exist with that label.
    for env, (metric, label) in BUILD_TIME_ENV.items():
        if label not in facts.metrics.get(metric, ("", []))[1]:
            err(env, f"read at build time for {metric}{{{label}}}, which the binary does not report")
    return facts
