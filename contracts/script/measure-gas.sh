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
cast rpc --rpc-url "$RPC" anvil_setBalance "$AG" 0xde0b6b3a7640000 >/dev/null

create() { forge create --rpc-url "$RPC" --private-key "$K0" --broadcast "$@" 2>/dev/null | awk '/Deployed to:/ {print $3}'; }
gas() { # key, to, sig, args...
  local key=$1; shift
  cast send --rpc-url "$RPC" --private-key "$key" --json "$@" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["gasUsed"],16))'
}

TOKEN=$(create contracts/src/DevToken.sol:DevToken --constructor-args "Dev" "DEV" "$A0")
NODES=$(create contracts/src/NodeRegistry.sol:NodeRegistry --constructor-args "$TOKEN" 100 1209600 "$A0")
LEDGER=$(create contracts/src/AttributionLedger.sol:AttributionLedger --constructor-args "$NODES")
DIST=$(create contracts/src/RewardDistributor.sol:RewardDistributor --constructor-args "$TOKEN" "$NODES" "$LEDGER" "$A0" "$A0" "$AG" "$A0" 3600)
ASSETS=$(create contracts/src/AssetRegistry.sol:AssetRegistry --constructor-args "$A0" 3600 1000000000000000000000000)

gas "$K0" "$TOKEN" "mint(address,uint256)" "$A1" 1000 >/dev/null
gas "$K1" "$TOKEN" "approve(address,uint256)" "$NODES" 1000 >/dev/null
BOND=$(gas "$K1" "$NODES" "bond(uint256)" 100)

C200=0x0100d0$(python3 -c 'print("ab"*197)')
R1=0x$(python3 -c 'print("11"*32)')
# v3 header: the first and last record timestamps (an hour of records, then the next batch from where it ended).
T1=$(( $(cast block latest --rpc-url "$RPC" -f timestamp) - 3600 ))
T2=$(( T1 + 3600 ))
SIG="postBatch(uint64,uint32,uint64,uint64,bytes32,bytes)"
POST1=$(gas "$K1" "$LEDGER" "$SIG" 0 10000 "$T1" "$T2" "$R1" "$C200")
POST2=$(gas "$K1" "$LEDGER" "$SIG" 10000 10000 "$T2" "$T2" "$R1" "$C200")

