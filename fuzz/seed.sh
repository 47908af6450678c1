#!/usr/bin/env sh
# Copies seed inputs for every fuzz target from the real registry files
# committed under data/real/ (decompressed into a temporary folder) into
# fuzz/corpus/<target>/. The corpora are gitignored.
#
# Whole files are copied, plus small slices of the big ones (the first few
# dozen records, closed off properly for XML) because libFuzzer mutates small
# inputs far faster; run with -max_len=65536 (see README.md) so the whole
# files are read truncated rather than slowing every execution.
#
# Usage: fuzz/seed.sh            (from anywhere)
set -eu

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
repo_root=$(dirname "$fuzz_dir")
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
(cd "$repo_root/data/real" && find . -name '*.gz') | while read -r gz; do
    mkdir -p "$data/$(dirname "$gz")"
    gzip -dc "$repo_root/data/real/$gz" > "$data/${gz%.gz}"
done
corpus="$fuzz_dir/corpus"
mkdir -p "$corpus/parse_csv" "$corpus/parse_xml" "$corpus/parse_text" \
    "$corpus/parse_services" "$corpus/parse_nmap" "$corpus/parse_detect" \
    "$corpus/decode_requests" "$corpus/decode_responses"

# copy SRC TARGET NAME: copies a file into a target's corpus.
copy() { rm -f "$corpus/$2/$3"; cat "$1" > "$corpus/$2/$3"; }
# slice SRC TARGET NAME LINES: the first LINES lines of a file.
slice() { head -n "$4" "$1" > "$corpus/$2/$3"; }

# --- IANA CSV -------------------------------------------------------------
csv="$data/iana/service-names-port-numbers.csv"
copy "$data/iana/sample-1000.csv" parse_csv sample-1000.csv
copy "$data/bad/garbage.csv" parse_csv garbage.csv
slice "$csv" parse_csv head-40.csv 40
slice "$csv" parse_csv head-400.csv 400
# The port-less tail (names without ports), with the header.
{ head -n 1 "$csv"; tail -n 60 "$csv"; } > "$corpus/parse_csv/tail-60.csv"
# Cut inside a quoted multi-line field, like bad/truncated.csv but small.
head -c 3000 "$data/iana/sample-1000.csv" > "$corpus/parse_csv/cut-3000.csv"

# --- IANA XML -------------------------------------------------------------
# Head of the document up to the Nth </record>, then the first persons of the
# people table, then the closing tags: a small but complete registry.
xml_slice() { # SRC RECORDS PERSONS OUT
    awk -v nrec="$2" -v nper="$3" '
        !inpeople && /<people>/ { inpeople = 1; print; next }
        !inpeople { if (recs < nrec) print; if (/<\/record>/) recs++; next }
        inpeople && pers < nper { print; if (/<\/person>/) pers++; next }
        /<\/registry>/ { print "  </people>"; print }
    ' "$1" > "$4"
}
xml="$data/iana/service-names-port-numbers.xml"
xml_slice "$xml" 30 10 "$corpus/parse_xml/head-30.xml"
xml_slice "$xml" 300 50 "$corpus/parse_xml/head-300.xml"
xml_slice "$data/iana/service-names-port-numbers-2026-04-24.xml" 120 20 \
    "$corpus/parse_xml/head-120-2026-04-24.xml"
head -c 5000 "$xml" > "$corpus/parse_xml/cut-5000.xml"

# --- IANA text rendering -------------------------------------------------
copy "$data/iana/registry-excerpt.txt" parse_text registry-excerpt.txt
head -c 4000 "$data/iana/registry-excerpt.txt" > "$corpus/parse_text/cut-4000.txt"

# --- services(5) ----------------------------------------------------------
copy "$data/etc/services-debian" parse_services services-debian
slice "$data/etc/services-gentoo-baselayout" parse_services gentoo-head-300 300
slice "$data/etc/services-arch-iana-etc-2017" parse_services arch-head-300 300

# --- nmap-services --------------------------------------------------------
slice "$data/nmap/nmap-services" parse_nmap nmap-head-200 200
tail -n 200 "$data/nmap/nmap-services" > "$corpus/parse_nmap/nmap-tail-200"

# --- parse (detection + gzip) ---------------------------------------------
# The target's first byte selects the path: 0 = detect, 8 = gzip + detect
# (see fuzz_targets/parse_detect.rs); the rest is the file.
for seed in "$corpus/parse_csv/head-40.csv" "$corpus/parse_xml/head-30.xml" \
    "$corpus/parse_text/registry-excerpt.txt" "$corpus/parse_services/services-debian" \
    "$corpus/parse_nmap/nmap-head-200"; do
    name=$(basename "$seed")
    { printf '\000'; cat "$seed"; } > "$corpus/parse_detect/detect-$name"
    { printf '\010'; cat "$seed"; } > "$corpus/parse_detect/gzip-$name"
done
# A really gzip-compressed file, detected by its magic bytes.
{ printf '\000'; gzip -c -n "$corpus/parse_csv/head-40.csv"; } > "$corpus/parse_detect/raw-gzip-head-40.csv"

# --- request decoding -----------------------------------------------------
# Hand-encoded protobuf messages (field tag, wire type, value):
#   LookupPortRequest{port: 443, protocol: TCP}    08 bb 03 10 01
#   LookupNameRequest{name: "http", protocol: UDP} 0a 04 "http" 10 02
#   BatchLookupRequest{id: "1", name: "ssh"}       0a 01 "1" 1a 03 "ssh"
#   SearchRequest{query: "sql", port_min: 1, port_max: 1024, states: [1, 2], limit: 10}
#   WatchRequest{known_version: 7, mode: INVALIDATE} 08 07 10 02
printf '\010\273\003\020\001' > "$corpus/decode_requests/lookup-port"
printf '\012\004http\020\002' > "$corpus/decode_requests/lookup-name"
printf '\012\0011\032\003ssh' > "$corpus/decode_requests/batch-name"
printf '\012\0011\020\026\040\001' > "$corpus/decode_requests/batch-port"
printf '\012\003sql\030\001\040\200\010\052\002\001\002\060\012' > "$corpus/decode_requests/search"
printf '\010\007\020\002' > "$corpus/decode_requests/watch"

printf '\012\0011\020\377\377\377\377\017' > "$corpus/decode_requests/batch-port-too-big"
printf '\010\001\020\143' > "$corpus/decode_requests/unknown-enum"

# --- response decoding (client side) --------------------------------------
#   Record{name: "http", port: 80, port_end: 80, protocol: TCP, protocol_text: "tcp"}
#   WatchResponse{from_version: 1, version: 1, heartbeat: {}}
#   WatchResponse{version: 2, delta: {removed: [{name: "x", port: 1, port_end: 1}], last: true}}
#   LookupPortResponse{records: [the Record above], version: 3}
printf '\012\004http\020\120\030\120\040\001\052\003tcp' > "$corpus/decode_responses/record"
printf '\010\001\020\001\052\000' > "$corpus/decode_responses/heartbeat"
printf '\020\002\042\013\022\007\012\001x\020\001\030\001\040\001' > "$corpus/decode_responses/delta"
printf '\012\021\012\004http\020\120\030\120\040\001\052\003tcp\020\003' > "$corpus/decode_responses/lookup-response"

for dir in "$corpus"/*; do
    echo "$(basename "$dir"): $(ls "$dir" | wc -l) seeds"
done
