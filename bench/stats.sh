#!/usr/bin/env bash
# Issue 4's speed target: `runbook stats` over 10,000 stored runs of a 20-step runbook in
# under 2 seconds, growing linearly (1,000 -> 10,000 runs: about 10x). The logs are written
# by bench/gen-logs.py in the exact format of src/event.rs. Installs hyperfine when missing.
# Builds into $CARGO_TARGET_DIR when set (else target/).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { sudo -n true 2>/dev/null && SUDO=sudo; ${SUDO:-} apt-get install -y hyperfine; }
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/runbook"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in 1000 10000; do
  python3 bench/gen-logs.py "$n" "$work/logs-$n"
done
echo "logs: 1,000 runs $(du -sh "$work/logs-1000" | cut -f1), 10,000 runs $(du -sh "$work/logs-10000" | cut -f1)"
hyperfine --warmup 3 --min-runs 20 -N \
  --export-json "$work/stats.json" --export-markdown "$work/stats.md" \
  "$bin --log-dir $work/logs-1000 stats" \
  "$bin --log-dir $work/logs-10000 stats"
sed "s|$work/||g; s|$bin|runbook|g" "$work/stats.md"
# Medians: a build or test running beside the benchmark skews a mean more than a median.
python3 - "$work/stats.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
small, large = r[0]["median"], r[1]["median"]
print(f"median: 1,000 runs {small * 1000:.0f} ms; 10,000 runs {large * 1000:.0f} ms; "
      f"ratio {large / small:.1f} (10.0 is linear); under 2 s: {'yes' if large < 2 else 'NO'}")
EOF
