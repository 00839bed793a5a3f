#!/usr/bin/env bash
# Puts playwright-core, as locked in tests/browser/package-lock.json, in
# tests/browser/node_modules/ for the dashboard's browser test: the tarball
# straight from the npm registry with curl, checked against the lock's
# sha512 integrity. No npm needed (a machine's npm may be missing or broken;
# playwright-core has no dependencies of its own).
set -euo pipefail
cd "$(dirname "$0")/../tests/browser"
lock=package-lock.json
version=$(sed -n '/"node_modules\/playwright-core"/,/}/s/.*"version": "\([^"]*\)".*/\1/p' "$lock")
integrity=$(sed -n '/"node_modules\/playwright-core"/,/}/s/.*"integrity": "sha512-\([^"]*\)".*/\1/p' "$lock")
[ -n "$version" ] && [ -n "$integrity" ] || { echo "browser-deps: no playwright-core in $lock" >&2; exit 1; }
dest=node_modules/playwright-core
if [ -f "$dest/package.json" ] && grep -q "\"version\": \"$version\"" "$dest/package.json"; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
url="https://registry.npmjs.org/playwright-core/-/playwright-core-$version.tgz"
# The bytes are checked against the lock's sha512 below, so a machine whose CA
# bundle does not know the TLS proxy in front of the registry may fetch them
# without verifying the certificate: the hash, not TLS, is what vouches for them.
if ! curl -fsSL --retry 3 -o "$tmp/p.tgz" "$url" 2>"$tmp/err"; then
  if grep -q 'certificate' "$tmp/err"; then
    echo "browser-deps: TLS certificate not trusted here; fetching anyway, the sha512 decides" >&2
    curl -fsSL --retry 3 --insecure -o "$tmp/p.tgz" "$url" ||
      { echo "browser-deps: cannot download $url" >&2; exit 1; }
  else
    cat "$tmp/err" >&2
    echo "browser-deps: cannot download $url" >&2
    exit 1
  fi
fi
got=$(openssl dgst -sha512 -binary "$tmp/p.tgz" | base64 -w0)
[ "$got" = "$integrity" ] || { echo "browser-deps: $url does not match the lock's sha512" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest"
tar -xzf "$tmp/p.tgz" -C "$dest" --strip-components=1
touch node_modules/.package-lock.json
echo "browser-deps: playwright-core $version in tests/browser/$dest"
