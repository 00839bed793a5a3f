# Shell helpers shared by bench/run.sh, bench/fault.sh and bench/redis.sh.
# Sourced, not run: each script sets BENCH_NAME (the prefix of its messages)
# and then does `. "$(dirname "$0")/lib.sh"`. Sourcing also installs the
# cleanup traps: the script adds what it starts in the background to pids, and
# sets tmp to its temporary directory (removed on exit).
# shellcheck shell=bash

: "${BENCH_NAME:=bench}"
py=/usr/bin/python3
pids=()    # background processes to stop on exit
fg_pid=""  # the process bg_wait is waiting for, if any
tmp=""     # temporary directory, removed on exit

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

cleanup() {
  local pid
  [ -n "$fg_pid" ] && kill -TERM "$fg_pid" 2>/dev/null
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 30); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  [ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "$BENCH_NAME: interrupted" >&2; exit 130' INT TERM

# bg_wait CMD...: runs CMD in the background and waits for it, so that a signal
# to the script is handled at once (bash runs traps only between foreground commands).
bg_wait() {
  local rc
  "$@" &
  fg_pid=$!
  wait "$fg_pid"
  rc=$?
  fg_pid=""
  return "$rc"
}

# free_ports N: prints N free loopback TCP ports.
free_ports() {
  "$py" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT [PID]: until PORT accepts connections (10 s at most); fails if PID dies first.
wait_port() {
  for _ in $(seq 100); do
    port_open "$1" && return 0
    [ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it.
stop_pid() {
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# cpu_ticks PID: its utime+stime in clock ticks (0 if it is gone).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

median() { # median of the arguments (the lower middle one for an even count)
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

ratio() { # ratio A B [NONE]: A/B with 2 decimals, or NONE ("-") if A or B is empty or B is 0
  awk -v a="$1" -v b="$2" -v none="${3:--}" \
    'BEGIN { if (a == "" || b == "" || b + 0 == 0) print none; else printf "%.2f", a / b }'
}
