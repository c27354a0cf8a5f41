#!/usr/bin/env bash
# `make run`: demo assets (once), the devnet (anvil + DA + contracts + demo assets registered, node bonded), the
# node on 127.0.0.1:8000 and the batcher (records -> DA -> L2 ledger). Ctrl-C stops the node gracefully (in-flight
# answers finish and are recorded), then the batcher, then the devnet; state stays in .devnet/ and .loraledger/,
# so the next `make run` is serving again within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
LL=.venv/bin/loraledger

# demo init checks a complete demo by hashing it (and imports torch): skip it when the manifest is there; the node
# hashes every adapter it loads and checks it against the registry anyway
[ -f .demo/manifest.json ] || $LL demo init
$LL devnet up

NODE="" BATCHER=""
stop_all() {
    [ -n "$BATCHER" ] && kill -TERM "$BATCHER" 2>/dev/null && wait "$BATCHER" 2>/dev/null
    $LL devnet down >/dev/null 2>&1 || true
    echo "batcher and devnet stopped (state kept in .devnet/ and .loraledger/)" >&2
}
trap stop_all EXIT
trap '[ -n "$NODE" ] && kill -TERM "$NODE" 2>/dev/null' INT TERM

$LL node run "$@" &
NODE=$!
config=()  # store-path takes only --config of the node's arguments
args=("$@")
for i in "${!args[@]}"; do
    case "${args[$i]}" in --config) config=(--config "${args[$((i + 1))]:-}") ;; --config=*) config=("${args[$i]}") ;; esac
done
store=$($LL node store-path ${config[@]+"${config[@]}"})
for _ in $(seq 1 240); do [ -f "$store" ] || ! kill -0 "$NODE" 2>/dev/null && break; sleep 0.5; done
if kill -0 "$NODE" 2>/dev/null; then
    $LL batcher run --db "$store" &
    BATCHER=$!
fi
# `wait` returns early when a trapped signal arrives: wait until the node has really finished
while kill -0 "$NODE" 2>/dev/null; do wait "$NODE" || true; done
