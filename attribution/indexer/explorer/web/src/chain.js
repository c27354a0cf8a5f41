// The L2 and DA reads the pages make themselves (viem over the RPC URL shown on the page; fetch of the DA URL).
// ABIs come from the forge artifacts at build time (build.mjs writes abis.json), so a contract change follows.
import { createPublicClient, decodeFunctionData, getAddress, http, keccak256 } from "viem";
import abis from "./abis.json";

export { abis };

export function publicClient(rpcUrl) {
  return createPublicClient({ transport: http(rpcUrl, { retryCount: 1, timeout: 20_000 }) });
}

/** The payload hash and length our DA server's certificate (`01 00 d0 ‖ abi.encode(uint8 version, bytes32
 * payloadKeccak, uint32 payloadLength, ...)`) commits to, or null for another DA layer's commitment. Only the first
 * three (static) words are read, so fields the certificate gains later do not matter here. */
export function parseCertificate(commitment) {
  if (!commitment.startsWith("0x0100d0") || commitment.length < 8 + 3 * 64) return null;
  const word = (i) => "0x" + commitment.slice(8 + 64 * i, 8 + 64 * (i + 1));
  return { version: Number(BigInt(word(0))), payloadKeccak: word(1), payloadLength: Number(BigInt(word(2))) };
}

/** GET the payload of `commitment` from the DA server at `daUrl`; checks it against the certificate when ours. */
export async function daGet(daUrl, commitment) {
  const url = `${daUrl.replace(/\/+$/, "")}/get/${commitment}`;
  let res;
  try {
    res = await fetch(url, { cache: "no-store" });
  } catch (e) {
    throw new Error(`cannot reach DA at ${daUrl} (${e.message}); is it running and does it allow this origin (CORS)?`);
  }
  if (res.status === 404) return { payload: null, why: `DA ${daUrl} has no payload for the commitment (404)` };
  if (!res.ok) throw new Error(`DA ${daUrl} answered ${res.status}; retry later`);
  const payload = new Uint8Array(await res.arrayBuffer());
  const cert = parseCertificate(commitment);
  if (cert) {
    const got = keccak256(payload);
    if (got !== cert.payloadKeccak || payload.length !== cert.payloadLength) {
      return { payload: null, why: `DA served ${payload.length} bytes with keccak ${got}, not the certified ` +
        `${cert.payloadLength} bytes with keccak ${cert.payloadKeccak}` };
    }
  }
  return { payload, why: "" };
}

/** `BatchPosted` events of `node` from `fromBlock`, newest first. */
export async function batchEvents(client, ledger, node, fromBlock) {
  const event = abis.AttributionLedger.find((x) => x.type === "event" && x.name === "BatchPosted");
  const logs = await client.getLogs({ address: ledger, event, args: { node }, fromBlock: BigInt(fromBlock),
    toBlock: "latest" });
  return logs.map((l) => ({ ...l.args, blockNumber: l.blockNumber, txHash: l.transactionHash })).reverse();
}


/** The DA commitment batch event `ev` posted: the `daCommitment` argument of the `postBatch` call in its transaction
 * (the event carries only `daCommitmentHash`, docs/contracts.md "Reading a batch's commitment"); null with why when
 * the transaction is not a direct `postBatch` call to `ledger` or its argument does not hash to the event's. */
export async function postedCommitment(client, ledger, ev) {
  const tx = await client.getTransaction({ hash: ev.txHash });
  if (!tx.to || getAddress(tx.to) !== getAddress(ledger)) {
    return { commitment: null, why: `tx ${ev.txHash} calls ${tx.to}, not the ledger: posted through a contract` };
  }
  let call;
  try {
    call = decodeFunctionData({ abi: abis.AttributionLedger, data: tx.input });
  } catch (e) {
    return { commitment: null, why: `tx ${ev.txHash} is not a ledger call (${e.shortMessage ?? e.message})` };
  }
  const commitment = call.functionName === "postBatch" ? call.args[5] : null;
  if (!commitment || keccak256(commitment) !== ev.daCommitmentHash) {
    return { commitment: null, why: `tx ${ev.txHash} posts no commitment hashing to ${ev.daCommitmentHash}` };
  }
  return { commitment, why: "" };
}
