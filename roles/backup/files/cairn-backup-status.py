#!/usr/bin/python3
"""The newest borgmatic archive of this host, for cairn's backup verify and restore drill.

    cairn-backup-status [MAX_AGE_HOURS]

Runs `borgmatic rlist --json` (borgmatic 1.7, Borg 1.2) and prints key=value lines: archives=<count>,
newest=<name>, age_s=<seconds since it started>. With MAX_AGE_HOURS, exits 1 when there is no archive or
the newest is older. Exit 2 when borgmatic fails. Borg 1.2 writes archive times as local time without a zone,
so they are compared with this host's local clock.
"""
import datetime
import json
import subprocess
import sys


def main() -> int:
    limit = float(sys.argv[1]) * 3600 if len(sys.argv) > 1 else None
    run = subprocess.run(["borgmatic", "rlist", "--json"], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"borgmatic rlist failed (exit {run.returncode}): {(run.stderr or run.stdout).strip()[-2000:]}")
        return 2
    try:
        repositories = json.loads(run.stdout)
    except ValueError:
        print(f"borgmatic rlist --json did not print JSON: {run.stdout[:300]!r}")
        return 2
    archives = [a for repo in repositories for a in repo.get("archives", [])]
    print(f"archives={len(archives)}")
    if not archives:
        print("newest=")
        return 1 if limit is not None else 0
    newest = max(archives, key=lambda a: a["start"])
    started = datetime.datetime.fromisoformat(newest["start"])
    age = (datetime.datetime.now() - started).total_seconds()
    print(f"newest={newest['name']}")
    print(f"age_s={age:.0f}")
    if limit is not None and age > limit:
        print(f"the newest archive is {age / 3600:.1f} h old, more than {limit / 3600:.1f} h")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
