# Shared by scripts/bench-*: building, starting and stopping processes,
# /proc counters. Source it after `set -euo pipefail`; it sets $root, $bench
# (target/bench: binaries), $results (target/bench/results) and $work (a
# temporary directory removed at exit). Every process started through
# bench_bg is killed (by PID) when the script exits.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bench="$target/bench"
results="$bench/results"
mkdir -p "$bench" "$results"
work=$(mktemp -d "${TMPDIR:-/tmp}/unisock-bench.XXXXXX")
bench_pids=()

bench_cleanup() {
  local pid
  for pid in "${bench_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${bench_pids[@]}"; do
    for _ in $(seq 50); do # up to 5 s: a child bench script cleans up after itself
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exec 3>&- 2>/dev/null || true
  rm -rf "$work"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# Starts "$@" in the background (stdin from $BG_IN, stdout to $BG_OUT, both
# default /dev/null; a FIFO is opened in the background job, not here) and
# records its PID in $bg_pid and in the cleanup list.
bench_bg() {
  "$@" <"${BG_IN:-/dev/null}" >"${BG_OUT:-/dev/null}" 2>>"$work/stderr" &
  bg_pid=$!
  bench_pids+=("$bg_pid")
}

# Stops one process started with bench_bg (by PID), waiting for it.
bench_stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A watchdog: the whole script ends after $1 seconds whatever happens.
bench_deadline() {
  local me=$$
  (
    sp=""
    trap '[ -z "$sp" ] || kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$1" & sp=$!
    wait "$sp"
    echo "bench: deadline of $1 s reached; stopping" >&2
    kill -TERM "$me"
  ) &
  bench_pids+=("$!")
}

# Builds the release library, the harness and the bench programs (unless
# BENCH_NO_BUILD=1). The harness build goes through scripts/unisock-host.
bench_build() {
  if [ -z "${BENCH_NO_BUILD:-}" ]; then
    (cd "$root" && cargo build --quiet --release --lib)
    UNISOCK_PROFILE=release "$root/scripts/unisock-host" </dev/null >/dev/null
  fi
  local c
  for c in epoll_echo echo_client; do
    if [ ! -x "$bench/$c" ] || [ "$root/benches/$c.c" -nt "$bench/$c" ]; then
      cc -std=c11 -O2 -Wall -Wextra -Werror "$root/benches/$c.c" -o "$bench/$c"
    fi
  done
}

# Starts the release harness reading commands from a FIFO held open on fd 3.
# Sets $harness_pid and $harness_out. Send commands with: echo ... >&3
# The admin's policy the harness runs with (docs/SECURITY.md), which every bench
# script sets: "default" (the library's: upstream's modes and HTTP, no host power),
# "open", or a JSON object.
harness_policy=${harness_policy:-}
harness_start() {
  if [ -z "$harness_policy" ]; then
    echo "bench: set harness_policy (default, open or JSON) before harness_start" >&2
    return 1
  fi
  mkfifo "$work/harness.in"
  harness_out="$work/harness.out"
  UNISOCK_HOST_NO_BUILD=1 UNISOCK_PROFILE=release \
    "$root/scripts/unisock-host" <"$work/harness.in" >"$harness_out" 2>>"$work/stderr" &
  harness_pid=$!   # scripts/unisock-host execs the harness: same PID
  bench_pids+=("$harness_pid")
  exec 3>"$work/harness.in"
  if [ "$harness_policy" != default ]; then
    echo "policy $harness_policy" >&3
  fi
}

# Waits (up to $2 s, default 10) until the harness output has a line matching $1.
harness_expect() {
  local pat=$1 t=${2:-10} i
  for i in $(seq $((t * 20))); do
    if grep -q -- "$pat" "$harness_out"; then return 0; fi
    kill -0 "$harness_pid" 2>/dev/null || { echo "bench: harness died" >&2; cat "$harness_out" "$work/stderr" >&2; return 1; }
    sleep 0.05
  done
  echo "bench: harness never printed $pat" >&2
  cat "$harness_out" >&2
  return 1
}

# The port of "ip port" in the last `address` answer of the harness.
harness_port() {
  grep '"cmd":"address"' "$harness_out" | tail -1 | sed 's/.*"value":"[^ ]* \([0-9]*\)".*/\1/'
}

# Voluntary + involuntary context switches of every thread of PID.
ctxt_switches() {
  local pid=$1 v=0 n=0 f
  for f in /proc/"$pid"/task/*/status; do
    v=$((v + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$f")))
    n=$((n + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$f")))
  done
  echo "$v $n"
}

# Nanoseconds on CPU of every thread of PID (schedstat field 1).
cpu_ns() {
  local pid=$1 s=0 f
  for f in /proc/"$pid"/task/*/schedstat; do
    s=$((s + $(awk '{print $1}' "$f")))
  done
  echo "$s"
}

threads() { ls /proc/"$1"/task | wc -l; }

machine() {
  local model
  model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
  echo "$(nproc) cores, ${model:-unknown CPU}, $(uname -sr)"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
