#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first
# (redis-tools for redis-cli/redis-benchmark, the redis Python package).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-cli >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "==> installing redis-tools (redis-cli, redis-benchmark)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null
fi
if ! python3 -c "import redis" 2>/dev/null; then
  echo "==> installing the redis Python package"
  python3 -m pip install --quiet redis
fi

echo "==> cargo test (workspace: unit, integration, crash, model, doc tests)"
# Benches are compiled (and linted) by `cargo clippy --all-targets` in CI,
# not run here: they are measurements, not tests.
cargo test --workspace --no-fail-fast

if [ -f scripts/redis_clients_test.sh ]; then
  echo "==> real Redis clients against cairn (redis-cli, redis-py, redis-benchmark)"
  cargo build -p cairn
  bash scripts/redis_clients_test.sh target/debug/cairn
fi