# Our DA commitment is a certificate v3 (docs/disputes.md "Certificate v3 and chunks"): 419 bytes at any payload
# size. CV3 is made and signed by our DA codec (attribution/da: what the DA server returns) for a 10,000-record-sized
# payload (620,186 random bytes, 5 blobs, a throwaway operator key), so its calldata has the real zero bytes; C419 is
# 419 non-zero bytes, the most any 419-byte commitment can cost. The bound is 24576 bytes (docs/contracts.md).
CV3=$("${PYTHON:-.venv/bin/python}" - <<'PY'
import random
from eth_account import Account
from attribution.da.chunks import chunks_root
from attribution.da.codec import Certificate
from attribution.da.operator import sign_certificate
from attribution.hashing import keccak256
r = random.Random(21)
payload = r.randbytes(620_186)
cert = Certificate.of(payload_keccak=keccak256(payload), payload_length=len(payload),
                      kzg_commitments=[r.randbytes(48) for _ in range(5)], da_sequence=4242,
                      stored_at=1_765_000_000, chunks_root=chunks_root(payload))
commitment = sign_certificate(cert, Account.from_key(keccak256(b"loraledger measure-gas DA operator"))).commitment()
assert len(commitment) == 419
print("0x" + commitment.hex())
PY
)
C419=0x0100d0$(python3 -c 'print("ab"*416)')
CMAX=0x0100d0$(python3 -c 'print("ab"*24573)')
POSTV3=$(gas "$K1" "$LEDGER" "$SIG" 20000 10000 "$T2" "$T2" "$R1" "$CV3")
POST419=$(gas "$K1" "$LEDGER" "$SIG" 30000 270598 "$T2" "$T2" "$R1" "$C419")
POSTMAX=$(gas "$K1" "$LEDGER" "$SIG" 300598 1 "$T2" "$T2" "$R1" "$CMAX")

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
gas "$K0" "$TOKEN" "mint(address,uint256)" "$A0" 1000000 >/dev/null
gas "$K0" "$TOKEN" "approve(address,uint256)" "$DIST" 1000000 >/dev/null
DEPOSIT=$(gas "$K0" "$DIST" "depositFees(address,uint256)" "$A1" 1000)
DEPOSIT2=$(gas "$K0" "$DIST" "depositFees(address,uint256)" "$A1" 1000)
# 200 more paying nodes (throwaway addresses) for a full page of debits.
PAGE=200
mapfile -t PN < <(python3 -c "print('\n'.join('0x%040x' % (0x10000 + i) for i in range($PAGE)))")
for a in "${PN[@]}"; do gas "$K0" "$DIST" "depositFees(address,uint256)" "$a" 3 >/dev/null; done
PAGE_NODES="[$(IFS=,; echo "${PN[*]}")]"
PAGE_DEBITS="[$(python3 -c "print(','.join(['2']*$PAGE))")]"
cast rpc --rpc-url "$RPC" evm_mine >/dev/null
END=$(( $(cast block-number --rpc-url "$RPC") - 1 ))
TOTAL=$(( 800 + 2 * PAGE ))
OPEN=$(gas "$K0" "$DIST" "proposeRoot(uint64,uint64,bytes32,uint256,bytes)" 1 "$END" "$ROOT" "$TOTAL" 0x0100d0)
PAGE1=$(gas "$K0" "$DIST" "addDebits(uint64,address[],uint256[])" 1 "[$A1]" "[800]")
PAGEN=$(gas "$K0" "$DIST" "addDebits(uint64,address[],uint256[])" 1 "$PAGE_NODES" "$PAGE_DEBITS")
SEAL=$(gas "$K0" "$DIST" "sealRoot(uint64)" 1)
cast rpc --rpc-url "$RPC" evm_increaseTime 3600 >/dev/null
cast rpc --rpc-url "$RPC" evm_mine >/dev/null
CLAIM=$(gas "$K0" "$DIST" "claim(address,uint256,bytes32,bytes32[])" "$A1" 500 "$ROOT" "$PROOF")
PER_NODE=$(( (PAGEN - PAGE1) / (PAGE - 1) ))

# A vetoed proposal and its release (epoch 2, one full page).
cast rpc --rpc-url "$RPC" evm_mine >/dev/null
END2=$(( $(cast block-number --rpc-url "$RPC") - 1 ))
gas "$K0" "$DIST" "proposeRoot(uint64,uint64,bytes32,uint256,bytes)" 2 "$END2" "$ROOT" "$(( TOTAL + PAGE ))" 0x >/dev/null
PAGE_ONES="[$(python3 -c "print(','.join(['1']*$PAGE))")]"
gas "$K0" "$DIST" "addDebits(uint64,address[],uint256[])" 2 "$PAGE_NODES" "$PAGE_ONES" >/dev/null
VETO=$(gas "$KG" "$DIST" "vetoRoot(uint64)" 2)
RELEASE=$(gas "$K0" "$DIST" "releaseDebits(uint64,uint32,address[],uint256[])" 2 0 "$PAGE_NODES" "$PAGE_ONES")

