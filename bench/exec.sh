#!/usr/bin/env bash
# The speed and memory targets of `runbook exec`, measured in one run (about a minute; `--quick`
# does fewer runs) and printed as a Markdown table:
#
#   1. a 200-step chain of `true` steps, live, with the durable log, against the floor of a
#      shell script running `sh -c true` 200 times: at most 1.35x the shell;
#   2. 40 independent `sleep 0.2` steps with `--parallel 8` (5 waves): at most 1.10x the
#      ideal 1.0 s;
#   3. one step writing 256 MiB to stdout (lines from `yes`, and a newline-free stream from
#      /dev/zero), runbook's stdout to /dev/null and through `cat`: peak RSS of the runbook
#      process at most 64 MiB, wall time against the same stream piped straight into `cat`.
#
# Every run writes its log to a temporary directory, whose file system is shown: on tmpfs
# fdatasync costs nothing, so the chain figure is only meaningful on a real disk (set
# TMPDIR to move it). Builds with cargo (honouring CARGO_TARGET_DIR); installs hyperfine and
# GNU time when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: bench/exec.sh [--quick]" >&2; exit 2 ;;
esac

install() { sudo -n true 2>/dev/null && SUDO=sudo; ${SUDO:-} apt-get install -y "$@" >&2; }
command -v hyperfine >/dev/null || install hyperfine
[ -x /usr/bin/time ] || install time

