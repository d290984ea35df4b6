#!/usr/bin/env bash
# The README's sweep report: runs examples/sweep-quickstart.yaml with `livesim sweep` and writes
# docs/sweep-report.html (the report) and docs/sweep-report.png (headless Chromium's screenshot of it).
# Chromium comes from Debian's package (hack/chromium.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
node_modules/.bin/node sim-runtime/cli/main.ts sweep examples/sweep-quickstart.yaml --out "$out" --quiet
browser="$(bash hack/chromium.sh)"
[[ -n "$browser" ]] || { echo "sweep-report: no Chromium (see hack/chromium.sh)" >&2; exit 1; }
cp "$out/report.html" docs/sweep-report.html
"$browser" --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --user-data-dir="$out/profile" \
  --window-size=1280,2380 --virtual-time-budget=10000 --host-resolver-rules='MAP * ~NOTFOUND' \
  --screenshot="$PWD/docs/sweep-report.png" "file://$out/report.html" 2>/dev/null
echo "wrote docs/sweep-report.html and docs/sweep-report.png"