# ---- Disputes (BatchDisputes as the only slasher; bonds 0.01 / 0.2 ETH) ----
DISPUTES=$(create contracts/src/BatchDisputes.sol:BatchDisputes --constructor-args "$LEDGER" "$A0" 10000000000000000 200000000000000000)
gas "$K0" "$NODES" "setSlasher(address)" "$DISPUTES" >/dev/null
RECT="(uint256,address,address,uint64,bytes32,bytes32,bytes32[],uint16[],uint32,uint32,uint64,bytes32)"
S3=$(cast call --rpc-url "$RPC" "$LEDGER" "nextSeq(address)(uint64)" "$A1" | awk '{print $1}')
T3=$(cast block latest --rpc-url "$RPC" -f timestamp)
IO=0x$(python3 -c 'print("10"*32)'); Z32=0x$(python3 -c 'print("00"*32)')
REC="(31337,$LEDGER,$A1,$S3,$M1,$Z32,[],[],10,20,$T3,$IO)"
LEAF=$(cast call --rpc-url "$RPC" "$LEDGER" "recordLeaf($RECT)(bytes32)" "$REC")
# a one-record batch (root = leaf, empty proof); each level of a real proof adds ~0.6k gas
gas "$K1" "$LEDGER" "$SIG" "$S3" 1 "$T3" "$T3" "$LEAF" "$C200" >/dev/null
OB=$(cast call --rpc-url "$RPC" "$LEDGER" "batchCount()(uint256)" | awk '{print $1}')
DIGEST=$(cast call --rpc-url "$RPC" "$DISPUTES" "receiptDigest(address,uint64,bytes32)(bytes32)" "$A1" "$S3" "$LEAF")
RCPT=$(cast wallet sign --no-hash --private-key "$K1" "$DIGEST")
OPEN_O=$(gas "$K0" "$DISPUTES" "openOmission($RECT,bytes,uint256)" "$REC" "$RCPT" "$OB" --value 10000000000000000)
RESPOND=$(gas "$K1" "$DISPUTES" "respondOmission(uint256,bytes32[])" 1 "[]")
gas "$K0" "$DISPUTES" "openOmission($RECT,bytes,uint256)" "$REC" "$RCPT" "$OB" --value 10000000000000000 >/dev/null
# Availability: full-chunk payloads (126,976 random bytes, one chunk) posted with certificate v3 commitments; the
# resolve's 127 KB of calldata is over the shell's argument limit, so it goes through JSON-RPC from python.
read -r OPEN_A RESOLVE < <(python3 - "$RPC" "$LEDGER" "$DISPUTES" "$A0" "$A1" "$S3" "$T3" <<'PY'
import json, random, sys, time, urllib.request
rpc, ledger, disputes, a0, a1, seq, ts = sys.argv[1:]
def call(method, params):
    req = urllib.request.Request(rpc, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
                                 {"Content-Type": "application/json"})
    out = json.load(urllib.request.urlopen(req))
    if "error" in out: raise SystemExit(f"{method}: {out['error']}")
    return out["result"]
k = lambda b: bytes.fromhex(call("web3_sha3", ["0x" + b.hex()])[2:])
w = lambda n: int(n).to_bytes(32, "big")
sel = lambda sig: k(sig.encode())[:4]
def dyn(b): return w(len(b)) + b + bytes(-len(b) % 32)
def send(frm, to, data, value=0):
    h = call("eth_sendTransaction", [{"from": frm, "to": to, "data": "0x" + data.hex(), "value": hex(value), "gas": hex(15_000_000)}])
    r = None
    while r is None:  # anvil mines right after it answers, not before
        time.sleep(0.05)
        r = call("eth_getTransactionReceipt", [h])
    if r["status"] != "0x1": raise SystemExit(f"tx reverted: {data[:4].hex()}")
    return int(r["gasUsed"], 16)
call("anvil_impersonateAccount", [a1])
gases = []
for n in range(2):
    chunk = random.Random(n).randbytes(126_976)
    h = k(chunk)
    root = k(k(w(0) + h))  # the one-leaf chunk tree: StandardMerkleTree leaf of (0, keccak(chunk))
    sig = bytes(64) + b"\x1b"
    cert = w(3) + h + w(len(chunk)) + w(0) + w(0) + w(n) + w(int(ts)) + root + w(9 * 32) + dyn(sig)
    commitment = bytes.fromhex("0100d0") + cert
    first = int(seq) + 1 + n
    post = sel("postBatch(uint64,uint32,uint64,uint64,bytes32,bytes)") + w(first) + w(1) + w(int(ts)) + w(int(ts)) \
        + k(b"root") + w(6 * 32) + dyn(commitment)
    send(a1, ledger, post)
    batch = int(call("eth_call", [{"to": ledger, "data": "0x" + sel("batchCount()").hex()}, "latest"]), 16)
    gases.append(send(a0, disputes, sel("openAvailability(uint256,uint32)") + w(batch) + w(0), 2 * 10**17))
    dispute_id = int(call("eth_call", [{"to": disputes, "data": "0x" + sel("disputeCount()").hex()}, "latest"]), 16)
    if n == 0:
        off_c = 4 * 32
        off_chunk = off_c + len(dyn(commitment))
        off_p = off_chunk + len(dyn(chunk))
        data = sel("resolveAvailability(uint256,bytes,bytes,bytes32[])") + w(dispute_id) + w(off_c) + w(off_chunk) \
            + w(off_p) + dyn(commitment) + dyn(chunk) + w(0)
        gases.append(send(a0, disputes, data))
print(gases[0], gases[1])
PY
)
cast rpc --rpc-url "$RPC" evm_increaseTime 172801 >/dev/null
cast rpc --rpc-url "$RPC" evm_mine >/dev/null
SETTLE_O=$(gas "$K0" "$DISPUTES" "settleExpired(uint256)" 2)
SETTLE_A=$(gas "$K0" "$DISPUTES" "settleExpired(uint256)" 4)
LA=0x$(python3 -c 'print("a1"*32)'); LB=0x$(python3 -c 'print("b2"*32)')
SA=$(cast wallet sign --no-hash --private-key "$K1" "$(cast call --rpc-url "$RPC" "$DISPUTES" "receiptDigest(address,uint64,bytes32)(bytes32)" "$A1" 7 "$LA")")
SB=$(cast wallet sign --no-hash --private-key "$K1" "$(cast call --rpc-url "$RPC" "$DISPUTES" "receiptDigest(address,uint64,bytes32)(bytes32)" "$A1" 7 "$LB")")
EQUIV=$(gas "$K0" "$DISPUTES" "proveEquivocation(address,uint64,bytes32,bytes,bytes32,bytes)" "$A1" 7 "$LA" "$SA" "$LB" "$SB")
WITHDRAW=$(gas "$K1" "$DISPUTES" "withdraw()")

