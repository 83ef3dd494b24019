#!/usr/bin/env bash
# compare.sh measures the figures of issue 12's table in one run, each beside the broker's own limit on
# the same disk and the same 2 cores:
#
#  1. the load harness (cmd/loadgen) against a fresh ledger (embedded NATS, SyncAlways): checkouts, then
#     webhooks recorded and applied, with the ledger's CPU per request (process_cpu_seconds_total);
#  2. `nats bench js pub` (sync, async, atomic and fast batches) against a standalone nats-server with the
#     same durability (sync_interval: always);
#  3. the whole fold of a realistic mix (BenchmarkFoldMix) beside a raw ordered consumer of the same
#     stream in the same process, and `nats bench js ordered` against the standalone server;
#  4. a summary table: each figure, its ratio to the broker where the issue asks for one, and the target.
#
# Needs: go, and natscli and nats-server on PATH:
#   go install github.com/nats-io/natscli/nats@v0.5.1
#   go install github.com/nats-io/nats-server/v2@v2.15.2
#
# Usage: cmd/loadgen/compare.sh [sales] [concurrency] [fold sales]   (defaults 8000, 64 and 10000)
# The whole run takes 1-3 minutes on 2 cores; FOLD=0 skips step 3 (under a minute of it).
set -euo pipefail
sales=${1:-8000}
concurrency=${2:-64}
foldsales=${3:-10000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$(dirname "$0")/../.."
go build -o "$work/ledger" ./cmd/ledger
go build -o "$work/loadgen" ./cmd/loadgen

token=adm_load_token_0123456789abcdef
secret=whsec_c2VjcmV0LWtleS1mb3ItbG9hZGdlbi0wMTIzNDU2Nzg5
if curl -s -o /dev/null http://127.0.0.1:18080/; then
	echo "compare.sh: something already answers on 127.0.0.1:18080 (a ledger left running?); stop it first" >&2
	exit 1
fi
echo "== ledger: $sales sales, $concurrency concurrent requests, SyncAlways"
# The harness runs on one key at full speed: the rate limit is off, so it measures the ledger, not the limiter.
LEDGER_LOG_LEVEL=warn LEDGER_DATA_DIR="$work/data" LEDGER_HTTP_ADDR=127.0.0.1:18080 LEDGER_NATS_LISTEN=off LEDGER_RATE_LIMIT=0 \
LEDGER_ADMIN_TOKEN=$token LEDGER_GATEWAY_SECRETS=standard=$secret "$work/ledger" >"$work/ledger.log" 2>&1 &
ledger=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done
if ! kill -0 $ledger 2>/dev/null; then
	# Another process holds 127.0.0.1:18080 (a ledger left running?): measuring it would be wrong.
	echo "compare.sh: the ledger did not start; its log:" >&2
	cat "$work/ledger.log" >&2
	exit 1
fi
"$work/loadgen" -url http://127.0.0.1:18080 -admin-token $token -secret $secret -sales "$sales" -concurrency "$concurrency" | tee "$work/loadgen.out"
# Group commit (events per batch) and the projection's transactions (events per transaction, time).
curl -s http://127.0.0.1:18080/metrics |
	grep -E '^ledger_append_group_(events|seconds)_(sum|count)|^ledger_projection_(applied_events_total|batch_seconds_(sum|count))' || true
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
		grep -E 'publisher stats:|aggregated stats:|latencies per operation' | tee -a "$work/nats.out" || true
}
bench sync --clients "$concurrency" --msgs 20000
bench async --clients 8 --msgs 40000
# Fast batches (ADR-50) against the atomic batches the ledger's group commit writes, batch for batch.
bench atomic --batch 10 --msgs 10000
bench fast --batch 10 --msgs 10000
bench atomic --batch 100 --msgs 100000
bench fast --batch 100 --msgs 100000
bench atomic --batch 500 --msgs 200000

