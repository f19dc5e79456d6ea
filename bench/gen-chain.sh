#!/usr/bin/env bash
# Writes a runbook of N chained steps (each `true`, each needing the one before it by file
# order) to stdout: the workload for `runbook check` and, later, `runbook exec`.
set -euo pipefail
n=${1:?usage: gen-chain.sh STEPS}
printf '[runbook]\ntitle = "Generated chain of %d steps"\n' "$n"
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "\n[[step]]\nid = \"s%d\"\nrun = \"true\"\n", i }'
