#!/usr/bin/env bash
# Set up (first run only) and run the demo: index the bundled sample wiki and answer questions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wikibot demo "$@"
