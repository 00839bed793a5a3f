#!/usr/bin/env bash
# Runs every libFuzzer harness for SECONDS each.
# usage: scripts/fuzz.sh SECONDS [HARNESS...]   (HARNESS: e.g. http_request)
#
# Each tests/fuzz/fuzz_NAME.c is built with clang's libFuzzer + ASan + UBSan
# against the sources under src/ (all but src/main.c, compiled once into an
# archive so a harness pulls in only what it uses) and run on a scratch copy
# of tests/fuzz/corpus/NAME under build/fuzz-work/, so the committed corpus
# only changes by hand (merge new finds with -merge=1). A crash, leak,
# timeout or OOM input is copied into tests/fuzz/corpus/NAME as regress-*
# (so `make test` replays it from then on) and the script exits non-zero
# after running the remaining harnesses.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-}
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [HARNESS...]" >&2
  exit 2
fi
shift

if ! command -v clang >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang >/dev/null
fi

work=build/fuzz-work
objs=$work/obj
mkdir -p "$objs"
cflags=(-std=c11 -D_GNU_SOURCE -Isrc -g -O1 -fno-omit-frame-pointer
        -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
libs=(-lev -lyaml -ljansson -lcrypto -lm -pthread)

# src/ into one archive (rebuilt when a source is newer than its object)
archive=$work/libweir-fuzz.a
members=()
while IFS= read -r src; do
  obj=$objs/$(echo "${src%.c}" | tr / _).o
  if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find src -name '*.h' -newer "$obj" -print -quit)" ]; then
    if ! clang "${cflags[@]}" -c "$src" -o "$obj"; then
      echo "fuzz.sh: warning: $src does not compile; left out" >&2
      rm -f "$obj"
      continue
    fi
  fi
  members+=("$obj")
done < <(find src -name '*.c' ! -path src/main.c | sort)
rm -f "$archive"
ar rcs "$archive" "${members[@]}"

# tokens that help every HTTP harness get past the syntax quickly
dict=$work/http.dict
cat >"$dict" <<'DICT'
"GET"
"HEAD"
"POST"
"CONNECT"
"OPTIONS"
" HTTP/1.1\x0d\x0a"
" HTTP/1.0\x0d\x0a"
"HTTP/1.1 200 OK\x0d\x0a"
"HTTP/1.0 "
"\x0d\x0a"
"\x0d\x0a\x0d\x0a"
"Host: "
"Content-Length: "
"Transfer-Encoding: "
"chunked"
"gzip"
"Connection: "
"close"
"keep-alive"
"upgrade"
"Upgrade: "
"Expect: "
"100-continue"
"TE: "
"trailers"
"Trailer: "
"Keep-Alive: "
"Proxy-Connection: "
"Proxy-Authorization: "
"http://"
"https://"
"0\x0d\x0a\x0d\x0a"
";ext=\"v\""
DICT

if [ $# -gt 0 ]; then
  harnesses=("$@")
else
  harnesses=()
  for f in tests/fuzz/fuzz_*.c; do
    n=$(basename "$f" .c)
    harnesses+=("${n#fuzz_}")
  done
fi

failed=0
for name in "${harnesses[@]}"; do
  src=tests/fuzz/fuzz_$name.c
  bin=$work/fuzz_$name
  corpus=tests/fuzz/corpus/$name
  scratch=$work/$name/corpus
  artifacts=$work/$name/artifacts
  echo "== fuzz_$name: ${seconds}s"
  clang "${cflags[@]/fuzzer-no-link/fuzzer}" -o "$bin" "$src" "$archive" "${libs[@]}"
  rm -rf "$artifacts"  # earlier finds were already copied into the corpus
  mkdir -p "$corpus" "$scratch" "$artifacts"
  cp -n "$corpus"/* "$scratch"/ 2>/dev/null || true
  rc=0
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -dict="$dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "$scratch" 2>"$work/$name/log" || rc=$?
  tail -n 12 "$work/$name/log"
  found=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
          -o -name 'oom-*' \) | sort)
  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    for a in $found; do
      # "regress-": .gitignore drops crash-* (libFuzzer's droppings), not these
      cp "$a" "$corpus/regress-$(basename "$a")"
      echo "fuzz.sh: fuzz_$name: saved $corpus/regress-$(basename "$a")" >&2
    done
    echo "fuzz.sh: fuzz_$name failed (exit $rc); log: $work/$name/log" >&2
    failed=1
  fi
done
exit $failed
