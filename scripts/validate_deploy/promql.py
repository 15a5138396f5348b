"""PromQL: parsed with promql-parser (the Rust crate's bindings), every series name and label
matcher checked against the binary's metric table (`realstat metrics list`)."""
import re

import promql_parser

from .facts import series_facts
from .report import err

GRAFANA_VARS = [(re.compile(r"\$__(rate_interval|interval|range)\b"), "5m"),
                (re.compile(r"\[\$\{?\w+\}?\]"), "[5m]"),
                (re.compile(r"\$\{\w+(:\w+)?\}|\$\w+"), ".*")]


def check_promql(where, expr, grafana=False):
    """Parses expr (Grafana's variables replaced first when grafana) and checks its selectors.
    Returns the series names it selects."""
    text = expr
    if grafana:
        for pat, rep in GRAFANA_VARS:
            text = pat.sub(rep, text)
    try:
        ast = promql_parser.parse(text)
    except ValueError as e:
        err(where, f"PromQL does not parse: {e}: {expr!r}")
        return set()
    names = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name
            if not name:
                err(where, f"selector without a metric name in {expr!r}")
                return
            names.add(name)
            known, labels = series_facts(name)
            if not known:
                err(where, f"unknown metric {name} (not in `realstat metrics list`)")
                return
            for m in node.matchers.matchers:
                if m.name != "__name__" and m.name not in labels:
                    err(where, f"{name} has no label {m.name!r} (labels: {sorted(labels)})")
    promql_parser.walk(ast, visit)
    return names
