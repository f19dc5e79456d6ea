#!/usr/bin/env bash
# Comparative benchmarks of `runbook` against what people use instead: a shell script (the
# floor), make, just and Ansible (issue 6). Installs what it needs when it is missing
# (hyperfine, make and GNU time from apt; `just` with `cargo install just --locked`;
# `ansible-core` with pip), generates equivalent workloads for every tool in a temporary
# directory, measures them all with hyperfine in one run, and prints one Markdown table of
# ratios against the floor, then the issue's goals and whether each is met.
#
#   bench/run.sh            full run: about 4 minutes on 2 cores (plus installs), and
#                           10 to 20 more for workload 6 (50 ssh logins per run)
#   bench/run.sh --quick    fewer runs, for CI: just and Ansible are skipped (and reported
#                           as skipped) when they are not installed already
#
# Workloads (one `sh -c true` process per step in every tool, see docs/benchmarks.md):
#   1. a chain of 200 steps, each `sh -c true`, live with the durable log (Ansible: 50
#      tasks of `command: sh -c true`, reported per step);
#   2. 40 independent `sleep 0.2` steps, 8 at a time (the ideal is 1.0 s);
#   3. one step writing 256 MiB to stdout: wall time against the same command piped into
#      `cat > /dev/null`, and runbook's peak RSS (GNU time %M); then both again with their
#      three processes pinned to two CPUs the same way (two placements), which takes the
#      scheduler's choice out of the comparison;
#   4. `runbook check` of a 20,000-step and a 2,000-step runbook;
#   5. `runbook stats` over 10,000 and over 1,000 stored runs of a 20-step runbook;
#   7. a one-step runbook start to finish (validation, lock, log, spawn, end) against
#      `sh -c true` alone (issue 15);
#   6. a fleet step over ssh to 50 loopback hosts (a real sshd started here), cold and
#      warm, against `xargs -P 50 ssh`, parallel-ssh and Ansible ad-hoc (`-m raw`,
#      `-m command`); and a 10-step fleet runbook against the same ssh calls over shared
#      connections.
#
# Ratios are of medians (a build or a fuzzer beside the benchmark skews a mean more than a
# median); means and standard deviations are in the table too. Environment:
#   RUNBOOK_BIN=path   measure this binary instead of building one with cargo
#                      (cargo honours CARGO_TARGET_DIR)
#   TMPDIR=dir         where the workloads and logs go; its file system matters for the
#                      chain: every step_started is fdatasync'ed before its process starts
#   BENCH_ONLY="1 2"   run only these workloads (for re-running the timing-sensitive ones)
#   BENCH_JSON=dir     also keep hyperfine's JSON exports and the summary in this directory
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac
only=${BENCH_ONLY:-1 2 3 4 5 6 7}
want() { [[ " $only " == *" $1 "* ]]; }
say() { echo "bench: $*" >&2; }

