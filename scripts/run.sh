#!/usr/bin/env bash
# `make run`: demo assets (once), the devnet (anvil + DA + contracts + demo assets registered, node bonded), then one
# node process on 127.0.0.1:8000 that serves and runs its own batcher (records -> DA -> L2 ledger -> final). Ctrl-C
# stops the node gracefully (stop admitting, in-flight answers finish and are recorded, store flushed, batcher
# stopped), then the devnet; state stays in .devnet/ and .loraledger/, so the next `make run` is serving again within
# seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
LL=.venv/bin/loraledger

# demo init checks a complete demo by hashing it (and imports torch): skip it when the manifest is there; the node
# hashes every adapter it loads and checks it against the registry anyway
[ -f .demo/manifest.json ] || $LL demo init
$LL devnet up

NODE=""
stop_all() {
    $LL devnet down >/dev/null 2>&1 || true
    echo "devnet stopped (state kept in .devnet/ and .loraledger/)" >&2
}
trap stop_all EXIT
trap '[ -n "$NODE" ] && kill -TERM "$NODE" 2>/dev/null' INT TERM

$LL node run "$@" &
NODE=$!
# `wait` returns early when a trapped signal arrives: wait until the node has really finished
while kill -0 "$NODE" 2>/dev/null; do wait "$NODE" || true; done
