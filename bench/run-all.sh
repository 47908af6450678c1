#!/usr/bin/env bash
# Runs every portolan-bench scenario that BENCHMARKS.md reports, on release
# builds and the real 2026 IANA files, saving each text block and JSON
# result under bench/results/. Loopback only; every run is bounded.
#
# Usage (from the repository root):
#   bench/run-all.sh [DATA_DIR] [--soak]
# DATA_DIR defaults to ../shared/data/iana (relative to the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/iana}
soak=${2:-}
csv=$data/service-names-port-numbers.csv
xml=$data/service-names-port-numbers.xml
out=bench/results
bin=target/release
mkdir -p "$out"
cargo build --release -p portolan-server -p portolan-bench -p portolan-cli

run() {
  local name=$1; shift
  echo "### $name (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$bin/portolan-bench" "$@" --json-out "$out/$name.json" | tee "$out/$name.txt"
}

run steady-unary steady --data "$csv" --mix unary --duration 10s --rounds 3
run steady-mixed steady --data "$csv" --duration 10s --rounds 3
run reload reload --data "$csv" --alt-data "$xml" --duration 60s
run watch-fanout watch-fanout --data "$csv" --alt-data "$xml" --iterations 3
run watch-fanout-xml watch-fanout --data "$data/service-names-port-numbers-2026-04-24.xml" \
  --alt-data "$xml" --iterations 3
run startup startup --data "$csv" --iterations 20
run cli cli --data "$csv" --iterations 20
run reload-cost reload-cost --data "$csv" --alt-data "$xml" --iterations 40
run sweep sweep --data "$csv" --duration 3s --svg "$out/sweep.svg"
if [ "$soak" = "--soak" ]; then
  run soak soak --data "$csv" --alt-data "$xml" --duration 10m
fi