# --- tools -------------------------------------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to run: $*"; return 1
  fi
}
apt_install() {
  say "installing $* with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 ||
    { as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
}
command -v hyperfine >/dev/null || apt_install hyperfine
command -v make >/dev/null || apt_install make
[[ -x /usr/bin/time ]] || apt_install time
command -v python3 >/dev/null || apt_install python3

# Workload 3 is also measured pinned to CPUs 0 and 1 (taskset, from util-linux).
pin=0
if command -v taskset >/dev/null && (($(nproc) >= 2)); then pin=1; fi

have_just=1
if ! command -v just >/dev/null; then
  if ((quick)); then
    have_just=0
  else
    say "installing just with cargo (a few minutes on 2 cores)"
    cargo install just --locked >&2
  fi
fi

# ansible-playbook: on PATH, in pip's script directory (pyenv and friends do not always
# put it on PATH), or in our own venv (a system Python that refuses pip, PEP 668).
venv=${XDG_DATA_HOME:-$HOME/.local/share}/runbook-bench/ansible
find_ansible() {
  local d
  for d in "$venv/bin" "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
    "$(python3 -m site --user-base 2>/dev/null)/bin"; do
    [[ -x $d/ansible-playbook ]] && { PATH="$d:$PATH"; return 0; }
  done
  command -v ansible-playbook >/dev/null
}
have_ansible=1
if ! find_ansible; then
  if ((quick)); then
    have_ansible=0
  else
    say "installing ansible-core with pip"
    if ! python3 -m pip install -q ansible-core >&2; then
      python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
      "$venv/bin/pip" install -q ansible-core >&2
    fi
    find_ansible || { say "ansible-playbook not found after installing ansible-core"; exit 1; }
  fi
fi

# The binary measured is the self-contained one (scripts/build-static) where this machine
# can build it; workload 7 also measures `cargo build`'s default, dynamically linked one,
# since start-up is where the two differ.
dynbin=
if [[ -n ${RUNBOOK_BIN:-} ]]; then
  bin=$(realpath "$RUNBOOK_BIN")
else
  say "building runbook (release; a few minutes: fat LTO)"
  cargo build --release --locked --quiet
  target=${CARGO_TARGET_DIR:-target}
  [[ $target == /* ]] || target="$root/$target"
  bin="$target/release/runbook"
  if static=$(scripts/build-static 2>/dev/null); then
    dynbin=$bin
    bin=$static
  else
    say "no static build on this machine: measuring the dynamically linked one"
  fi
fi
# Dynamically linked: the executable names a program interpreter (the loader, ld.so).
linkage() { if grep -q -a 'ld-linux' <(head -c 4096 "$1"); then echo dynamic; else echo static; fi; }
say "measuring $bin ($(linkage "$bin")ally linked)"

work=$(mktemp -d "${TMPDIR:-/tmp}/runbook-bench.XXXXXX")
logs="$work/logs"
mkdir -m 700 "$logs"
# A second log directory in memory, when there is one and the first is not: the chain once
# more with fdatasync free, to show what the durable log costs on this disk.
memlogs=
fstype() { findmnt -n -o FSTYPE -T "$1" 2>/dev/null | head -1 || stat -f -c %T "$1"; }
if [[ $(fstype "$work") != tmpfs && -d /dev/shm && -w /dev/shm && $(fstype /dev/shm) == tmpfs ]]; then
  memlogs=$(mktemp -d /dev/shm/runbook-bench.XXXXXX)
fi
trap 'rm -rf "$work" ${memlogs:+"$memlogs"}' EXIT

# Runs per command, taken in ROUNDS rounds: hyperfine does all runs of one command before
# the next, so on a shared machine a burst of load would land on one tool only; rounds
# interleave the tools, and the statistics are over every run of every round.
if ((quick)); then
  rounds=1 chain_runs=5 ans_runs=1 par_runs=3 big_runs=3 pin_runs=2 rss_runs=1 check_runs=5 stats_runs=3 one_runs=20
  fan_runs=1 warm_runs=3 ten_runs=1
else
  rounds=5 chain_runs=40 ans_runs=3 par_runs=15 big_runs=30 pin_runs=15 rss_runs=3 check_runs=20 stats_runs=10 one_runs=200
  fan_runs=5 warm_runs=15 ten_runs=3
fi
big=268435456 # 256 MiB
line='2026-11-26T03:12:48.123Z INFO orders-db: replication lag 0.4 s, within limits' # 78 bytes with \n

# Versions and the machine, for the report.
{
  echo "runbook=$("$bin" --version) ($(linkage "$bin")ally linked)"
  echo "linkage=$(linkage "$bin")"
  echo "hyperfine=$(hyperfine --version)"
  echo "ssh=$(ssh -V 2>&1 | cut -d, -f1)"
  echo "pssh=parallel-ssh $(parallel-ssh --version 2>/dev/null || echo '(not installed)')"
  echo "make=$(make --version | head -1)"
  echo "just=$( ((have_just)) && just --version | cut -d" " -f2 || echo skipped)"
  echo "ansible=$( ((have_ansible)) && ansible-playbook --version 2>/dev/null | awk 'NR == 1' | tr -d '[]' || echo 'Ansible skipped')"
  echo "sh=$(readlink -f /bin/sh)$(command -v dpkg-query >/dev/null && dpkg-query -W -f=' ${Version}' "$(basename "$(readlink -f /bin/sh)")" 2>/dev/null)"
  echo "python=$(python3 --version)"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "fs=$(fstype "$work")"
  echo "quick=$quick"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$work/info"

# hf NAME WARMUP RUNS [-n LABEL COMMAND]...: hyperfine over several commands (no shell:
# stdin and output are /dev/null), RUNS runs of each in $rounds rounds (WARMUP runs before
# each), exported to $work/NAME.rK.json.
hf() {
  local name=$1 warmup=$2 runs=$3 k n
  shift 3
  for ((k = 0; k < rounds; k++)); do
    n=$(((runs + rounds - 1 - k) / rounds)) # runs spread over the rounds, at least 1
    ((n > 0)) || n=1
    hyperfine -N --style basic --warmup "$warmup" --runs "$n" \
      --export-json "$work/$name.r$k.json" "$@" >&2
  done
}

# --- 1. a chain of 200 steps -------------------------------------------------------------
# Each step is one `sh -c true` process everywhere: runbook runs `sh -c <run>` with run =
# "true"; just runs `sh -cu <line>` with line "true"; make execs a recipe without shell
# metacharacters directly, so its recipe is `sh -c true`, as is the shell script's line and
# Ansible's `command` (which never uses a shell).
if want 1; then
  say "1/6: a chain of 200 steps"
  bench/gen-chain.sh 200 > "$work/chain.toml"
  { echo '#!/bin/sh'; echo 'set -e'; for _ in $(seq 200); do echo 'sh -c true'; done; } > "$work/chain.sh"
  chmod +x "$work/chain.sh"
  {
    printf '.PHONY: %s\n' "$(seq -f 's%g' 0 199 | tr '\n' ' ')"
    printf 's0:\n\tsh -c true\n'
    for i in $(seq 1 199); do printf 's%d: s%d\n\tsh -c true\n' "$i" $((i - 1)); done
  } > "$work/chain.mk"
  {
    echo 's0:'; echo '    @true'
    for i in $(seq 1 199); do echo "s$i: s$((i - 1))"; echo '    @true'; done
  } > "$work/chain.just"
  {
    printf -- '- hosts: localhost\n  connection: local\n  gather_facts: false\n'
    printf '  vars:\n    ansible_python_interpreter: "{{ ansible_playbook_python }}"\n  tasks:\n'
    for i in $(seq 0 49); do printf '    - name: s%d\n      command: sh -c true\n' "$i"; done
  } > "$work/chain.yml"

  # Every tool really runs the chain (a tool that fails fast must not look fast).
  "$bin" exec --log-dir "$logs" "$work/chain.toml" </dev/null >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; say "the runbook chain failed"; exit 1; }
  [[ $(grep -c '"event":"step_finished"' "$(ls -t "$logs"/*.jsonl | head -1)") == 200 ]] ||
    { say "the runbook chain did not log 200 steps"; exit 1; }
  make -s -f "$work/chain.mk" s199 </dev/null
  cmds=(-n runbook "$bin exec --log-dir $logs $work/chain.toml"
    -n shell "$work/chain.sh"
    -n make "make -s -f $work/chain.mk s199")
  if [[ -n $memlogs ]]; then cmds+=(-n runbook-tmpfs "$bin exec --log-dir $memlogs $work/chain.toml"); fi
  if ((have_just)); then
    just --justfile "$work/chain.just" --working-directory "$work" s199 </dev/null
    cmds+=(-n just "just --justfile $work/chain.just --working-directory $work s199")
  fi
  hf chain 2 "$chain_runs" "${cmds[@]}"
  if ((have_ansible)); then
    export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False \
      ANSIBLE_RETRY_FILES_ENABLED=False ANSIBLE_NOCOLOR=1
    ansible-playbook -i localhost, "$work/chain.yml" </dev/null > "$work/ansible.out" 2>&1 ||
      { tail -20 "$work/ansible.out" >&2; say "the Ansible playbook failed"; exit 1; }
    grep -q 'ok=50 *changed=50 ' "$work/ansible.out" ||
      { tail -5 "$work/ansible.out" >&2; say "Ansible did not run 50 tasks"; exit 1; }
    rounds=1 hf ansible 0 "$ans_runs" -n ansible "ansible-playbook -i localhost, $work/chain.yml"
  fi
fi

# --- 2. 40 independent sleeps, 8 at a time -----------------------------------------------
# just runs dependencies one at a time, except those of a recipe marked `[parallel]`, at most
# `--jobs N` at once (just 1.42 and later); an older just has no row here.
if want 2; then
  say "2/6: 40 x sleep 0.2, 8 at a time"
  {
    printf '[runbook]\ntitle = "40 independent sleeps"\n'
    for i in $(seq 0 39); do printf '\n[[step]]\nid = "p%d"\nrun = "sleep 0.2"\nneeds = []\n' "$i"; done
  } > "$work/par.toml"
  # The shell floor: 8 slots, a new sleep as soon as one is free (the sleeps are equal,
  # so this is 5 waves).
  { echo '#!/bin/sh'; echo 'seq 40 | xargs -P 8 -I{} sh -c "sleep 0.2"'; } > "$work/par.sh"
  chmod +x "$work/par.sh"
  {
    printf '.PHONY: all %s\nall: %s\n' "$(seq -f 'p%g' 0 39 | tr '\n' ' ')" "$(seq -f 'p%g' 0 39 | tr '\n' ' ')"
    for i in $(seq 0 39); do printf 'p%d:\n\tsleep 0.2\n' "$i"; done
  } > "$work/par.mk"
  {
    echo '[parallel]'
    printf 'all: %s\n' "$(seq -f 'p%g' 0 39 | tr '\n' ' ')"
    for i in $(seq 0 39); do printf 'p%d:\n    @sleep 0.2\n' "$i"; done
  } > "$work/par.just"
  "$bin" exec --parallel 8 --log-dir "$logs" "$work/par.toml" </dev/null >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; say "the parallel runbook failed"; exit 1; }
  cmds=(-n runbook "$bin exec --parallel 8 --log-dir $logs $work/par.toml"
    -n shell "$work/par.sh"
    -n make "make -s -j8 -f $work/par.mk all")
  if ((have_just)) && just --help | grep -q -- '--jobs'; then
    cmds+=(-n just "just --jobs 8 --justfile $work/par.just --working-directory $work all")
  fi
  hf par 1 "$par_runs" "${cmds[@]}"
fi

# --- 3. 256 MiB of output ----------------------------------------------------------------
# Two streams: `yes` (2-byte lines, the worst case for line splitting) and 78-byte log
# lines. runbook's stdout goes to /dev/null; the floor is the same command piped into
# `cat > /dev/null` (the same number of processes and pipe hops, with cat for runbook).
if want 3; then
  say "3/6: 256 MiB to stdout"
  for s in yes lines; do
    if [[ $s == yes ]]; then cmd="yes | head -c $big"; else cmd="yes '$line' | head -c $big"; fi
    printf '[runbook]\ntitle = "256 MiB of output"\n\n[[step]]\nid = "big"\nrun = """%s"""\n' "$cmd" > "$work/$s.toml"
    printf '%s | cat > /dev/null\n' "$cmd" > "$work/$s.sh"
    got=$("$bin" exec --log-dir "$logs" "$work/$s.toml" </dev/null 2>"$work/err" | wc -c)
    [[ $got == "$big" ]] || { cat "$work/err" >&2; say "runbook passed on $got of $big bytes"; exit 1; }
    # Peak RSS of the runbook process (and, as a max, its short-lived children).
    kib=0
    for _ in $(seq "$rss_runs"); do
      /usr/bin/time -f %M -o "$work/rss" "$bin" exec --log-dir "$logs" "$work/$s.toml" </dev/null >/dev/null 2>&1
      k=$(tail -1 "$work/rss")
      if ((k > kib)); then kib=$k; fi
    done
    echo "rss_$s=$kib" >> "$work/info"
    hf "big_$s" 1 "$big_runs" -n runbook "$bin exec --log-dir $logs $work/$s.toml" -n shell "sh $work/$s.sh"
    # The same, with every process pinned to a CPU, the same way for runbook as for `cat`:
    # with three processes on two CPUs, which two the scheduler puts together decides the
    # time, run by run. `alone`: `head` (the busiest) has a CPU to itself, `yes` and the
    # reader share the other; `shared`: `head` shares its CPU with the reader.
    if ((pin)); then
      for p in alone shared; do
        if [[ $p == alone ]]; then ya=1 ha=0; else ya=0 ha=1; fi
        if [[ $s == yes ]]; then pcmd="taskset -c $ya yes"; else pcmd="taskset -c $ya yes '$line'"; fi
        pcmd="$pcmd | taskset -c $ha head -c $big"
        printf '[runbook]\ntitle = "256 MiB of output, pinned"\n\n[[step]]\nid = "big"\nrun = """%s"""\n' "$pcmd" > "$work/$s-$p.toml"
        printf '%s | taskset -c 1 cat > /dev/null\n' "$pcmd" > "$work/$s-$p.sh"
        hf "big_${s}_$p" 1 "$pin_runs" -n runbook "taskset -c 1 $bin exec --log-dir $logs $work/$s-$p.toml" \
          -n shell "sh $work/$s-$p.sh"
      done
    fi
  done
fi

# --- 7. one step, start to finish -----------------------------------------------------------
# Everything a run does around its one process: parse and validate, lock, create the log
# (and sync its directory), write and sync run_started and step_started, spawn, end.
if want 7; then
  say "7/7: one step, start to finish"
  printf '[runbook]\ntitle = "One step"\n\n[[step]]\nid = "only"\nrun = "true"\n' > "$work/one.toml"
  "$bin" exec --log-dir "$logs" "$work/one.toml" </dev/null >/dev/null 2>&1 ||
    { say "the one-step runbook failed"; exit 1; }
  hf one 5 "$one_runs" -n runbook "$bin exec --log-dir $logs $work/one.toml" -n sh "sh -c true" \
    ${dynbin:+-n dynamic "$dynbin exec --log-dir $logs $work/one.toml"}
fi

# --- 4. check of 20,000 and 2,000 steps --------------------------------------------------
if want 4; then
  say "4/6: check of 2,000 and 20,000 steps"
  for n in 2000 20000; do bench/gen-chain.sh "$n" > "$work/check-$n.toml"; done
  "$bin" check "$work/check-20000.toml" >/dev/null
  hf check 2 "$check_runs" \
    -n 2000 "$bin check $work/check-2000.toml" -n 20000 "$bin check $work/check-20000.toml"
fi

# --- 5. stats over 10,000 and 1,000 runs -------------------------------------------------
if want 5; then
  say "5/6: stats over 1,000 and 10,000 runs (generating the logs)"
  for n in 1000 10000; do python3 bench/gen-logs.py "$n" "$work/runs-$n"; done
  "$bin" --log-dir "$work/runs-10000" stats >/dev/null
  hf stats 2 "$stats_runs" \
    -n 1000 "$bin --log-dir $work/runs-1000 stats" -n 10000 "$bin --log-dir $work/runs-10000 stats"
fi

# --- 6. fan-out over ssh to 50 hosts -----------------------------------------------------
# A real sshd on a free loopback port (keys made here), and an ssh_config in which h1 ...
# h50 are aliases of it: 50 hosts as ssh, and every tool, sees them (each alias gets its
# own connection). Every tool runs `true` on each host:
#   runbook          a one-step fleet runbook (hosts = h1 ... h50, no batch), live, logged
#   xargs            xargs -P 50 -I{} ssh -F CONFIG -o BatchMode=yes {} true
#   pssh             parallel-ssh -p 50 -x '-F CONFIG -o BatchMode=yes' true
#   ansible raw      ansible all -f 50 -m raw -a true (no Python on the remote side)
#   ansible command  ansible all -f 50 -m command -a true (Python module, interpreter given)
# Cold: every ssh makes a new connection (runbook cannot be warm across runs: it opens its
# shared connections in each run and closes them at its end). Warm: over connections
# opened before the timing (ControlMaster); runbook's warm figure is one more fleet step
# within a run, (T(10 steps) - T(1 step)) / 9. Then a 10-step runbook over the 50 hosts
# against the same 500 ssh calls over shared connections opened in the first round and
# closed at the end, as runbook does (ten rounds of xargs -P 50).
if want 6; then
  say "6/6: fan-out to 50 loopback hosts over ssh"
  [[ -x /usr/sbin/sshd ]] || apt_install openssh-server
  command -v parallel-ssh >/dev/null || apt_install pssh
  fleet=$work/fleet
  mkdir -m 700 "$fleet"
  ssh-keygen -q -t ed25519 -N '' -f "$fleet/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$fleet/id"
  cp "$fleet/id.pub" "$fleet/authorized_keys"
  [[ $(id -u) == 0 ]] && mkdir -p /run/sshd
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$fleet/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $fleet/host_key
PidFile $fleet/sshd.pid
AuthorizedKeysFile $fleet/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 1000
MaxSessions 100
LogLevel ERROR
# Debian's bash reads ~/.bashrc in an ssh session (it finds SSH_CLIENT at shell level 1), and
# a developer's .bashrc can cost 100 ms a session (pyenv init): the same for every tool,
# and larger than what is measured. At level 2 bash does not read it.
SetEnv SHLVL=1
EOF
  cfg=$fleet/ssh_config
  cat > "$cfg" <<EOF
Host *
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $fleet/id
  IdentitiesOnly yes
  UserKnownHostsFile $fleet/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR
EOF
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$fleet/host_key.pub")" > "$fleet/known_hosts"
  /usr/sbin/sshd -D -e -f "$fleet/sshd_config" 2>"$fleet/sshd.err" &
  sshd_pid=$!
  # On exit: sshd's connections are processes of their own that outlive the listener.
  trap 'pkill -P "$sshd_pid" 2>/dev/null; kill "$sshd_pid" 2>/dev/null; rm -rf "$work" ${memlogs:+"$memlogs"}' EXIT
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  seq -f 'h%g' 1 50 > "$fleet/hosts"
  names=$(tr '\n' ' ' < "$fleet/hosts")
  printf '[runbook]\ntitle = "fan-out"\n\n[[step]]\nid = "fan"\nhosts = "%s"\nrun = "true"\n' "$names" > "$fleet/fan.toml"
  {
    printf '[runbook]\ntitle = "ten fan-outs"\n'
    for i in $(seq 10); do printf '\n[[step]]\nid = "s%d"\nhosts = "%s"\nrun = "true"\n' "$i" "$names"; done
  } > "$fleet/ten.toml"
  {
    echo '[fleet]'
    sed 's/.*/& ansible_host=&/' "$fleet/hosts"
    echo '[fleet:vars]'
    echo "ansible_ssh_common_args=-F $cfg"
    echo "ansible_python_interpreter=$(command -v python3)"
  } > "$fleet/inventory"
  # The same ssh calls over shared connections: what a 10-step fleet runbook does.
  cat > "$fleet/ten.sh" <<EOF
#!/bin/sh
d=\$(mktemp -d "$fleet/cp.XXXXXX")
o="-F $cfg -o BatchMode=yes -o ControlMaster=auto -o ControlPath=\$d/%n -o ControlPersist=300"
for i in 1 2 3 4 5 6 7 8 9 10; do
  xargs -P 50 -I{} ssh \$o {} true < "$fleet/hosts" || exit 1
done
xargs -P 50 -I{} ssh \$o -O exit {} < "$fleet/hosts" 2>/dev/null
rm -rf "\$d"
EOF
  chmod +x "$fleet/ten.sh"
  warm="-F $cfg -o BatchMode=yes -o ControlMaster=auto -o ControlPath=$fleet/cp-%n -o ControlPersist=600"
  export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_NOCOLOR=1 ANSIBLE_SSH_CONTROL_PATH_DIR=$fleet/acp
  cold_ansible="ANSIBLE_SSH_ARGS=-oControlMaster=no"
  warm_ansible="ANSIBLE_SSH_ARGS=-oControlMaster=auto -oControlPersist=600s"
  have_adhoc=0
  if ((have_ansible)) && command -v ansible >/dev/null; then have_adhoc=1; fi

  # Every tool really reaches the 50 hosts before it is timed.
  "$bin" exec --log-dir "$logs" --ssh-config "$cfg" "$fleet/fan.toml" </dev/null >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; say "the fan-out runbook failed"; exit 1; }
  [[ $(grep -c '"host":"h[0-9]*".*"status":"succeeded"\|"status":"succeeded".*"host":"h[0-9]*"' "$(ls -t "$logs"/*.jsonl | head -1)") == 50 ]] ||
    { say "the fan-out runbook did not succeed on 50 hosts"; exit 1; }
  xargs -P 50 -I{} ssh -F "$cfg" -o BatchMode=yes {} true < "$fleet/hosts" || { say "xargs ssh failed"; exit 1; }
  [[ $(parallel-ssh -h "$fleet/hosts" -p 50 -x "-F $cfg -o BatchMode=yes" true | grep -c SUCCESS) == 50 ]] ||
    { say "parallel-ssh did not reach 50 hosts"; exit 1; }
  if ((have_adhoc)); then
    for m in raw command; do
      n=$(env "$cold_ansible" ansible all -i "$fleet/inventory" -f 50 -m "$m" -a true 2>&1 | grep -c 'CHANGED\|SUCCESS' || true)
      [[ $n == 50 ]] || { say "ansible -m $m reached $n of 50 hosts"; exit 1; }
    done
  fi

  cmds=(-n runbook "$bin exec --log-dir $logs --ssh-config $cfg $fleet/fan.toml"
    -n xargs "sh -c 'xargs -P 50 -I{} ssh -F $cfg -o BatchMode=yes {} true < $fleet/hosts'"
    -n pssh "parallel-ssh -h $fleet/hosts -p 50 -x '-F $cfg -o BatchMode=yes' true")
  if ((have_adhoc)); then
    cmds+=(-n ansible-raw "env '$cold_ansible' ansible all -i $fleet/inventory -f 50 -m raw -a true"
      -n ansible-command "env '$cold_ansible' ansible all -i $fleet/inventory -f 50 -m command -a true")
  fi
  hf fan_cold 0 "$fan_runs" "${cmds[@]}"

  # Warm: connections opened first (ssh's for xargs and pssh, Ansible's own for Ansible).
  xargs -P 50 -I{} ssh $warm {} true < "$fleet/hosts"
  cmds=(-n xargs "sh -c 'xargs -P 50 -I{} ssh $warm {} true < $fleet/hosts'"
    -n pssh "parallel-ssh -h $fleet/hosts -p 50 -x '$warm' true")
  if ((have_adhoc)); then
    env "$warm_ansible" ansible all -i "$fleet/inventory" -f 50 -m raw -a true >/dev/null 2>&1
    cmds+=(-n ansible-raw "env '$warm_ansible' ansible all -i $fleet/inventory -f 50 -m raw -a true"
      -n ansible-command "env '$warm_ansible' ansible all -i $fleet/inventory -f 50 -m command -a true")
  fi
  hf fan_warm 1 "$warm_runs" "${cmds[@]}"

  rounds=$((ten_runs < rounds ? ten_runs : rounds)) hf ten 0 "$ten_runs" -n runbook "$bin exec --log-dir $logs --ssh-config $cfg $fleet/ten.toml" \
    -n ssh-shared "$fleet/ten.sh"
fi

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/info"
if [[ -n ${BENCH_JSON:-} ]]; then mkdir -p "$BENCH_JSON" && cp "$work"/*.json "$work/info" "$BENCH_JSON/"; fi

# --- the table ---------------------------------------------------------------------------
python3 - "$work" <<'EOF'
import glob, json, os, statistics, sys

work = sys.argv[1]
info = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(work, "info")) if "=" in l)


def load(name):
    """Every run of every round of one measurement, per command."""
    times = {}
    for p in sorted(glob.glob(os.path.join(work, name + ".r*.json"))):
        for r in json.load(open(p))["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
    if not times:
        return None
    return {c: {"median": statistics.median(ts), "mean": statistics.fmean(ts),
                "stddev": statistics.stdev(ts) if len(ts) > 1 else 0.0, "runs": len(ts)}
            for c, ts in times.items()}


def t(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.3f} s"


def cell(r):
    return f"{t(r['median'])} ({t(r['mean'])} ± {t(r['stddev'])}, {r['runs']} runs)"


rows, goals = [], []


def row(workload, tool, r, floor=None, note=""):
    ratio = f"{r['median'] / floor['median']:.2f}x" if floor else ""
    rows.append(f"| {workload} | {tool} | {cell(r)} | {ratio} | {note} |")


def goal(workload, what, value, ok):
    goals.append(f"| {workload} | {what} | {value} | {'yes' if ok else '**no**'} |")


def skipped(workload, tool, why):
    rows.append(f"| {workload} | {tool} | skipped ({why}) | | |")


chain, ans = load("chain"), load("ansible")
if chain:
    w = "1. chain of 200 `sh -c true`"
    rb, sh, mk = chain["runbook"], chain["shell"], chain["make"]
    per = rb["median"] / 200
    row(w, "shell script (floor)", sh, sh, f"{sh['median'] / 200 * 1000:.2f} ms/step")
    row(w, f"**runbook** (live, durable log on {info['fs']})", rb, sh, f"{per * 1000:.2f} ms/step")
    if "runbook-tmpfs" in chain:
        m = chain["runbook-tmpfs"]
        row(w, "runbook, log on tmpfs (fdatasync is free)", m, sh,
            f"{m['median'] / 200 * 1000:.2f} ms/step; not a goal, shows what the sync costs")
    row(w, "make", mk, sh, f"{mk['median'] / 200 * 1000:.2f} ms/step")
    if "just" in chain:
        row(w, "just", chain["just"], sh, f"{chain['just']['median'] / 200 * 1000:.2f} ms/step")
    else:
        skipped(w, "just", "not installed; --quick")
    if ans:
        a = ans["ansible"]
        aper = a["median"] / 50
        rows.append(f"| {w} | Ansible (50 tasks) | {cell(a)} | {aper / (sh['median'] / 200):.0f}x per step "
                    f"| {aper * 1000:.0f} ms/step |")
    else:
        skipped(w, "Ansible (50 tasks)", "not installed; --quick")
    r1 = rb["median"] / sh["median"]
    goal(w, "runbook <= 1.35x the shell floor", f"{r1:.2f}x", r1 <= 1.35)
    r2 = rb["median"] / mk["median"]
    goal(w, "runbook <= 1.20x make", f"{r2:.2f}x", r2 <= 1.20)
    if "runbook-tmpfs" in chain:
        r4 = chain["runbook-tmpfs"]["median"] / sh["median"]
        goal(w, "runbook, log on tmpfs, <= 1.15x the shell floor", f"{r4:.2f}x", r4 <= 1.15)
    if ans:
        r3 = aper / per
        goal(w, "runbook >= 100x faster per step than Ansible", f"{r3:.0f}x "
             f"({per * 1000:.2f} vs {aper * 1000:.0f} ms/step)", r3 >= 100)
    else:
        goals.append(f"| {w} | runbook >= 100x faster per step than Ansible | skipped | |")

par = load("par")
if par:
    w = "2. 40 x `sleep 0.2`, 8 at a time"
    rb, sh, mk = par["runbook"], par["shell"], par["make"]
    row(w, "shell script, `xargs -P 8` (floor)", sh, sh, "ideal: 1.000 s")
    row(w, "**runbook** `--parallel 8`", rb, sh, f"{rb['median'] / 1.0:.2f}x the ideal")
    row(w, "make -j8", mk, sh, f"{mk['median'] / 1.0:.2f}x the ideal")
    if "just" in par:
        row(w, "just `[parallel]` `--jobs 8`", par["just"], sh, f"{par['just']['median'] / 1.0:.2f}x the ideal")
    elif info["just"] == "skipped":
        skipped(w, "just", "not installed; --quick")
    else:
        rows.append(f"| {w} | just | n/a | | this just has no parallel mode (`[parallel]` needs 1.42+) |")
    goal(w, "runbook <= 1.10x the ideal 1.0 s", f"{rb['median']:.3f} s", rb["median"] <= 1.10)
    r = rb["median"] / mk["median"]
    goal(w, "runbook no more than 5% slower than make -j8", f"{r:.2f}x", r <= 1.05)

for s, label in (("yes", "`yes` (2-byte lines)"), ("lines", "78-byte log lines")):
    big = load("big_" + s)
    if not big:
        continue
    w = f"3. 256 MiB of {label} to stdout"
    rb, sh = big["runbook"], big["shell"]
    rss = int(info.get("rss_" + s, "0")) / 1024
    row(w, "same command `\\| cat > /dev/null` (floor)", sh, sh, f"{256 / sh['median']:.0f} MiB/s")
    row(w, "**runbook**, stdout > /dev/null", rb, sh, f"{256 / rb['median']:.0f} MiB/s; peak RSS {rss:.1f} MiB")
    for p, how in (("alone", "`head` alone on a CPU, `yes` and the reader on the other"),
                   ("shared", "`head` and the reader on one CPU, `yes` on the other")):
        pinned = load(f"big_{s}_{p}")
        if pinned:
            row(w, f"`cat`, pinned: {how}", pinned["shell"], pinned["shell"])
            row(w, "runbook, pinned the same way", pinned["runbook"], pinned["shell"],
                "not a goal: the output path's own cost, without the scheduler's choice")
    r = rb["median"] / sh["median"]
    goal(w, "runbook <= 1.2x `cat` of the same stream", f"{r:.2f}x", r <= 1.2)
    goal(w, "runbook's peak RSS <= 64 MiB", f"{rss:.1f} MiB", rss <= 64)

check = load("check")
if check:
    w = "4. `runbook check`"
    a, b = check["2000"], check["20000"]
    row(w, "2,000 steps", a, None, "")
    row(w, "20,000 steps", b, None, f"{b['median'] / a['median']:.1f}x the 2,000 (10x is linear)")
    goal(w, "20,000 steps in < 1 s", t(b["median"]), b["median"] < 1)
    r = b["median"] / a["median"]
    goal(w, "20k/2k time ratio <= 12", f"{r:.1f}", r <= 12)

stats = load("stats")
if stats:
    w = "5. `runbook stats`"
    a, b = stats["1000"], stats["10000"]
    row(w, "1,000 runs", a, None, "")
    row(w, "10,000 runs", b, None, f"{b['median'] / a['median']:.1f}x the 1,000 (10x is linear)")
    goal(w, "10,000 runs in < 300 ms", t(b["median"]), b["median"] < 0.3)
    r = b["median"] / a["median"]
    goal(w, "10k/1k time ratio <= 12", f"{r:.1f}", r <= 12)

one = load("one")
if one:
    w = "7. one step, start to finish"
    rb, sh = one["runbook"], one["sh"]
    row(w, "`sh -c true` (floor)", sh, sh, "")
    row(w, f"**runbook** `exec` of one `true` step (durable log on {info['fs']})", rb, sh,
        f"{info['linkage']}ally linked")
    if "dynamic" in one:
        row(w, "runbook, the same, dynamically linked (`cargo build`'s default)",
            one["dynamic"], sh, "not the goal's binary: shows what loading the libraries costs")
    r = rb["median"] / sh["median"]
    goal(w, "runbook < 4x `sh -c true`", f"{r:.2f}x", r < 4)

cold, warm, ten = load("fan_cold"), load("fan_warm"), load("ten")
tools = (("pssh", "parallel-ssh -p 50"), ("ansible-raw", "Ansible ad-hoc `-m raw`"),
         ("ansible-command", "Ansible ad-hoc `-m command`"))
if cold:
    w = "6. fan-out to 50 hosts over ssh, cold"
    xa, rb = cold["xargs"], cold["runbook"]
    row(w, "`xargs -P 50 ssh` (floor)", xa, xa, "a new connection per host")
    row(w, "**runbook**, one fleet step (live, logged)", rb, xa,
        "opens a shared connection per host, closes them at the end")
    for k, name in tools:
        if k in cold:
            row(w, name, cold[k], xa, "")
        else:
            skipped(w, name, "not installed; --quick")
    r = rb["median"] / xa["median"]
    goal(w, "runbook <= 1.10x `xargs -P ssh`", f"{r:.2f}x", r <= 1.10)
if warm:
    w = "6. fan-out to 50 hosts over ssh, warm"
    xa = warm["xargs"]
    row(w, "`xargs -P 50 ssh` over open connections (floor)", xa, xa, "ControlMaster sockets opened before")
    if ten and cold:
        # One more step within a run, for runbook and for the same ssh calls by script:
        # both from medians of their 10-step and 1-step runs (so the same connections and
        # the same machine load), not against the separate measurement above.
        sm = (ten["ssh-shared"]["median"] - cold["xargs"]["median"]) / 9
        m = (ten["runbook"]["median"] - cold["runbook"]["median"]) / 9
        rows.append(f"| {w} | `xargs -P 50 ssh`, one more round within the 10-round script | {t(sm)} (from medians) "
                    f"| | (T(10 rounds) - T(cold round)) / 9: the floor of the next row |")
        rows.append(f"| {w} | **runbook**, one more fleet step within a run | {t(m)} (from medians) "
                    f"| {m / sm:.2f}x the row above | (T(10 steps) - T(1 step)) / 9: a run's connections stay open |")
    for k, name in tools:
        if k in warm:
            row(w, name + " over open connections", warm[k], xa, "")
if ten:
    w = "6. ten fleet steps over the 50 hosts"
    ss, rb = ten["ssh-shared"], ten["runbook"]
    row(w, "the same 500 ssh calls over shared connections (floor)", ss, ss,
        "10 rounds of `xargs -P 50 ssh`, ControlMaster opened in the first, closed at the end")
    row(w, "**runbook**, 10 fleet steps (live, logged)", rb, ss, "")
    r = rb["median"] / ss["median"]
    goal(w, "runbook <= 1.2x the same ssh calls over shared connections", f"{r:.2f}x", r <= 1.2)

print()
print(f"runbook benchmarks ({'quick' if info['quick'] == '1' else 'full'} run): {info['nproc']} CPUs, "
      f"{info['cpu']}, {info['mem']}; temp dir and logs on {info['fs']}; "
      f"load average {info['load_before']} before, {info['load_after']} after")
print(f"versions: {info['runbook']}; {info['make']}; just {info['just']}; {info['ansible']}; "
      f"{info['hyperfine']}; sh = {info['sh']}; {info['python']}; Linux {info['kernel']}; "
      f"{info['ssh']}; {info['pssh']}")
if float(info["load_before"].split()[0]) > int(info["nproc"]) / 2:
    print("(the machine was busy when this started: the timings are inflated and noisy)")
print()
print("| workload | tool | median (mean ± σ, runs) | vs the floor | notes |")
print("|---|---|---|---|---|")
print("\n".join(rows))
print()
print("| workload | goal (issues 6 and 13) | measured | met |")
print("|---|---|---|---|")
print("\n".join(goals))
EOF
