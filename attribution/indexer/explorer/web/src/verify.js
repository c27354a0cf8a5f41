// The ten checks of `loraledger verify answer` (attribution/answer.py), run in the browser against the L2 RPC, the
// ledger and the DA URL the page shows. Nothing the indexer says is used: each PASS rests on the chain and DA.
import { getAddress, keccak256, recoverTypedDataAddress } from "viem";
import { abis, batchEvents, daGet, postedCommitment, publicClient } from "./chain.js";
import { ioHashOf, leafOf, recordStruct } from "./answer.js";
import { standardTree } from "./merkle.js";
import { decodeBatch, recordAt } from "./llb2.js";

export const CHECKS = ["ioHash", "record is this answer's", "leaf", "receipt signed by the node", "deployment",
  "posted in a batch", "DA payload rebuilds the posted root", "record in the DA payload", "verifyRecord (eth_call)",
  "confirmations"];

const RECEIPT_TYPES = { Receipt: [{ name: "chainId", type: "uint256" }, { name: "ledger", type: "address" },
  { name: "node", type: "address" }, { name: "seq", type: "uint64" }, { name: "leaf", type: "bytes32" }] };

/** Run every check of `answer` (from `loadAnswer`); `report(i, passed, detail)` gets each result as it comes
 * (passed: true, false, or null = WAIT). Returns the list of results; stops early the way the CLI does. */
export async function verifyAnswer(answer, { rpcUrl, daUrl, ledger, fromBlock }, report) {
  const results = [];
  const add = (passed, detail) => { results.push({ name: CHECKS[results.length], passed, detail });
    report(results.length - 1, passed, detail); return passed === true; };
  const rec = answer.record;

  const io = ioHashOf(answer);
  add(io.hash === rec.ioHash.toLowerCase(), `${io.form} = ${io.hash}; record says ${rec.ioHash}`);
  add(rec.seq === answer.seq && rec.node === answer.node,
    `record seq ${rec.seq}, node ${rec.node}; attribution seq ${answer.seq}, node ${answer.node}`);
  const leaf = leafOf(rec);
  add(leaf === answer.leaf, `leaf of the record = ${leaf}; attribution says ${answer.leaf}`);
  try {
    const signer = await recoverTypedDataAddress({
      domain: { name: "loraledger", version: "1", chainId: rec.chainId, verifyingContract: rec.ledger },
      types: RECEIPT_TYPES, primaryType: "Receipt",
      message: { chainId: rec.chainId, ledger: rec.ledger, node: rec.node, seq: rec.seq, leaf },
      signature: answer.receipt });
    add(signer === answer.node, `EIP-712 Receipt(chainId ${rec.chainId}, seq ${rec.seq}, leaf) recovers ${signer}`);
  } catch (e) {
    add(false, `the receipt does not recover a signer: ${e.shortMessage ?? e.message}`);
  }

  const client = publicClient(rpcUrl);
  const ledgerAddr = getAddress(ledger);
  const chainId = BigInt(await client.getChainId());
  if (!add(rec.chainId === chainId && rec.ledger === ledgerAddr, `record for chain ${rec.chainId}, ledger ` +
    `${rec.ledger}; verifying against chain ${chainId} (${rpcUrl}), ledger ${ledgerAddr}`)) return results;

  const events = await batchEvents(client, ledgerAddr, rec.node, fromBlock);
  const ev = events.find((e) => e.firstSeq <= rec.seq && rec.seq < e.firstSeq + BigInt(e.count));
  if (!ev) {
    const next = await client.readContract({ address: ledgerAddr, abi: abis.AttributionLedger, functionName: "nextSeq",
      args: [rec.node] });
    add(null, `seq ${rec.seq} of node ${rec.node} is in no posted batch yet (ledger nextSeq ${next}); wait for the ` +
      "node's batcher and check again");
    return results;
  }
  add(true, `batch ${ev.batchId} covers seqs ${ev.firstSeq}..${ev.firstSeq + BigInt(ev.count) - 1n}, posted in ` +
    `block ${ev.blockNumber} (tx ${ev.txHash})`);

  const stored = await client.readContract({ address: ledgerAddr, abi: abis.AttributionLedger, functionName: "batch",
    args: [ev.batchId] });
  const rebuilt = await rebuildBatch(client, ev, stored, chainId, ledgerAddr, daUrl);
  if (!add(rebuilt.ok, rebuilt.detail)) return results;

  const index = Number(rec.seq - ev.firstSeq);
  const opened = recordAt(rebuilt.decoded, index);
  const same = leafOf(opened) === leaf;
  if (!add(same, same ? `slot ${index} of ${ev.count} in the payload is the answer's record (leaf ${leaf})` :
    `the payload's record at seq ${rec.seq} has leaf ${leafOf(opened)}, not the answer's`)) return results;

  const proof = rebuilt.tree.proof(index);
  const onchain = await client.readContract({ address: ledgerAddr, abi: abis.AttributionLedger,
    functionName: "verifyRecord", args: [ev.batchId, recordStruct(rec), proof] });
  add(onchain === true, `ledger.verifyRecord(batch ${ev.batchId}, record, proof of ${proof.length} nodes) = ${onchain}`);

  const head = await client.getBlockNumber();
  add(true, `${head - ev.blockNumber + 1n} blocks (head ${head})`);
  return results;
}

/** Fetch the batch's payload from DA, check it against the stored batch and rebuild the tree (attribution/verify.py
 * `check_payload`). */
async function rebuildBatch(client, ev, stored, chainId, ledger, daUrl) {
  const fail = (detail) => ({ ok: false, detail });
  const { commitment, why: noCommitment } = await postedCommitment(client, ledger, ev);
  if (!commitment) return fail(`payload_missing: ${noCommitment}`);
  if (keccak256(commitment) !== stored.daCommitmentHash) {
    return fail("keccak256(posted commitment) differs from the commitment hash the ledger stored");
  }
  const diffs = [["root", ev.root, stored.root], ["node", ev.node, stored.node], ["firstSeq", ev.firstSeq,
    stored.firstSeq], ["count", ev.count, stored.count]].filter(([, a, b]) => a !== b).map(([n]) => n);
  if (diffs.length) return fail(`header_mismatch: event and stored batch differ in ${diffs.join(", ")}`);
  const { payload, why } = await daGet(daUrl, commitment);
  if (!payload) return fail(`payload_missing: ${why}`);
  let decoded;
  try {
    decoded = decodeBatch(payload);
  } catch (e) {
    return fail(`malformed: ${e.message}`);
  }
  const got = { chainId: decoded.chainId, ledger: getAddress(decoded.ledger), node: getAddress(decoded.node),
    firstSeq: decoded.firstSeq, count: decoded.count };
  const want = { chainId, ledger, node: ev.node, firstSeq: ev.firstSeq, count: Number(ev.count) };
  const bad = Object.keys(want).filter((k) => got[k] !== want[k]).map((k) => `${k} ${got[k]} != ${want[k]}`);
  if (bad.length) return fail(`header_mismatch: payload header vs batch: ${bad.join("; ")}`);
  const tree = standardTree(decoded.slots.map((_, i) => leafOf(recordAt(decoded, i))));
  if (tree.root !== ev.root) return fail(`root_mismatch: rebuilt root ${tree.root} != posted ${ev.root}`);
  return { ok: true, decoded, tree, detail: `ok: ${decoded.count} records (${payload.length} bytes from ${daUrl}) ` +
    `rebuild the posted root ${ev.root}` };
}
