#!/usr/bin/env bash
# Same-run A/B of two builds of the server, alternating them in one window
# so both see the same machine: steady unary lookups (ratio to the baseline,
# 15 rounds per run), Watch fan-out (10,000 streams over 100 connections and
# 1,000 over 20, FULL and INVALIDATE), reload-cost (in-process index) and
# reloads every 500 ms under load. Each build drives its own server with its
# own portolan-bench, so the two may differ in contract.
#
# Usage (from the repository root), with two release target folders that
# hold portolan-server and portolan-bench:
#   bench/ab.sh OLD_RELEASE_DIR NEW_RELEASE_DIR OUTPUT_FILE
# Build an old commit with e.g.
#   git worktree add ../old <commit> && (cd ../old && cargo build --release -p portolan-server -p portolan-bench)
# Loopback only; every run is bounded (about 20 minutes in all).
set -uo pipefail
cd "$(dirname "$0")/.."
old=$1; new=$2; out=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
d=$tmp/iana; mkdir -p "$d"
for gz in data/real/iana/*.gz; do gzip -dc "$gz" > "$d/$(basename "$gz" .gz)"; done
csv=$d/service-names-port-numbers.csv
xml=$d/service-names-port-numbers.xml
xml0=$d/service-names-port-numbers-2026-04-24.xml
say() { echo "$@" | tee -a "$out"; }
bin() { if [ "$1" = old ]; then echo "$old"; else echo "$new"; fi; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
: > "$out"
say "# Same-run A/B: old=$old new=$new, $(date -u +%FT%TZ)"

say "== steady unary, 15 rounds per run, alternating builds"
for run in 1 2; do for side in old new; do
  say "-- $run $side ($(date -u +%T), load $(load))"
  "$(bin $side)/portolan-bench" steady --spawn-server "$(bin $side)/portolan-server" \
    --data "$csv" --mix unary --duration 3s --rounds 15 2>&1 | tee -a "$out" | tail -4
done; done

fan() {
  local name=$1 side=$2; shift 2
  say "-- fanout $name $side ($(date -u +%T), load $(load))"
  timeout 600 "$(bin $side)/portolan-bench" watch-fanout --spawn-server "$(bin $side)/portolan-server" "$@" \
    2>&1 | tee -a "$out" | tail -4
}
limits=(--server-arg=--max-watch-streams=10240 --server-arg=--max-watch-streams-per-connection=128)
say "== watch-fanout, 10,000 streams over 100 connections"
for side in old new; do
  fan full-csv-xml "$side" --data "$csv" --alt-data "$xml" --streams 10000 --watch-connections 100 \
    --mode full --iterations 2 --deadline 30s "${limits[@]}"
  fan invalidate-csv-xml "$side" --data "$csv" --alt-data "$xml" --streams 10000 --watch-connections 100 \
    --mode invalidate --iterations 2 "${limits[@]}"
  fan full-xml-xml-73 "$side" --data "$xml0" --alt-data "$xml" --streams 10000 --watch-connections 100 \
    --mode full --iterations 2 "${limits[@]}"
done
limits=(--server-arg=--max-watch-streams=1024 --server-arg=--max-watch-streams-per-connection=64)
say "== watch-fanout, 1,000 streams over 20 connections"
for side in old new; do
  fan invalidate-1000 "$side" --data "$csv" --alt-data "$xml" --iterations 3 "${limits[@]}"
  fan full-1000 "$side" --data "$csv" --alt-data "$xml" --iterations 3 --mode full "${limits[@]}"
done

say "== reload-cost (in-process index), alternating builds"
for run in 1 2 3; do for side in old new; do
  say "-- $run $side ($(date -u +%T), load $(load))"
  "$(bin $side)/portolan-bench" reload-cost --data "$csv" --alt-data "$xml" --iterations 20 \
    2>&1 | tee -a "$out" | tail -3
done; done

say "== reload every 500 ms for 30 s under load (CSV<->XML), alternating builds"
for run in 1 2; do for side in old new; do
  say "-- $run $side ($(date -u +%T), load $(load))"
  "$(bin $side)/portolan-bench" reload --spawn-server "$(bin $side)/portolan-server" \
    --data "$csv" --alt-data "$xml" --duration 30s 2>&1 | tee -a "$out" | tail -6
done; done
say "done $(date -u +%T)"
sed -i -e "s#$tmp/#<tmp>/#g" "$out"
