"""Config files, keys files, environment variables and command lines, against the schema the
binary prints (`realstat config schema`)."""
import ipaddress
import re
import tomllib

from . import facts as F
from .common import read
from .report import err

DURATION = re.compile(r"^\d+(ms|s|m|h|d)?$")


def _check_value(where, setting, value):
    """A config-file value against its setting's type (the types the schema names; others pass)."""
    key, typ = setting.key, setting.type
    if typ == "table":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            err(where, f"{key}: a table whose values are strings")
        return
    if setting.list:
        if not isinstance(value, list):
            err(where, f"{key} = {value!r} is not a list")
            return
        values = value
    else:
        values = [value]
    for v in values:
        if typ == "duration":
            if not DURATION.match(str(v)):
                err(where, f"{key} = {v!r} is not a duration")
        elif typ == "address":
            host, _, port = str(v).rpartition(":")
            try:
                ipaddress.ip_address(host.strip("[]"))
                assert 0 < int(port) < 65536
            except (ValueError, AssertionError):
                err(where, f"{key} = {v!r} is not ip:port")
        elif typ == "ip":
            try:
                ipaddress.ip_address(v)
            except ValueError:
                err(where, f"{key}: {v!r} is not an IP address")
        elif typ == "integer":
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                err(where, f"{key} = {v!r} is not a non-negative integer")
        elif typ in ("string", "path", "zone"):
            if not isinstance(v, str):
                err(where, f"{key} = {v!r} is not a string")


def check_config_toml(where, text):
    """A config file: valid TOML, every key a setting of the schema, values of its type.
    Returns the parsed document ({} when it does not parse)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        err(where, f"not valid TOML: {e}")
        return {}
    settings, tables = F.FACTS.settings, F.FACTS.tables()

    def walk(table, path):
        for key, value in table.items():
            dotted = f"{path}{key}"
            if dotted in settings:
                _check_value(where, settings[dotted], value)
            elif dotted in tables:
                if isinstance(value, dict):
                    walk(value, f"{dotted}.")
                else:
                    err(where, f"{dotted} is a table, not a value")
            else:
                err(where, f"unknown key {dotted} (not a setting of `realstat config schema`)")
    walk(doc, "")
    return doc


def settings_in(text):
    """The settings a config file shows, set or commented out (`# key = ...`, `# [table]`)."""
    uncommented = "\n".join(
        re.sub(r"^#\s?(?=\[[\w.]+\]|[\w\"][\w.\"-]*\s*=)", "", line) for line in text.splitlines())
    doc = tomllib.loads(uncommented)
    found = set()

    def walk(table, path):
        for key, value in table.items():
            dotted = f"{path}{key}"
            found.add(dotted)
            if isinstance(value, dict) and dotted not in F.FACTS.settings:
                walk(value, f"{dotted}.")
    walk(doc, "")
    return found, uncommented


def check_example_config(where):
    """deploy/realstat.toml, the annotated example of every key: its keys (set and commented out)
    are settings, and every setting is in it."""
    text = read(where)
    check_config_toml(where, text)
    try:
        shown, uncommented = settings_in(text)
    except tomllib.TOMLDecodeError as e:
        err(where, f"with its commented-out keys uncommented, not valid TOML: {e}")
        return
    check_config_toml(where, uncommented)  # the commented-out keys too (the same findings once)
    for key in sorted(set(F.FACTS.settings) - shown):
        err(where, f"setting {key} ({F.FACTS.settings[key].env}) is not in the example")
    print(f"{where}: {len(shown & set(F.FACTS.settings))} of {len(F.FACTS.settings)} settings shown")


def effective(key, conf, env):
    """A setting's value in a container: its environment variable (env), else the config file
    (conf, parsed), else the schema's default. Flags aside: no deployment passes any."""
    setting = F.FACTS.settings[key]
    if env.get(setting.env) is not None:
        return env[setting.env]
    table = conf
    for part in key.split(".")[:-1]:
        table = table.get(part, {})
    return table.get(key.rsplit(".", 1)[-1], setting.default)


def check_keys_toml(where, text):
    """A keys file: only [[key]] tables (the table name from the schema), known fields, exactly one
    of sk and sk_env, vdns "*" or 1..5000, ak without '/'. Returns the keys."""
    table, allowed = F.FACTS.keys_table, F.FACTS.keys_fields
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        err(where, f"not valid TOML: {e}")
        return []
    if set(doc) != {table} or not isinstance(doc[table], list) or not doc[table]:
        err(where, f"must hold only [[{table}]] tables, at least one")
        return []
    for i, k in enumerate(doc[table], 1):
        for f in sorted(set(k) - allowed):
            err(where, f"[[{table}]] #{i}: unknown field {f} (fields: {sorted(allowed)})")
        if ("sk" in k) == ("sk_env" in k):
            err(where, f"[[{table}]] #{i}: needs exactly one of sk or sk_env")
        v = k.get("vdns")
        if not (v == "*" or (isinstance(v, list) and v and all(isinstance(x, int) and 1 <= x <= 5000 for x in v))):
            err(where, f"[[{table}]] #{i}: vdns must be \"*\" or a non-empty list of 1..5000")
        if not k.get("ak") or "/" in k.get("ak", "/"):
            err(where, f"[[{table}]] #{i}: ak must be non-empty without '/'")
    return doc[table]


def check_env(where, names, command=None):
    """REALSTAT_* names exist: read by `command` when given, else by any command (or the build)."""
    facts = F.FACTS
    known = facts.commands[command]["env"] if command in facts.commands else facts.envs
    for n in names:
        if not n.startswith("REALSTAT_"):
            continue
        if n not in facts.envs:
            err(where, f"{n} is not an environment variable of realstat (`realstat config schema`)")
        elif n not in known:
            err(where, f"{n} is not read by realstat {command}")


def command_of(argv):
    """The subcommand an argument list runs (nested ones by their words: "config schema"); serve
    when it names none, as the image's CMD and a bare `realstat --flag ...` do."""
    named = [c for c in F.FACTS.commands if c.split() == list(argv[:len(c.split())])]
    return max(named, key=len) if named else "serve"


def check_command(where, argv):
    """Every --flag of a realstat command line is a flag of its subcommand."""
    if not argv:
        return
    cmd = command_of(argv)
    flags = F.FACTS.commands[cmd]["flags"] | {"--help", "--version"}
    for a in argv:
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            if flag not in flags:
                err(where, f"realstat {cmd} has no flag {flag} (`realstat config schema`)")


def check_route(where, what, path):
    if path not in F.FACTS.routes:
        err(where, f"{what} {path}, not a route of the admin listener (`realstat metrics list`)")
