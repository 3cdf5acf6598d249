#!/usr/bin/env bash
# Set up and run the whole test suite (fakes on 127.0.0.1, embedded Qdrant, a local Redis server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
      || echo "warning: could not install redis-server; the multi-replica tests will be skipped" >&2
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then  # the owners' page is tested in a real headless browser
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "warning: could not install chromium; the /admin browser test will be skipped" >&2
  fi
fi
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
