#!/usr/bin/env bash
# `make run`: demo assets (once), the devnet (anvil + DA + contracts + demo assets registered, node bonded), then one
# node process on 127.0.0.1:8000 that serves and runs its own batcher (records -> DA -> L2 ledger -> final), and the
# indexer with its explorer on 127.0.0.1:8700 (LORALEDGER_EXPLORER_PORT), and the watcher (`loraledger watch`, the
# challenger, on 127.0.0.1:8800, LORALEDGER_WATCH_PORT). Ctrl-C stops the node gracefully (stop admitting, in-flight
# answers finish and are recorded, store flushed, batcher stopped), then the indexer and the watcher, then the
# devnet; state stays in .devnet/ and .loraledger/, so the next `make run` is serving again within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
LL=.venv/bin/loraledger

# demo init checks a complete demo by hashing it (and imports torch): skip it when the manifest is there; the node
# hashes every adapter it loads and checks it against the registry anyway
[ -f .demo/manifest.json ] || $LL demo init
$LL devnet up

NODE="" INDEXER="" WATCHER=""
EXPLORER_PORT=${LORALEDGER_EXPLORER_PORT:-8700}
WATCH_PORT=${LORALEDGER_WATCH_PORT:-8800}
stop_all() {
    # a child that already ended (Ctrl-C reaches the whole process group) makes `wait` fail: never let that end
    # this trap (set -e) before the devnet is down
    if [ -n "$INDEXER" ]; then kill -TERM "$INDEXER" 2>/dev/null && { wait "$INDEXER" 2>/dev/null || true; }; fi
    if [ -n "$WATCHER" ]; then kill -TERM "$WATCHER" 2>/dev/null && { wait "$WATCHER" 2>/dev/null || true; }; fi
    $LL devnet down >/dev/null 2>&1 || true
    echo "indexer, watcher and devnet stopped (state kept in .devnet/ and .loraledger/)" >&2
}
trap stop_all EXIT
trap '[ -n "$NODE" ] && kill -TERM "$NODE" 2>/dev/null' INT TERM

# ENGINE=vllm (`make run ENGINE=vllm`): the node serves through vLLM, from the venv `make setup-vllm` made
NODE_LL=$LL
if [ "${ENGINE:-}" = vllm ]; then
    NODE_LL=.venv-vllm/bin/loraledger
    export LORALEDGER_ENGINE__BACKEND=vllm
fi
$NODE_LL node run "$@" &
NODE=$!
config=()  # store-path takes only --config of the node's arguments
args=("$@")
for i in "${!args[@]}"; do
    case "${args[$i]}" in --config) config=(--config "${args[$((i + 1))]:-}") ;; --config=*) config=("${args[$i]}") ;; esac
done
store=$($LL node store-path ${config[@]+"${config[@]}"})
for _ in $(seq 1 240); do [ -f "$store" ] || ! kill -0 "$NODE" 2>/dev/null && break; sleep 0.5; done
if kill -0 "$NODE" 2>/dev/null; then
    mkdir -p .loraledger
    $LL indexer serve --port "$EXPLORER_PORT" >.loraledger/indexer.log 2>&1 &
    INDEXER=$!
    $LL watch --port "$WATCH_PORT" >.loraledger/watch.log 2>&1 &
    WATCHER=$!
    echo "node      $($LL node url "$@")/v1   (OpenAI-compatible API; its batcher posts the records)"
    echo "explorer  http://127.0.0.1:$EXPLORER_PORT/explorer/   (indexer API /v1, log .loraledger/indexer.log)"
    echo "watcher   http://127.0.0.1:$WATCH_PORT/receipts   (POST saved answers; status /v1/status, log .loraledger/watch.log)"
fi
# `wait` returns early when a trapped signal arrives: wait until the node has really finished
while kill -0 "$NODE" 2>/dev/null; do wait "$NODE" || true; done
