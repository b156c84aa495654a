#!/usr/bin/python3
"""Read-only health checks of a Prometheus server for cairn's verify (prometheus role).

    cairn-prometheus-health targets URL    every active scrape target is up (prints the ones that are not)
    cairn-prometheus-health rules URL GROUP...
                                           every named rule group is loaded and every rule's health is ok
    cairn-prometheus-health alertmanagers URL
                                           Prometheus has at least one active Alertmanager

URL is Prometheus' base URL (http://127.0.0.1:9090). Exit 0 when healthy, 1 when not (with the reason on
stdout), 2 when the API cannot be asked. Python's standard library only.
"""
import json
import sys
import urllib.request


def api(base: str, path: str) -> dict:
    try:
        with urllib.request.urlopen(base.rstrip("/") + path, timeout=10) as response:
            body = json.load(response)
    except Exception as err:  # noqa: BLE001 (any failure to ask is exit 2)
        print(f"cannot query {base}{path}: {err}")
        sys.exit(2)
    if body.get("status") != "success":
        print(f"{path}: status {body.get('status')}: {body.get('error')}")
        sys.exit(2)
    return body["data"]


def targets(base: str) -> int:
    active = api(base, "/api/v1/targets?state=active")["activeTargets"]
    down = [t for t in active if t.get("health") != "up"]
    for t in active:
        print(f"{t['labels'].get('job')}/{t['labels'].get('instance')} {t.get('health')} {t.get('lastError') or ''}".rstrip())
    if not active:
        print("no active scrape targets")
        return 1
    if down:
        print(f"{len(down)} of {len(active)} targets not up")
        return 1
    print(f"all {len(active)} targets up")
    return 0


def rules(base: str, wanted: list) -> int:
    groups = {g["name"]: g for g in api(base, "/api/v1/rules")["groups"]}
    problems = [f"rule group {name} is not loaded" for name in wanted if name not in groups]
    count = 0
    for group in groups.values():
        for rule in group["rules"]:
            count += 1
            if rule.get("health") not in ("ok", "unknown"):
                problems.append(f"{group['name']}/{rule.get('name')}: health {rule.get('health')}: {rule.get('lastError')}")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"{len(groups)} rule groups ({', '.join(sorted(groups))}), {count} rules loaded")
    return 0


def alertmanagers(base: str) -> int:
    active = api(base, "/api/v1/alertmanagers")["activeAlertmanagers"]
    if not active:
        print("Prometheus knows no active Alertmanager")
        return 1
    print(" ".join(a["url"] for a in active))
    return 0


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    command, base = sys.argv[1], sys.argv[2]
    if command == "targets":
        return targets(base)
    if command == "rules":
        return rules(base, sys.argv[3:])
    if command == "alertmanagers":
        return alertmanagers(base)
    print(f"unknown command {command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
