#!/usr/bin/env python3
"""Render and lint a chart with Helm's own Go code (the helm-python-sdk bindings), for the tests
and for a look without a helm binary:

    python3 charts/helm.py render charts/freshplan -f values.yaml [--name freshplan] [--namespace crm]
    python3 charts/helm.py notes charts/freshplan -f values.yaml
    python3 charts/helm.py lint charts/freshplan -f values.yaml

`-f` is repeatable, later files override earlier ones key by key as with helm; `-f -` reads
standard input. `render` prints the manifests as one YAML stream in template order, each headed by
`# Source: <template>` as `helm template` does, hooks included and NOTES.txt left out. `lint`
prints each finding as `[SEVERITY] path: message`. Exit status: 0 ok, 1 render or lint error (the
message on standard error), 3 helm_python missing.
"""

import argparse
import sys

try:
    from helm_python import errors as helm_errors
    from helm_python.chart import Chart, lint, values_from_yaml
except ImportError as error:
    print(f"helm_python is not importable ({error}): pip install helm-python-sdk", file=sys.stderr)
    sys.exit(3)

SEVERITIES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def merge(base, override):
    """`override` over `base`: maps merged key by key, anything else replaced (helm's -f order)."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base.get(key), value) if key in base else value
    return merged


def read_values(files):
    values = {}
    for path in files:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        values = merge(values, values_from_yaml(text) or {})
    return values


def rendered(args, notes):
    with Chart.load(args.chart) as chart:
        # Helm validates values against values.schema.json on install, not always in render.
        chart.validate_schema(args.values)
        manifests = chart.render(args.values, name=args.name, namespace=args.namespace, is_install=True)
    for template in sorted(manifests):
        if template.endswith("NOTES.txt") == notes and manifests[template].strip():
            yield template, manifests[template]


def render(args):
    for template, text in rendered(args, notes=False):
        print(f"---\n# Source: {template}\n{text.strip()}")


def notes(args):
    for _, text in rendered(args, notes=True):
        print(text)


def run_lint(args):
    report = lint(args.chart, args.values, strict=True, namespace=args.namespace)
    for message in report.get("messages", []):
        severity = SEVERITIES.get(message.get("severity"), "UNKNOWN")
        print(f"[{severity}] {message.get('path')}: {message.get('error')}")
    for error in report.get("errors", []) or []:
        print(f"[ERROR] {error}")
    failed = report.get("errors") or any(m.get("severity", 0) >= 2 for m in report.get("messages", []))
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["render", "notes", "lint"])
    parser.add_argument("chart")
    parser.add_argument("-f", "--values", dest="files", action="append", default=[])
    parser.add_argument("--name", default="freshplan")
    parser.add_argument("--namespace", default="freshplan")
    args = parser.parse_args()
    try:
        args.values = read_values(args.files)
        if args.command == "lint":
            return run_lint(args)
        {"render": render, "notes": notes}[args.command](args)
    except helm_errors.HelmError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
