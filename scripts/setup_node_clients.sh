#!/usr/bin/env bash
# Installs the official `openai` npm client (pinned) that the `lopa serve` tests drive, into DIR
# (default build/node, git-ignored). Idempotent and quick once installed; called by the serve tests
# themselves, so `bash scripts/test.sh` from a clean clone needs nothing else (npm from scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/node}
version=4.104.0
pkg="$dir/node_modules/openai/package.json"
if [[ -f $pkg ]] && grep -q "\"version\": \"$version\"" "$pkg"; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "setup_node_clients: npm not found (bash scripts/setup.sh installs nodejs and npm)" >&2
  exit 1
fi
mkdir -p "$dir"
# Concurrent test processes: one installs, the others wait for it.
exec 9>"$dir/.install.lock"
flock 9
if [[ -f $pkg ]] && grep -q "\"version\": \"$version\"" "$pkg"; then
  exit 0
fi
echo "setup_node_clients: npm install openai@$version into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --no-save --silent "openai@$version" >&2
grep -q "\"version\": \"$version\"" "$pkg"
