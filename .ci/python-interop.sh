#!/usr/bin/env bash
# Python interop: calls the real portolan-server from grpcio
# (tests/python/test_interop.py).
#
#   .ci/python-interop.sh
#
# Uses the python in PORTOLAN_PYTHON when set (.ci/run exports its venv's,
# with tests/python/requirements.txt installed); otherwise creates
# target/python-interop-venv and installs the pinned requirements into it.
# Builds the workspace binaries (debug profile, shared with `cargo test`), then runs
# pytest. pytest's exit 5 ("no tests collected") is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [[ -n "${PORTOLAN_PYTHON:-}" ]]; then
  PY=$PORTOLAN_PYTHON
else
  venv="$ROOT/target/python-interop-venv"
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
  fi
  PY="$venv/bin/python"
fi
"$PY" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# The same build as .ci/run's "binaries" step and tests/support's
# workspace_binary (so no second, differently-featured build of the deps).
cargo build --quiet --locked --workspace --bins
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export PORTOLAN_SERVER_BIN="$target_dir/debug/portolan-server"
export PORTOLAN_CLI_BIN="$target_dir/debug/portolan"
for bin in "$PORTOLAN_SERVER_BIN" "$PORTOLAN_CLI_BIN"; do
  [[ -x "$bin" ]] || { echo "python-interop: $bin was not built" >&2; exit 1; }
done

# The registry is the IANA CSV committed under data/real/ (the test
# decompresses it).
rc=0
"$PY" -m pytest tests/python -ra -p no:cacheprovider "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
  echo "python-interop: pytest collected no tests (exit 5): treating as a failure" >&2
  exit 1
fi
exit "$rc"