cat <<TABLE
| call | gasUsed (tx, incl. 21k intrinsic) |
| --- | ---: |
| NodeRegistry.bond (first bond) | $BOND |
| AttributionLedger.postBatch, 200-byte commitment, node's first post on a fresh ledger | $POST1 |
| AttributionLedger.postBatch, 200-byte commitment, steady state | $POST2 |
| AttributionLedger.postBatch, 419-byte cert v3 commitment (made by our DA codec), steady state | $POSTV3 |
| AttributionLedger.postBatch, 419 non-zero bytes (any cert v3's ceiling), MAX_BATCH_RECORDS | $POST419 |
| AttributionLedger.postBatch, 24,576-byte commitment (MAX_COMMITMENT_BYTES) | $POSTMAX |
| AssetRegistry.registerDataset (2 contributors) | $DS |
| AssetRegistry.registerBaseModel | $BM |
| AssetRegistry.registerAdapter (1 dataset) | $AR |
| AssetRegistry.schedulePrice (1 dataset kept) | $SP |
| AssetRegistry.scheduleDatasetChange (1 contributor) | $SD |
| RewardDistributor.depositFees (node's first deposit) | $DEPOSIT |
| RewardDistributor.depositFees (later deposit, new block) | $DEPOSIT2 |
| RewardDistributor.proposeRoot (opens an epoch) | $OPEN |
| RewardDistributor.addDebits, 1 node | $PAGE1 |
| RewardDistributor.addDebits, $PAGE nodes (MAX_PAGE_NODES, first debit of each) | $PAGEN |
| RewardDistributor.addDebits, per extra node in a page | $PER_NODE |
| RewardDistributor.sealRoot | $SEAL |
| RewardDistributor.vetoRoot | $VETO |
| RewardDistributor.releaseDebits, $PAGE nodes | $RELEASE |
| RewardDistributor.claim (2-leaf tree, first claim) | $CLAIM |
| BatchDisputes.openOmission (posted seq) | $OPEN_O |
| BatchDisputes.respondOmission (1-record batch, empty proof) | $RESPOND |
| BatchDisputes.openAvailability | $OPEN_A |
| BatchDisputes.resolveAvailability, full 126,976-byte chunk | $RESOLVE |
| BatchDisputes.settleExpired, omission (slash: challenger + treasury) | $SETTLE_O |
| BatchDisputes.settleExpired, availability (slash, batch marked unavailable) | $SETTLE_A |
| BatchDisputes.proveEquivocation (slash at once) | $EQUIV |
| BatchDisputes.withdraw | $WITHDRAW |
TABLE
