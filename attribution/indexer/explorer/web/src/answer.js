// A saved node answer (the layouts `loraledger verify answer` reads, attribution/answer.py) and the offline parts
// of its check: the prompt bytes, the ioHash in the form the answer names, the record leaf.
import { concat, encodeAbiParameters, getAddress, hexToBytes, isAddress, isHex, keccak256, toBytes } from "viem";
import { standardLeaf } from "./merkle.js";

export const RECORD_TYPES = ["uint256", "address", "address", "uint64", "bytes32", "bytes32", "bytes32[]",
  "uint16[]", "uint32", "uint32", "uint64", "bytes32"];

/** UTF-8 of `v` as canonical JSON: sorted keys, no whitespace, non-ASCII kept (Python's `canonical_json`). */
export function canonicalJson(v) {
  if (Array.isArray(v)) return "[" + v.map(canonicalJson).join(",") + "]";
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(v[k])).join(",") + "}";
  }
  return JSON.stringify(v);
}

function hexField(att, name, size) {
  const v = att[name];
  if (typeof v !== "string" || !isHex(v)) throw new Error(`attribution.${name} must be a 0x-hex string`);
  if ((v.length - 2) / 2 !== size) throw new Error(`attribution.${name} must be ${size} bytes, got ${(v.length - 2) / 2}`);
  return v.toLowerCase();
}

/** Parse a saved answer (object or JSON text); throws an Error naming the missing or bad field. */
export function loadAnswer(input) {
  let obj = input;
  if (typeof input === "string") {
    try { obj = JSON.parse(input); } catch (e) { throw new Error(`the answer is not JSON: ${e.message}`); }
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new Error("an answer is a JSON object");
  const response = obj.response ?? obj;
  const request = obj.request ?? obj;
  const hasPrompt = typeof request.prompt === "string";
  const hasMessages = Array.isArray(request.messages);
  if (hasPrompt === hasMessages) {
    throw new Error("the answer must carry what was asked: exactly one of `prompt` (completions) or `messages` (chat)");
  }
  const choice = response.choices?.[0];
  const text = choice?.message ? choice.message.content : choice?.text;
  if (typeof text !== "string") throw new Error("no completion text: expected choices[0].text or choices[0].message.content");
  const att = response.attribution;
  if (!att || typeof att !== "object") throw new Error("the response has no `attribution` object; was it saved from a loraledger node?");
  const r = att.record;
  if (!r || typeof r !== "object") throw new Error("attribution lacks 'record'");
  for (const k of ["chainId", "ledger", "node", "seq", "modelId", "adapterId", "datasetIds", "weightsBps",
    "promptTokens", "completionTokens", "timestamp", "ioHash"]) {
    if (!(k in r)) throw new Error(`attribution.record lacks field '${k}'`);
  }
  if (!isAddress(String(att.node))) throw new Error(`attribution.node ${att.node} is not an address`);
  const record = { ...r, chainId: BigInt(r.chainId), seq: BigInt(r.seq), timestamp: BigInt(r.timestamp),
    ledger: getAddress(r.ledger), node: getAddress(r.node) };
  // the node names the rule its ioHash follows (absent: v1, records from before v3); never guessed from the hash
  const version = att.io_hash_version ?? 1;
  if (version !== 1 && version !== 3) {
    throw new Error(`attribution.io_hash_version is ${JSON.stringify(version)}: this page knows 1 (legacy) and 3`);
  }
  return {
    prompt: toBytes(hasPrompt ? request.prompt : canonicalJson(request.messages)),
    kind: hasPrompt ? 1 : 2, completion: toBytes(text), seq: BigInt(att.seq),
    node: getAddress(att.node), record, version, leaf: hexField(att, "leaf", 32), salt: hexField(att, "salt", 32),
    receipt: hexField(att, "receipt", 65),
  };
}

/** The ioHash of the answer's text by the rule its `io_hash_version` names, and that rule in words. */
export function ioHashOf(a) {
  if (a.version === 3) {
    const enc = encodeAbiParameters([{ type: "uint8" }, { type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }],
      [a.kind, a.salt, keccak256(a.prompt), keccak256(a.completion)]);
    return { hash: keccak256(enc), form: `v3 keccak256(abi.encode(kind ${a.kind}, salt, keccak(prompt), keccak(completion)))` };
  }
  return { hash: keccak256(concat([hexToBytes(a.salt), a.prompt, a.completion])), form: "v1 keccak256(salt ‖ prompt ‖ completion)" };
}

/** The record as the leaf's value list (ints as decimal strings: what @openzeppelin/merkle-tree takes). */
export function recordValues(r) {
  return [r.chainId.toString(), getAddress(r.ledger), getAddress(r.node), r.seq.toString(), r.modelId, r.adapterId,
    r.datasetIds, r.weightsBps.map(String), String(r.promptTokens), String(r.completionTokens),
    r.timestamp.toString(), r.ioHash];
}

/** The record as the ABI struct `verifyRecord` takes. */
export function recordStruct(r) {
  return { chainId: BigInt(r.chainId), ledger: getAddress(r.ledger), node: getAddress(r.node), seq: BigInt(r.seq),
    modelId: r.modelId, adapterId: r.adapterId, datasetIds: r.datasetIds, weightsBps: r.weightsBps.map(Number),
    promptTokens: Number(r.promptTokens), completionTokens: Number(r.completionTokens),
    timestamp: BigInt(r.timestamp), ioHash: r.ioHash };
}

/** The StandardMerkleTree leaf of a record: keccak256(keccak256(abi.encode(fields))). */
export function leafOf(r) {
  const s = recordStruct(r);
  return standardLeaf(RECORD_TYPES, [s.chainId, s.ledger, s.node, s.seq, s.modelId, s.adapterId, s.datasetIds,
    s.weightsBps, s.promptTokens, s.completionTokens, s.timestamp, s.ioHash]);
}
