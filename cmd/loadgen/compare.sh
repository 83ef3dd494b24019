#!/usr/bin/env bash
# compare.sh runs the load harness against a fresh ledger (embedded NATS, SyncAlways) and then
# `nats bench js pub` against a standalone nats-server with the same durability (sync_interval: always),
# on the same disk, one after the other, so the ledger's figures sit beside the broker's own limits.
#
# Needs: go, and natscli and nats-server on PATH:
#   go install github.com/nats-io/natscli/nats@latest
#   go install github.com/nats-io/nats-server/v2@latest
#
# Usage: cmd/loadgen/compare.sh [sales] [concurrency]    (defaults 8000 and 256)
set -euo pipefail
sales=${1:-8000}
concurrency=${2:-256}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$(dirname "$0")/../.."
go build -o "$work/ledger" ./cmd/ledger
go build -o "$work/loadgen" ./cmd/loadgen

token=adm_load_token_0123456789abcdef
secret=whsec_c2VjcmV0LWtleS1mb3ItbG9hZGdlbi0wMTIzNDU2Nzg5
echo "== ledger: $sales sales, $concurrency concurrent requests, SyncAlways"
# The harness runs on one key at full speed: the rate limit is off, so it measures the ledger, not the limiter.
LEDGER_LOG_LEVEL=warn LEDGER_DATA_DIR="$work/data" LEDGER_HTTP_ADDR=127.0.0.1:18080 LEDGER_NATS_LISTEN=off LEDGER_RATE_LIMIT=0 \
LEDGER_ADMIN_TOKEN=$token LEDGER_GATEWAY_SECRETS=standard=$secret "$work/ledger" >"$work/ledger.log" 2>&1 &
ledger=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done
"$work/loadgen" -url http://127.0.0.1:18080 -admin-token $token -secret $secret -sales "$sales" -concurrency "$concurrency"
curl -s http://127.0.0.1:18080/metrics | grep -E '^ledger_append_group_(events|seconds)_(sum|count)' || true
kill $ledger; wait $ledger || true

echo "== nats bench js pub: standalone nats-server, sync_interval: always, 1 KB messages"
cat >"$work/nats.conf" <<CONF
listen: 127.0.0.1:14222
jetstream { store_dir: "$work/nats", sync_interval: always }
CONF
nats-server -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
for _ in $(seq 50); do nats -s nats://127.0.0.1:14222 server check connection >/dev/null 2>&1 && break; sleep 0.1; done
n=0
bench() {
	echo "-- $*"
	n=$((n + 1))
	nats -s nats://127.0.0.1:14222 bench js pub "$@" --stream "bench$n" --no-progress --create --size 1KB --dedup "ledger.bench$n" 2>&1 |
		grep -E 'publisher stats:|aggregated stats:|latencies per operation' || true
}
bench sync --clients 64 --msgs 20000
bench async --clients 8 --msgs 40000
bench atomic --batch 50 --msgs 50000
bench atomic --batch 100 --msgs 100000
bench atomic --batch 500 --msgs 200000

# The read side: what BenchmarkFoldMix's raw-ordered sub-benchmark measures in-process (an ordered
# consumer reading the whole stream, no acks), here over TCP against the standalone server. The messages
# stand in for the mix's: about as many, of its mean size with headers (see docs/benchmarks.md, "Whole
# fold of a realistic mix").
echo "== nats bench js ordered: 233,000 messages of 1 KB, one ordered consumer"
nats -s nats://127.0.0.1:14222 bench js pub async ledger.benchsub --stream benchsub --create --purge --size 1KB --msgs 233000 --no-progress >/dev/null 2>&1
nats -s nats://127.0.0.1:14222 bench js ordered --stream benchsub --msgs 233000 --no-progress 2>&1 |
	grep -E 'stats:|msgs/sec' || true
