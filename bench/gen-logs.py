#!/usr/bin/env python3
"""Writes N synthetic execution logs of one 20-step runbook into DIR: the workload for
`runbook stats` (bench/stats.sh).

The lines have exactly the shape src/event.rs serialises (field order, RFC 3339 UTC
timestamps with milliseconds, `null`s, optional fields left out), and the runs look like a
year of a real team's: mostly successful live runs, some failures, retries, skips, aborts,
a crash or two, manual waits of minutes, and about one rehearsal in ten. Deterministic for
a given N (seeded), so two benchmark runs read the same bytes.

usage: gen-logs.py N DIR
"""

import datetime as dt
import hashlib
import json
import os
import random
import sys

# (id, kind, confirm, typical seconds, command); manual steps wait for a person.
STEPS = [
    ("check-alerts", "auto", False, 2, "curl -fsS http://alertmanager:9093/api/v2/alerts?filter=service=orders-db"),
    ("check-lag", "auto", False, 1, "psql -h db-2 -Atc 'select extract(epoch from now() - pg_last_xact_replay_timestamp())'"),
    ("page-dba", "manual", False, 240, None),
    ("snapshot-primary", "auto", False, 90, "aws rds create-db-snapshot --db-instance-identifier db-1 --db-snapshot-identifier pre-failover"),
    ("announce", "auto", False, 1, "slack-notify '#incidents' 'failing over orders-db from db-1 to db-2'"),
    ("drain-writes", "auto", True, 15, "kubectl -n orders scale deploy/orders-writer --replicas=0"),
    ("wait-drained", "auto", False, 20, "until [ $(psql -h db-1 -Atc 'select count(*) from pg_stat_activity where state = $$active$$') -le 1 ]; do sleep 2; done"),
    ("fence-primary", "manual", False, 420, None),
    ("verify-fenced", "auto", False, 5, "! pg_isready -h db-1 -t 3"),
    ("promote", "auto", True, 12, "ssh db-2 sudo -u postgres pg_ctl promote -D /var/lib/postgresql/16/main"),
    ("wait-promoted", "auto", False, 8, "until psql -h db-2 -Atc 'select not pg_is_in_recovery()' | grep -q t; do sleep 1; done"),
    ("repoint-dns", "auto", True, 6, "aws route53 change-resource-record-sets --hosted-zone-id Z123 --change-batch file://repoint.json"),
    ("restart-writers", "auto", False, 40, "kubectl -n orders scale deploy/orders-writer --replicas=6 && kubectl -n orders rollout status deploy/orders-writer"),
    ("smoke-test", "auto", False, 10, "curl -fsS https://orders.internal/healthz && ./smoke.sh --write"),
    ("check-errors", "manual", False, 180, None),
    ("rebuild-replica", "auto", False, 300, "ansible-playbook -i inventory rebuild-replica.yml -e target=db-1"),
    ("check-replication", "auto", False, 3, "psql -h db-2 -Atc 'select client_addr, state from pg_stat_replication'"),
    ("update-inventory", "auto", False, 2, "sed -i 's/primary=db-1/primary=db-2/' inventory/orders.ini && git -C inventory commit -am failover"),
    ("write-timeline", "manual", False, 300, None),
    ("announce-done", "auto", False, 1, "slack-notify '#incidents' 'orders-db failover done: primary is db-2'"),
]
MITIGATED_AT = "smoke-test"
RESOLVED_AT = "announce-done"
OPERATORS = ["alice", "bob", "carol", "dmitri", "erin", "farah"]
NOTES = ["", "", "", "took a while to find the console", "paged the dba twice", "all clear"]


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def line(t, event, **fields):
    return json.dumps({"ts": ts(t), "event": event, **fields}, separators=(",", ":")) + "\n"


