#!/usr/bin/env bash
# Real transaction gas (receipt gasUsed, incl. the 21k intrinsic gas and calldata) of the main entry points on a
# throwaway anvil (chain id 31337, anvil's public dev keys only). Prints a markdown table. Run from the repo root
# after `forge build`:  bash contracts/script/measure-gas.sh
set -euo pipefail
BIN="$PWD/node_modules/@foundry-rs"
export PATH="$BIN/anvil-linux-amd64/bin:$BIN/forge-linux-amd64/bin:$BIN/cast-linux-amd64/bin:$PATH"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RPC="http://127.0.0.1:$PORT"
anvil --port "$PORT" --silent &
ANVIL=$!
trap 'kill $ANVIL' EXIT
for _ in $(seq 50); do cast chain-id --rpc-url "$RPC" >/dev/null 2>&1 && break; sleep 0.1; done

# anvil dev account 0 (deployer, governance, poster; local devnet only), a throwaway guardian and node key.
K0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
K1=$(cast keccak "loraledger measure-gas node")
KG=$(cast keccak "loraledger measure-gas guardian")
A0=$(cast wallet address "$K0")
A1=$(cast wallet address "$K1")
AG=$(cast wallet address "$KG")
cast rpc --rpc-url "$RPC" anvil_setBalance "$A1" 0xde0b6b3a7640000 >/dev/null

create() { forge create --rpc-url "$RPC" --private-key "$K0" --broadcast "$@" 2>/dev/null | awk '/Deployed to:/ {print $3}'; }
gas() { # key, to, sig, args...
  local key=$1; shift
  cast send --rpc-url "$RPC" --private-key "$key" --json "$@" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["gasUsed"],16))'
}

TOKEN=$(create contracts/src/DevToken.sol:DevToken --constructor-args "Dev" "DEV" "$A0")
NODES=$(create contracts/src/NodeRegistry.sol:NodeRegistry --constructor-args "$TOKEN" 100 1209600 "$A0")
LEDGER=$(create contracts/src/AttributionLedger.sol:AttributionLedger --constructor-args "$NODES")
DIST=$(create contracts/src/RewardDistributor.sol:RewardDistributor --constructor-args "$TOKEN" "$NODES" "$A0" "$A0" "$AG" "$A0" 3600)
ASSETS=$(create contracts/src/AssetRegistry.sol:AssetRegistry --constructor-args "$A0" 3600 1000000000000000000000000)

gas "$K0" "$TOKEN" "mint(address,uint256)" "$A1" 1000 >/dev/null
gas "$K1" "$TOKEN" "approve(address,uint256)" "$NODES" 1000 >/dev/null
BOND=$(gas "$K1" "$NODES" "bond(uint256)" 100)

C200=0x0100d0$(python3 -c 'print("ab"*197)')
R1=0x$(python3 -c 'print("11"*32)')
POST1=$(gas "$K1" "$LEDGER" "postBatch(uint64,uint32,bytes32,bytes)" 0 10000 "$R1" "$C200")
POST2=$(gas "$K1" "$LEDGER" "postBatch(uint64,uint32,bytes32,bytes)" 10000 10000 "$R1" "$C200")

# The largest real commitment: the certificate of a full 16 MiB payload is 17411 bytes (docs/contracts.md).
C17K=0x0100d0$(python3 -c 'print("ab"*17408)')
POSTMAX=$(gas "$K1" "$LEDGER" "postBatch(uint64,uint32,bytes32,bytes)" 20000 270598 "$R1" "$C17K")

# Ids are namespaced by the registrant: datasetId = keccak256(abi.encode(owner, datasetKey)), same for adapters.
DK=0x$(python3 -c 'print("d1"*32)'); M1=0x$(python3 -c 'print("e1"*32)'); CH=0x$(python3 -c 'print("ad"*32)')
D1=$(cast keccak "$(cast abi-encode 'f(address,bytes32)' "$A0" "$DK")")
AD=$(cast keccak "$(cast abi-encode 'f(address,bytes32)' "$A0" "$CH")")
DS=$(gas "$K0" "$ASSETS" "registerDataset(bytes32,address[],uint16[],string)" "$DK" "[$A0,$A1]" "[6000,4000]" "ipfs://ds")
BM=$(gas "$K0" "$ASSETS" "registerBaseModel(bytes32,string)" "$M1" "hf://model")
AR=$(gas "$K0" "$ASSETS" "registerAdapter(bytes32,bytes32,bytes32[],uint16[],uint256,string)" "$CH" "$M1" "[$D1]" "[10000]" 1000000000000000 "ipfs://adapter")
SP=$(gas "$K0" "$ASSETS" "schedulePrice(bytes32,uint256)" "$AD" 2000000000000000)
SD=$(gas "$K0" "$ASSETS" "scheduleDatasetChange(bytes32,address[],uint16[])" "$D1" "[$A1]" "[10000]")

# A two-leaf claim tree (A1: 500, A0: 300) from the npm merkle-tree library.
read -r ROOT PROOF < <(node -e '
const {StandardMerkleTree}=require("@openzeppelin/merkle-tree");
const [d,t,a0,a1]=process.argv.slice(1);
const tr=StandardMerkleTree.of([["31337",d,a1,t,"500"],["31337",d,a0,t,"300"]],["uint256","address","address","address","uint256"]);
console.log(tr.root, "["+tr.getProof(0).join(",")+"]");' "$DIST" "$TOKEN" "$A0" "$A1")
gas "$K0" "$TOKEN" "mint(address,uint256)" "$A0" 1000 >/dev/null
gas "$K0" "$TOKEN" "approve(address,uint256)" "$DIST" 1000 >/dev/null
DEPOSIT=$(gas "$K0" "$DIST" "depositFees(address,uint256)" "$A1" 1000)
PROPOSE=$(gas "$K0" "$DIST" "proposeRoot(uint64,bytes32,uint256,bytes,address[],uint256[])" 1 "$ROOT" 800 0x0100d0 "[$A1]" "[800]")
cast rpc --rpc-url "$RPC" evm_increaseTime 3600 >/dev/null
cast rpc --rpc-url "$RPC" evm_mine >/dev/null
CLAIM=$(gas "$K0" "$DIST" "claim(address,uint256,bytes32,bytes32[])" "$A1" 500 "$ROOT" "$PROOF")

cat <<TABLE
| call | gasUsed (tx, incl. 21k intrinsic) |
| --- | ---: |
| NodeRegistry.bond (first bond) | $BOND |
| AttributionLedger.postBatch, 200-byte commitment, node's first post on a fresh ledger | $POST1 |
| AttributionLedger.postBatch, 200-byte commitment, steady state | $POST2 |
| AttributionLedger.postBatch, 17,411-byte commitment (16 MiB payload's cert), 270,598 records | $POSTMAX |
| AssetRegistry.registerDataset (2 contributors) | $DS |
| AssetRegistry.registerBaseModel | $BM |
| AssetRegistry.registerAdapter (1 dataset) | $AR |
| AssetRegistry.schedulePrice (1 dataset kept) | $SP |
| AssetRegistry.scheduleDatasetChange (1 contributor) | $SD |
| RewardDistributor.depositFees (first deposit) | $DEPOSIT |
| RewardDistributor.proposeRoot (1 node debited) | $PROPOSE |
| RewardDistributor.claim (2-leaf tree, first claim) | $CLAIM |
TABLE
