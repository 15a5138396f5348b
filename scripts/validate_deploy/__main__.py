"""scripts/validate-deploy's checks: python -m validate_deploy (from the repository root, in the
validators' virtualenv, which scripts/validate-deploy prepares). Prints every check; exits 1 when
any fails."""
import sys
import tempfile
from pathlib import Path

import yaml

from . import facts as F
from .common import read
from .compose import section_compose
from .docs import section_docs
from .dockerfile import section_dockerfile
from .grafana import section_grafana
from .kubernetes import section_kubernetes
from .prometheus import section_prometheus
from .report import Runner
from .selftest import section_selftest
from .settings import check_example_config
from .tools import all_tools

SOURCE = "`realstat config schema` and `realstat metrics list`"


def alert_names():
    return [r.get("alert") for g in yaml.safe_load(read("deploy/prometheus/alerts.yml"))["groups"]
            for r in g["rules"] if r.get("alert")]


def main():
    runner = Runner()
    with tempfile.TemporaryDirectory(prefix="validate-deploy.") as tmp:
        build = all_tools(runner, Path(tmp))
        facts = runner.check(f"facts from the binary ({SOURCE}): settings, environment, flags, keys-file "
                             "fields, admin routes, metrics", F.load_and_print)
        if facts is None:
            runner.skip("the checks against the binary's facts", "no facts (see the check above)")
            return runner.summary()
        F.FACTS = facts
        runner.check("the name checks report names the binary does not know (metric, label, environment variable, "
                     "flag, config key and value, keys-file field, route)", section_selftest)
        runner.check(f"Dockerfile against Cargo.toml, .dockerignore, the compiled-in files, the admin routes and "
                     f"environment variables ({SOURCE})", section_dockerfile)
        runner.check(f"deploy/realstat.toml: every setting, set or commented out, and nothing else ({SOURCE})",
                     check_example_config, "deploy/realstat.toml")
        runner.check(f"docker-compose.yml, deploy/compose/* against the commands, flags, environment, settings, "
                     f"keys-file fields and routes ({SOURCE}); prometheus/nginx/grafana wiring", section_compose)
        runner.check("deploy/kubernetes: layout (base, components, overlays), wiring of config, keys, snapshots, "
                     "probes, services, PDB, NetworkPolicy; ServiceMonitor and PrometheusRule against the "
                     "Prometheus Operator CRD; PrometheusRule = alerts.yml", section_kubernetes, build)
        runner.check("deploy/prometheus: prometheus.yml structure; alerts.yml structure, PromQL parse, metric names "
                     "and labels", section_prometheus)
        runner.check("deploy/grafana: dashboard JSON, layout, PromQL parse, metric names and labels; provisioning",
                     section_grafana)
        runner.check("docs/operations.md: every metric (type, labels) and alert documented, every path it names "
                     "exists; no deployment file refers to ../shared", section_docs, alert_names())
    return runner.summary()


if __name__ == "__main__":
    sys.exit(main())