def one_run(rng, start, log_dir):
    dry = rng.random() < 0.1
    run_id = start.strftime("%Y%m%dT%H%M%S") + "%03dZ-%06x" % (start.microsecond // 1000, rng.getrandbits(24))
    path = os.path.join(log_dir, run_id + ".jsonl")
    operator = rng.choice(OPERATORS)
    detected = None
    incident = None
    if not dry and rng.random() < 0.7:
        detected = start - dt.timedelta(seconds=rng.lognormvariate(6.5, 0.8))
        incident = "INC-%d" % rng.randint(1000, 9999)
    out = [
        line(start, "run_started", schema_version=1, run_id=run_id, runbook="orders-db-failover",
             runbook_path="/srv/runbooks/orders-db-failover.toml",
             runbook_sha256=hashlib.sha256(b"orders-db-failover v3").hexdigest(),
             title="Fail over the orders PostgreSQL primary", mode="dry_run" if dry else "live",
             params={"primary": "db-1", "replica": "db-2", "pg_password": "***"},
             operator=operator, host="oncall-laptop-%d" % rng.randint(1, 9), incident=incident,
             detected_at=ts(detected) if detected else None, version="0.1.0", log_path=path)
    ]
    t = start + dt.timedelta(milliseconds=rng.randint(2, 9))
    fate = rng.random()  # how this run ends
    stop_at = None
    if fate < 0.08:
        stop_at, end_status = rng.randrange(len(STEPS)), "failed"
    elif fate < 0.13:
        stop_at, end_status = rng.randrange(len(STEPS)), "aborted"
    elif fate < 0.15:
        stop_at, end_status = rng.randrange(len(STEPS)), None  # crashed: no run_finished
    else:
        end_status = "succeeded"
    for i, (sid, kind, confirm, secs, cmd) in enumerate(STEPS):
        if stop_at is not None and i > stop_at:
            break
        if kind == "auto" and rng.random() < 0.03:
            out.append(line(t, "step_finished", step=sid, kind=kind, status="skipped", duration_ms=0,
                            attempts=0, exit_code=None, phase="run", reason="its `when` condition is false"))
            t += dt.timedelta(milliseconds=1)
            continue
        response = {}
        if kind == "manual" or confirm:
            wait = int(rng.lognormvariate(0, 0.7) * secs * 1000) if kind == "manual" else rng.randint(800, 20000)
            if dry:
                wait = wait // 3
            response = {"answer": "done" if kind == "manual" else "yes", "operator": operator}
            note = rng.choice(NOTES)
            if note:
                response["note"] = note
            response["wait_ms"] = wait
        attempts = 1
        if kind == "auto" and rng.random() < 0.05:
            attempts = rng.randint(2, 3)
        ran = kind == "auto" and not (dry and i not in (0, 1, 16))
        this_ends = stop_at == i
        status = "succeeded" if kind == "manual" else ("succeeded" if ran else "dry_run")
        if this_ends and end_status == "failed" and kind == "auto":
            status = "failed"
        if this_ends and end_status == "aborted" and kind == "manual":
            status, response["answer"] = "aborted", "abort"
        if kind == "manual":
            dur = response["wait_ms"]
        elif ran:
            dur = int(rng.lognormvariate(0, 0.5) * secs * 1000) * attempts
        else:
            dur = rng.randint(0, 3)
        if confirm:
            t += dt.timedelta(milliseconds=response["wait_ms"])
        for a in range(1, attempts + 1):
            fields = {"step": sid, "kind": kind, "attempt": a}
            if cmd:
                fields["command"] = cmd
            fields["phase"] = "run"
            out.append(line(t, "step_started", **fields))
            if ran:
                for n in range(rng.randint(1, 3)):
                    text = "%s: %s line %d, attempt %d, all within limits\n" % (sid, "ok" if a == attempts else "retrying", n, a)
                    out.append(line(t + dt.timedelta(milliseconds=n), "step_output", step=sid, stream="stdout", text=text, phase="run"))
            t += dt.timedelta(milliseconds=dur // attempts)
        if this_ends and end_status is None:
            break  # the crash: this step started and never finished
        fin = {"step": sid, "kind": kind, "status": status, "duration_ms": dur, "attempts": attempts,
               "exit_code": (0 if status == "succeeded" else 1) if ran else None, "phase": "run"}
        fin.update(response)
        out.append(line(t, "step_finished", **fin))
        if sid in (MITIGATED_AT, RESOLVED_AT) and status in ("succeeded", "dry_run") and not dry:
            name = "mitigated" if sid == MITIGATED_AT else "resolved"
            out.append(line(t, "milestone", name=name, step=sid))
        t += dt.timedelta(milliseconds=rng.randint(1, 5))
        if this_ends:
            break
    if end_status is not None:
        total = int((t - start).total_seconds() * 1000)
        out.append(line(t, "run_finished", status=end_status, duration_ms=total))
    with open(path, "w") as f:
        f.write("".join(out))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    n, log_dir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(log_dir, mode=0o700, exist_ok=True)
    rng = random.Random(n)
    # N runs spread over the year before a fixed day, oldest first.
    end = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    starts = sorted(end - dt.timedelta(seconds=rng.uniform(0, 365 * 86400)) for _ in range(n))
    for s in starts:
        one_run(rng, s, log_dir)


if __name__ == "__main__":
    main()
