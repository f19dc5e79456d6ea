#!/usr/bin/env bash
# Issue 2's speed target: `runbook check` on a 20,000-step chain is well under a second and
# grows linearly (2,000 -> 20,000 -> 50,000 steps, the most a runbook may have). Installs hyperfine when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { sudo -n true 2>/dev/null && SUDO=sudo; ${SUDO:-} apt-get install -y hyperfine; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in 2000 20000 50000; do
  bench/gen-chain.sh "$n" > "$work/chain-$n.toml"
done
hyperfine --warmup 2 --min-runs 10 -N \
  --export-markdown "$work/check.md" \
  "target/release/runbook check $work/chain-2000.toml" \
  "target/release/runbook check $work/chain-20000.toml" \
  "target/release/runbook check $work/chain-50000.toml"
sed "s|$work/||g" "$work/check.md"
