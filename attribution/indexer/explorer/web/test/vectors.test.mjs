// The explorer's in-browser checks against vectors written by Python (tests/unit/attribution/test_explorer_js.py):
// LLB2 decoding, record leaves, the record tree and its proofs, ioHash v1 and v3, canonical JSON of chat messages;
// and the tree code against @openzeppelin/merkle-tree itself. Run: node --test (VECTORS=path/to/vectors.json).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { hexToBytes, recoverTypedDataAddress } from "viem";
import { ioHashOf, leafOf, loadAnswer, RECORD_TYPES, recordValues } from "../src/answer.js";
import { decodeBatch, recordAt } from "../src/llb2.js";
import { standardLeaf, standardTree } from "../src/merkle.js";

const v = JSON.parse(readFileSync(process.env.VECTORS, "utf8"));

test("LLB2 payload decodes to the records whose leaves Python computed", () => {
  const d = decodeBatch(hexToBytes(v.payload));
  assert.equal(d.count, v.leaves.length);
  assert.equal(d.firstSeq, BigInt(v.firstSeq));
  v.leaves.forEach((leaf, i) => assert.equal(leafOf(recordAt(d, i)), leaf));
});

test("the record tree has Python's root and proofs, and OZ's", () => {
  const d = decodeBatch(hexToBytes(v.payload));
  const leaves = d.slots.map((_, i) => leafOf(recordAt(d, i)));
  const tree = standardTree(leaves);
  assert.equal(tree.root, v.root);
  v.proofs.forEach((proof, i) => assert.deepEqual(tree.proof(i), proof));
  const oz = StandardMerkleTree.of(d.slots.map((_, i) => recordValues(recordAt(d, i))), RECORD_TYPES);
  assert.equal(oz.root, v.root);
  v.proofs.forEach((proof, i) => assert.deepEqual(oz.getProof(i), proof));
});

test("a reward tree equals OZ's StandardMerkleTree", () => {
  const types = ["uint256", "address", "address", "address", "uint256"];
  const values = v.rewards.map((a) => [31337n, v.distributor, a.account, v.token, BigInt(a.cumulative)]);
  const ours = standardTree(values.map((x) => standardLeaf(types, x)));
  const oz = StandardMerkleTree.of(values.map((x) => x.map(String)), types);
  assert.equal(ours.root, oz.root);
  values.forEach((_, i) => assert.deepEqual(ours.proof(i), oz.getProof(i)));
});

test("saved answers: ioHash in the form they name, leaf, receipt signer", async () => {
  for (const a of v.answers) {
    const answer = loadAnswer(JSON.stringify(a.saved));
    assert.equal(answer.version, a.version);
    assert.equal(ioHashOf(answer).hash, a.ioHash, `${a.name}: ioHash`);
    assert.equal(leafOf(answer.record), a.saved.response.attribution.leaf);
    const signer = await recoverTypedDataAddress({
      domain: { name: "loraledger", version: "1", chainId: answer.record.chainId, verifyingContract: answer.record.ledger },
      types: { Receipt: [{ name: "chainId", type: "uint256" }, { name: "ledger", type: "address" },
        { name: "node", type: "address" }, { name: "seq", type: "uint64" }, { name: "leaf", type: "bytes32" }] },
      primaryType: "Receipt", message: { chainId: answer.record.chainId, ledger: answer.record.ledger,
        node: answer.record.node, seq: answer.record.seq, leaf: answer.leaf }, signature: answer.receipt });
    assert.equal(signer, answer.node);
    // the other form never matches: a version marker cannot be dropped or swapped to pass
    const other = { ...answer, version: answer.version === 3 ? 1 : 3 };
    assert.notEqual(ioHashOf(other).hash, a.ioHash);
  }
});

test("bad answers are refused with the field named", () => {
  assert.throws(() => loadAnswer("{"), /not JSON/);
  assert.throws(() => loadAnswer({ prompt: "x", choices: [{ text: "y" }] }), /attribution/);
  const a = structuredClone(v.answers[0].saved);
  a.response.attribution.salt = "0x12";
  assert.throws(() => loadAnswer(a), /salt must be 32 bytes/);
});
