"""Proof, on every run, that the name checks bite: each is fed a name the binary does not know
and must report it, and fed the binary's own names and must not."""
from . import facts as F
from .promql import check_promql
from .report import collect, err
from .settings import check_command, check_config_toml, check_env, check_keys_toml, check_route


def _case(what, fn, *args, want):
    """Runs one check on synthetic input; want: a substring the findings must contain (None:
    no finding at all)."""
    with collect() as found:
        fn("selftest", *args)
    if want is None and found:
        err("selftest", f"{what}: unexpected findings {found}")
    elif want is not None and not any(want in f for f in found):
        err("selftest", f"{what}: not reported (findings: {found})")
    else:
        print(f"{what}: {'accepted' if want is None else 'reported'}")


def section_selftest():
    facts = F.FACTS
    setting = next(s for s in facts.settings.values() if "." in s.key and s.type == "duration")
    table, key = setting.key.rsplit(".", 1)
    counter = next(n for n, (k, labels) in sorted(facts.metrics.items()) if k == "counter" and labels)
    label = facts.metrics[counter][1][0]
    route = sorted(facts.routes)[0]
    keys = facts.keys_table
    # The binary's own names pass.
    _case(f"PromQL on {counter}{{{label}}}", check_promql, f'sum by ({label}) (rate({counter}{{{label}="x"}}[5m]))',
          want=None)
    _case(f"environment {setting.env}", check_env, [setting.env], "serve", want=None)
    _case(f"flag {setting.flag}", check_command, ["serve", f"{setting.flag}=1s"], want=None)
    _case(f"config key {setting.key}", check_config_toml, f'[{table}]\n{key} = "30s"\n', want=None)
    _case(f"keys file [[{keys}]]", check_keys_toml, f'[[{keys}]]\nak = "a"\nsk = "s"\nvdns = "*"\n', want=None)
    _case(f"route {route}", check_route, "probe", route, want=None)
    # Names it does not know are reported.
    _case("PromQL on an unknown metric", check_promql, "rate(realstat_selftest_unknown_total[5m])",
          want="unknown metric realstat_selftest_unknown_total")
    _case(f"PromQL on an unknown label of {counter}", check_promql, f'{counter}{{selftest_label="x"}}',
          want="no label 'selftest_label'")
    _case("an unknown environment variable", check_env, ["REALSTAT_SELFTEST_UNKNOWN"],
          want="REALSTAT_SELFTEST_UNKNOWN is not")
    other = next((c for c, v in sorted(facts.commands.items()) if setting.env not in v["env"]), None)
    if other:
        _case(f"{setting.env} given to realstat {other}", check_env, [setting.env], other,
              want=f"{setting.env} is not read by realstat {other}")
    _case("an unknown flag", check_command, ["serve", "--selftest-unknown"], want="no flag --selftest-unknown")
    _case(f"an unknown key in [{table}]", check_config_toml, f"[{table}]\nselftest_unknown = 1\n",
          want=f"unknown key {table}.selftest_unknown")
    _case("an unknown top-level key", check_config_toml, "selftest_unknown = 1\n", want="unknown key selftest_unknown")
    _case(f"a bad value of {setting.key} ({setting.type})", check_config_toml, f'[{table}]\n{key} = "soon"\n',
          want=f"{setting.key} = 'soon'")
    _case("an unknown keys-file field", check_keys_toml,
          f'[[{keys}]]\nak = "a"\nsk = "s"\nvdns = "*"\nselftest_unknown = 1\n', want="unknown field selftest_unknown")
    _case("an unknown admin route", check_route, "probe", "/selftest-unknown", want="/selftest-unknown, not a route")