cargo build --release --quiet
bin="$(pwd)/${CARGO_TARGET_DIR:-target}/release/runbook"
[[ ${CARGO_TARGET_DIR:-} == /* ]] && bin="$CARGO_TARGET_DIR/release/runbook"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
logs="$work/logs"
mkdir -m 700 "$logs"
fstype=$(stat -f -c %T "$work")

if ((quick)); then chain_runs=5 par_runs=3 xargs_runs=2 big_runs=2; else chain_runs=30 par_runs=10 xargs_runs=5 big_runs=5; fi
big=268435456 # 256 MiB

# --- workloads ---------------------------------------------------------------------------
bench/gen-chain.sh 200 > "$work/chain.toml"
{ echo '#!/bin/sh'; for _ in $(seq 200); do echo 'sh -c true'; done; } > "$work/floor.sh"
chmod +x "$work/floor.sh"
{
  printf '[runbook]\ntitle = "40 independent sleeps"\n'
  for i in $(seq 0 39); do printf '\n[[step]]\nid = "p%d"\nrun = "sleep 0.2"\nneeds = []\n' "$i"; done
} > "$work/parallel.toml"
printf '[runbook]\ntitle = "256 MiB of lines"\n\n[[step]]\nid = "big"\nrun = "yes | head -c %d"\n' \
  "$big" > "$work/lines.toml"
printf '[runbook]\ntitle = "256 MiB without a newline"\n\n[[step]]\nid = "big"\nrun = "head -c %d /dev/zero"\n' \
  "$big" > "$work/zeros.toml"

# --- helpers -----------------------------------------------------------------------------
# hf NAME RUNS WARMUP COMMAND: hyperfine (no shell, stdin and output from/to /dev/null);
# leaves "mean stddev" in seconds in $work/NAME.
hf() {
  local name=$1 runs=$2 warmup=$3
  shift 3
  hyperfine -N --style basic --warmup "$warmup" --runs "$runs" \
    --export-csv "$work/$name.csv" "$@" >&2
  awk -F, 'NR == 2 { print $(NF-6), $(NF-5) }' "$work/$name.csv" > "$work/$name"
}
mean() { cut -d' ' -f1 "$work/$1"; }
ms() { awk -v m="$(mean "$1")" -v s="$(cut -d' ' -f2 "$work/$1")" 'BEGIN { printf "%.1f ms ± %.1f", m * 1000, s * 1000 }'; }
secs() { awk -v m="$(mean "$1")" -v s="$(cut -d' ' -f2 "$work/$1")" 'BEGIN { printf "%.3f s ± %.3f", m, s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
met() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t ? "yes" : "**no**") }'; }

# rss NAME SH-COMMAND: runs the command BIG_RUNS times under GNU time, each under a timeout;
# leaves "peak_kib worst_exit" in $work/NAME. %M is the peak RSS of the runbook process:
# its short-lived children (`sh`, `yes`, `head`, `cat`) are far smaller, and the kernel
# folds descendants in as a max, not a sum.
rss() {
  local name=$1 cmd=$2 kib=0 code=0 out rc k
  for _ in $(seq "$big_runs"); do
    set +e
    out=$(/usr/bin/time -f '%M' timeout -s KILL 60 sh -c "$cmd" 2>&1 >/dev/null </dev/null | tail -1)
    rc=$?
    set -e
    k=$out
    [[ $k =~ ^[0-9]+$ ]] || k=0
    ((rc > code)) && code=$rc
    ((k > kib)) && kib=$k
  done
  echo "$kib $code" > "$work/$name"
}

# How busy the machine is without us: the share of CPU time used over one second.
busy() {
  local a b
  a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x); split(b, y); for (i = 2; i <= 9 && i <= n; i++) { t += y[i] - x[i]; if (i == 5 || i == 6) idle += y[i] - x[i] }
    printf "%d", t ? 100 * (t - idle) / t : 0 }'
}
busy_before=$(busy)

# --- 1. chain ----------------------------------------------------------------------------
echo "1/3: 200-step chain (log on $fstype)" >&2
"$bin" exec --log-dir "$logs" "$work/chain.toml" </dev/null >/dev/null 2>"$work/chain.err" ||
  { cat "$work/chain.err" >&2; echo "error: the chain run failed" >&2; exit 1; }
hf chain "$chain_runs" 3 "$bin exec --log-dir $logs $work/chain.toml"
hf floor "$chain_runs" 3 "$work/floor.sh"

# --- 2. parallel sleeps ------------------------------------------------------------------
echo "2/3: 40 x sleep 0.2, --parallel 8" >&2
hf parallel "$par_runs" 1 "$bin exec --parallel 8 --log-dir $logs $work/parallel.toml"
# What a shell achieves with the same processes (each `sleep` takes a little over 0.2 s).
hf xargs "$xargs_runs" 1 "sh -c 'seq 40 | xargs -P 8 -I{} sh -c \"sleep 0.2\"'"

# --- 3. 256 MiB of output ----------------------------------------------------------------
echo "3/3: 256 MiB to stdout" >&2
# The bytes really arrive (a run that drops or truncates output must not look fast).
got=$("$bin" exec --log-dir "$logs" "$work/lines.toml" </dev/null 2>/dev/null | wc -c)
[[ $got == "$big" ]] || { echo "error: runbook passed on $got of $big bytes" >&2; exit 1; }
hf lines_null "$big_runs" 1 "$bin exec --log-dir $logs $work/lines.toml"
hf lines_cat "$big_runs" 1 "sh -c '$bin exec --log-dir $logs $work/lines.toml | cat > /dev/null'"
hf lines_floor "$big_runs" 1 "sh -c 'yes | head -c $big | cat > /dev/null'"
rss lines_null_rss "$bin exec --log-dir $logs $work/lines.toml > /dev/null"
rss lines_cat_rss "$bin exec --log-dir $logs $work/lines.toml | cat > /dev/null"
# A newline-free stream: tried once under a short timeout first, so a hang cannot stall us.
if (timeout -s KILL 20 "$bin" exec --log-dir "$logs" "$work/zeros.toml" \
  </dev/null >/dev/null 2>"$work/zeros.err") 2>/dev/null; then
  zeros_ok=1
  hf zeros_null "$big_runs" 1 "$bin exec --log-dir $logs $work/zeros.toml"
  hf zeros_cat "$big_runs" 1 "sh -c '$bin exec --log-dir $logs $work/zeros.toml | cat > /dev/null'"
  rss zeros_null_rss "$bin exec --log-dir $logs $work/zeros.toml > /dev/null"
  rss zeros_cat_rss "$bin exec --log-dir $logs $work/zeros.toml | cat > /dev/null"
else
  zeros_ok=0
fi
hf zeros_floor "$big_runs" 1 "sh -c 'head -c $big /dev/zero | cat > /dev/null'"

# --- table -------------------------------------------------------------------------------
field() { cut -d' ' -f"$2" "$work/$1"; }
mib() { awk -v k="$(field "$1" 1)" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
rss_met() {
  if [[ $(field "$1" 2) != 0 ]]; then echo "**no** (exit $(field "$1" 2))"; else met "$(field "$1" 1)" 65536; fi
}
chain_ratio=$(ratio "$(mean chain)" "$(mean floor)")
par_ratio=$(ratio "$(mean parallel)" 1.0)

echo
busy_after=$(busy)
echo "runbook exec benchmarks: $(nproc) CPUs, log on $fstype, $( ((quick)) && echo quick || echo full) run," \
  "CPU busy before/after: $busy_before%/$busy_after%"
((busy_before > 10 || busy_after > 10)) &&
  echo "(other work was running: the figures are noisy; run again on a quiet machine)"
[[ $fstype == tmpfs ]] && echo "(the log is on tmpfs: fdatasync is free here, so the chain figure flatters runbook)"
echo
echo "| workload | runbook | reference | ratio | target | met |"
echo "|---|---|---|---|---|---|"
echo "| 200-step chain of \`true\`, live, durable log | $(ms chain) | shell, \`sh -c true\` x200: $(ms floor) | $chain_ratio | time <= 1.35x | $(met "${chain_ratio%x}" 1.35) |"
echo "| 40 x \`sleep 0.2\`, \`needs = []\`, \`--parallel 8\` | $(secs parallel) | ideal: 1.000 s (\`xargs -P 8\`: $(secs xargs)) | $par_ratio | time <= 1.10x | $(met "${par_ratio%x}" 1.10) |"
echo "| 256 MiB of lines (\`yes\`), stdout > /dev/null | $(secs lines_null); peak RSS $(mib lines_null_rss) | \`yes \\| head \\| cat\`: $(secs lines_floor) | $(ratio "$(mean lines_null)" "$(mean lines_floor)") | RSS <= 64 MiB | $(rss_met lines_null_rss) |"
echo "| 256 MiB of lines (\`yes\`), stdout \\| cat > /dev/null | $(secs lines_cat); peak RSS $(mib lines_cat_rss) | \`yes \\| head \\| cat\`: $(secs lines_floor) | $(ratio "$(mean lines_cat)" "$(mean lines_floor)") | RSS <= 64 MiB | $(rss_met lines_cat_rss) |"
if ((zeros_ok)); then
  echo "| 256 MiB, no newline (/dev/zero), stdout > /dev/null | $(secs zeros_null); peak RSS $(mib zeros_null_rss) | \`head \\| cat\`: $(secs zeros_floor) | $(ratio "$(mean zeros_null)" "$(mean zeros_floor)") | RSS <= 64 MiB | $(rss_met zeros_null_rss) |"
  echo "| 256 MiB, no newline (/dev/zero), stdout \\| cat > /dev/null | $(secs zeros_cat); peak RSS $(mib zeros_cat_rss) | \`head \\| cat\`: $(secs zeros_floor) | $(ratio "$(mean zeros_cat)" "$(mean zeros_floor)") | RSS <= 64 MiB | $(rss_met zeros_cat_rss) |"
else
  why=$(grep -m1 -E 'panicked|error' "$work/zeros.err" || echo "killed after 20 s")
  echo "| 256 MiB, no newline (/dev/zero) | **did not finish** (${why//|/\\|}) | \`head \\| cat\`: $(secs zeros_floor) | | finishes | **no** |"
fi
