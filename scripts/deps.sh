#!/usr/bin/env bash
# Installs the Debian packages a purpose needs, only those missing.
# usage: scripts/deps.sh build|test|bench
set -euo pipefail
build=(make gcc pkg-config libev-dev libyaml-dev libxxhash-dev libpcre2-dev libhiredis-dev libssl-dev libcrypt-dev libjansson-dev zlib1g-dev libbrotli-dev libzstd-dev libnghttp2-dev curl)
test=("${build[@]}" libcmocka-dev python3 python3-pytest python3-pytest-xdist python3-h2 python3-grpcio nghttp2-client python3-requests python3-redis python3-bcrypt python3-jwt python3-cryptography python3-brotli python3-zstandard python3-prometheus-client redis-server redis-sentinel redis-tools nutcracker chromium openssl)
# the dashboard's browser test drives chromium with playwright-core (fetched
# from the npm registry by scripts/browser-deps.sh, no npm needed) on Node.js:
# Debian's, unless one is there already (NodeSource's on some machines)
command -v node >/dev/null || test+=(nodejs)
bench=("${build[@]}" nghttp2-client nghttp2-server wrk nginx libnginx-mod-stream haproxy procps redis-server redis-tools nutcracker varnish openssl python3 python3-jwt rabbitmq-server librabbitmq-dev beanstalkd bc)
case "${1:-build}" in
  build) want=("${build[@]}") ;;
  test) want=("${test[@]}") ;;
  bench) want=("${bench[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
