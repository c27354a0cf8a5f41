#!/usr/bin/env bash
# `make run`: demo assets (once), the devnet (anvil + DA + contracts + demo assets registered, node bonded), then
# the node in the foreground on 127.0.0.1:8000. Ctrl-C stops the node gracefully, then the devnet; its state stays
# in .devnet/ so the next `make run` is serving again within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
LL=.venv/bin/loraledger

# demo init checks a complete demo by hashing it (and imports torch): skip it when the manifest is there; the node
# hashes every adapter it loads and checks it against the registry anyway
[ -f .demo/manifest.json ] || $LL demo init
$LL devnet up
stop_devnet() { $LL devnet down >/dev/null 2>&1 || true; echo "devnet stopped (state kept in .devnet/)" >&2; }
trap stop_devnet EXIT
# Ctrl-C reaches the node (graceful: finish in-flight answers, flush the record store); this shell then runs the trap
trap ':' INT TERM
$LL node run "$@"