fold="" raw="" xraw="" ordered=""
if [ "${FOLD:-1}" != 0 ]; then
	# The read side: what BenchmarkFoldMix's raw-ordered sub-benchmark measures in-process (an ordered
	# consumer reading the whole stream, no acks), here over TCP against the standalone server, with as
	# many messages of the mix's mean size (see docs/benchmarks.md, "Whole fold of a realistic mix").
	msgs=$((foldsales * 78 / 10))
	echo "== nats bench js ordered: $msgs messages of 1 KB, one ordered consumer"
	nats -s nats://127.0.0.1:14222 bench js pub async ledger.benchsub --stream benchsub --create --purge --size 1KB --msgs "$msgs" --no-progress >/dev/null 2>&1
	nats -s nats://127.0.0.1:14222 bench js ordered --stream benchsub --msgs "$msgs" --no-progress 2>&1 |
		grep -E 'stats:|msgs/sec' | tee "$work/ordered.out" || true
	ordered=$(grep -oE '[0-9,]+ msgs/sec' "$work/ordered.out" | head -1 | tr -d , | cut -d' ' -f1)
	echo "== BenchmarkFoldMix: the whole fold of a realistic mix ($foldsales sales) beside a raw ordered consumer"
	go test -run '^$' -bench FoldMix -benchtime 1x ./projections/ -args -mix.sales="$foldsales" | tee "$work/fold.out"
	raw=$(awk '/FoldMix\/raw-ordered/ {for (i=1;i<=NF;i++) if ($(i+1)=="events/s") print $i}' "$work/fold.out")
	fold=$(awk '/FoldMix\/fold/ {for (i=1;i<=NF;i++) if ($(i+1)=="events/s") print $i}' "$work/fold.out")
	xraw=$(awk '/FoldMix\/fold/ {for (i=1;i<=NF;i++) if ($(i+1)=="x-raw") print $i}' "$work/fold.out")
fi

# The summary: the issue's table, measured now.
sync=$(grep 'JetStream synchronous publisher aggregated stats' "$work/nats.out" | grep -oE '[0-9,]+ msgs/sec' | tr -d , | cut -d' ' -f1)
webhooks=$(awk '/^sustained/ {for (i=1;i<=NF;i++) if ($(i+1)=="deliveries/s") print $i}' "$work/loadgen.out")
cpu=$(awk '/µs per webhook/ {print $3}' "$work/loadgen.out")
cpuc=$(awk '/µs per checkout/ {print $3}' "$work/loadgen.out")
p99w=$(awk '/^webhooks/ {for (i=1;i<=NF;i++) if ($i=="p99") print $(i+1)}' "$work/loadgen.out")
p99c=$(awk '/^checkouts/ {for (i=1;i<=NF;i++) if ($i=="p99") print $(i+1)}' "$work/loadgen.out")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "== issue 12's figures, this run ($sales sales at $concurrency concurrent; SyncAlways everywhere)"
printf '%-64s %-32s %s\n' "figure" "measured" "target"
printf '%-64s %-32s %s\n' "webhooks fully applied/s ÷ nats bench js pub sync --clients $concurrency" "$(ratio "$webhooks" "$sync") ($webhooks ÷ $sync)" "≥ 1.0"
printf '%-64s %-32s %s\n' "ledger CPU per webhook, recorded and applied" "$cpu µs" "≤ 200 µs"
printf '%-64s %-32s %s\n' "ledger CPU per checkout" "$cpuc µs" "-"
printf '%-64s %-32s %s\n' "webhook p99" "$p99w" "< 20 ms"
printf '%-64s %-32s %s\n' "checkout p99" "$p99c" "< 50 ms"
if [ -n "$fold" ]; then
	printf '%-64s %-32s %s\n' "fold of a realistic mix, events/s (÷ raw ordered, same process)" "$fold ($xraw × $raw)" "≥ 150,000; ≥ 0.8"
	printf '%-64s %-32s %s\n' "  ÷ nats bench js ordered (standalone server, TCP)" "$(ratio "$fold" "$ordered") (÷ $ordered)" ""
fi
