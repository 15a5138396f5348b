"""Validation of realstat's deployment files, run by scripts/validate-deploy.

The facts the deployment files must agree with (settings and their environment variables and
flags, each command's flags, the keys-file fields, the admin routes, the metrics with their types
and labels) come from the binary itself: `realstat config schema` and `realstat metrics list`
(see facts.py). Nothing here reads Rust source for them.

Modules, one concern each:
  report      the check runner: prints every check, records errors, the summary
  common      the repository root, reading files
  facts       the binary: find or build it, read its two JSON documents
  tools       the third-party validators (yamllint, hadolint, Compose, nginx, Kubernetes, promtool)
  settings    config files, keys files, environment variables and command lines against the schema
  promql      PromQL parsing and metric/label names against the metric table
  dockerfile, compose, kubernetes, prometheus, grafana, docs: the files of each
  selftest    proof that the name checks reject unknown names
"""
