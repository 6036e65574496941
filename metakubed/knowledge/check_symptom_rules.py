#!/usr/bin/env python3
"""Check metakubed/knowledge/symptom_rules.yaml.

Validates the schema (required keys, allowed values of on/category/at, unique ids,
snake_case symptoms, CamelCase causes), rejects regex syntax the Rust `regex` crate does
not support (lookaround, backreferences), compiles every message regex with Python `re`,
and prints the rule count with counts per `on`, per category and per `at`.

Usage:
    python3 check_symptom_rules.py [RULES.yaml] [--src-root DIR]

--src-root DIR: a kubernetes/kubernetes checkout (at the file's `commit`); every rule's
`source` path must then exist under DIR.

Exit status 0 when the file passes, 1 otherwise. Needs PyYAML (pip install pyyaml).
"""
import argparse
import collections
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("PyYAML is required: pip install pyyaml")

ON = {"event", "container_waiting", "container_terminated", "pod_status",
      "scheduling", "node_condition", "controller_condition"}
CATEGORY = {"resource", "network", "scheduling", "image", "configuration",
            "storage", "system", "application"}
AT = {"self", "workload", "node", "pvc", "pv", "storageclass", "quota", "limitrange",
      "serviceaccount", "configmap", "secret", "service", "namespace"}
KEYS = ["id", "on", "reason", "message", "involved", "symptom", "cause", "category",
        "at", "source", "quote", "meaning", "fix"]

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
CAMEL = re.compile(r"^[A-Z][a-z0-9]+([A-Z][a-z0-9]*)*$")
ID = re.compile(r"^[a-z][a-z0-9]*\.[A-Za-z][A-Za-z0-9-]*(\.[a-z0-9][a-z0-9_-]*)+$")
KIND = re.compile(r"^[A-Z][A-Za-z]+$")
SHA = re.compile(r"^[0-9a-f]{40}$")
# Syntax the Rust `regex` crate rejects (or Python and Rust read differently).
UNSUPPORTED = [
    (re.compile(r"\(\?=|\(\?!"), "lookahead"),
    (re.compile(r"\(\?<[=!]"), "lookbehind"),
    (re.compile(r"(?<!\\)\\[1-9]"), "numeric backreference"),
    (re.compile(r"\(\?P="), "named backreference"),
    (re.compile(r"\\k<"), "named backreference"),
    (re.compile(r"\(\?<[A-Za-z_]"), "(?<name>) group: use (?P<name>) for Python and Rust"),
    (re.compile(r"\(\?(?!P<[A-Za-z_])[a-zA-Z]*[^a-zA-Z:)-]"), "unsupported group syntax"),
]
ALLOWED_GROUPS = {"name"}


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader that, like YAML 1.2, reads only true/false as booleans.

    PyYAML follows YAML 1.1, where the key `on` (and yes/no/off) is a boolean.
    """


Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def check(path, src_root=None):
    errors = []
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=Yaml12Loader)
    if not isinstance(doc, dict):
        return ["top level is not a mapping"], []
    commit = doc.get("commit")
    if not isinstance(commit, str) or not SHA.match(commit):
        errors.append(f"commit: not a 40-hex sha: {commit!r}")
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        errors.append("rules: missing or empty")
        return errors, []
    seen = set()
    for n, rule in enumerate(rules):
        where = f"rules[{n}]"
        if not isinstance(rule, dict):
            errors.append(f"{where}: not a mapping")
            continue
        rid = rule.get("id")
        where = f"rules[{n}] {rid}"
        missing = [k for k in KEYS if k not in rule]
        extra = [k for k in rule if k not in KEYS]
        if missing:
            errors.append(f"{where}: missing keys {missing}")
        if extra:
            errors.append(f"{where}: unknown keys {extra}")
        for k in KEYS:
            if k in rule and not isinstance(rule[k], str):
                errors.append(f"{where}: {k} must be a string, got {type(rule[k]).__name__}")
        if missing or any(not isinstance(rule.get(k), str) for k in KEYS):
            continue
        if not ID.match(rid):
            errors.append(f"{where}: id is not component.Reason.variant")
        if rid in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(rid)
        if rule["on"] not in ON:
            errors.append(f"{where}: on={rule['on']!r} not in {sorted(ON)}")
        if rule["category"] not in CATEGORY:
            errors.append(f"{where}: category={rule['category']!r} not allowed")
        if rule["at"] not in AT:
            errors.append(f"{where}: at={rule['at']!r} not allowed")
        if rule["on"] == "scheduling" and rule["reason"] != "":
            errors.append(f"{where}: scheduling rules must leave reason empty")
        if rule["on"] != "scheduling" and not rule["reason"]:
            errors.append(f"{where}: reason is empty")
        if not SNAKE.match(rule["symptom"]):
            errors.append(f"{where}: symptom {rule['symptom']!r} is not snake_case")
        if not CAMEL.match(rule["cause"]):
            errors.append(f"{where}: cause {rule['cause']!r} is not CamelCase")
        if not KIND.match(rule["involved"]):
            errors.append(f"{where}: involved {rule['involved']!r} is not a Kind")
        for k in ("source", "quote", "meaning", "fix"):
            if not rule[k].strip():
                errors.append(f"{where}: {k} is empty")
        src = rule["source"]
        if src.startswith("/") or ".." in src.split("/"):
            errors.append(f"{where}: source must be a repository-relative path")
        elif src_root and not os.path.exists(os.path.join(src_root, src)):
            errors.append(f"{where}: source {src} not found under {src_root}")
        msg = rule["message"]
        bad = [why for rx, why in UNSUPPORTED if rx.search(msg)]
        if bad:
            errors.append(f"{where}: message uses {', '.join(sorted(set(bad)))}")
            continue
        try:
            compiled = re.compile(msg)
        except re.error as e:
            errors.append(f"{where}: message does not compile: {e}")
            continue
        groups = set(compiled.groupindex)
        if groups - ALLOWED_GROUPS:
            errors.append(f"{where}: named groups {sorted(groups - ALLOWED_GROUPS)}; only (?P<name>...) is used")
        if "name" in groups and rule["at"] in ("self", "workload"):
            errors.append(f"{where}: captures name but at={rule['at']} names no object")
    return errors, rules


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", default=os.path.join(here, "symptom_rules.yaml"))
    ap.add_argument("--src-root", help="kubernetes/kubernetes checkout to check `source` paths against")
    args = ap.parse_args()
    errors, rules = check(args.path, args.src_root)
    for e in errors:
        print("ERROR:", e)
    good = [r for r in rules if isinstance(r, dict)]
    print(f"rules: {len(good)}")
    for key in ("on", "category", "at"):
        counts = collections.Counter(str(r.get(key)) for r in good)
        print(f"per {key}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if errors:
        print(f"FAILED: {len(errors)} error(s)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
