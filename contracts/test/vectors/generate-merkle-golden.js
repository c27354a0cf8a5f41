#!/usr/bin/env node
// Writes contracts/test/vectors/merkle-golden.json: StandardMerkleTree roots, leaves and proofs computed by the npm
// @openzeppelin/merkle-tree library for fixed claim and record values. StandardMerkle.t.sol checks the contracts'
// leaf encodings and the in-test reference tree against it. Run from the repo root:
//   node contracts/test/vectors/generate-merkle-golden.js
'use strict';
const fs = require('fs');
const path = require('path');
const { StandardMerkleTree } = require(path.resolve(__dirname, '../../../node_modules/@openzeppelin/merkle-tree'));

const hex32 = (x) => '0x' + x.toString(16).padStart(64, '0');
const addr = (x) => '0x' + x.toString(16).padStart(40, '0');
const chainId = 31337;

// Claims: account 0xa1..0xa5 with cumulative amounts 1000..5000.
const distributor = addr(0xd1);
const token = addr(0xe1);
const claimValues = [1, 2, 3, 4, 5].map((i) => [String(chainId), distributor, addr(0xa0 + i), token, String(i * 1000)]);
const claimTree = StandardMerkleTree.of(claimValues, ['uint256', 'address', 'address', 'address', 'uint256']);

// Records: seqs 7, 8, 9 of node 0xb1 on ledger 0xc1; the third has empty provenance, the first adapterId 0.
const ledger = addr(0xc1);
const node = addr(0xb1);
const recordValues = [0, 1, 2].map((i) => [
  String(chainId), ledger, node, String(7 + i), hex32(0x11), hex32(i === 0 ? 0 : 0x22),
  i === 2 ? [] : [hex32(0x33), hex32(0x44)], i === 2 ? [] : [6000, 4000],
  String(10 + i), String(20 + i), String(1700000000 + i), hex32(0x55 + i),
]);
const recordTypes = ['uint256', 'address', 'address', 'uint64', 'bytes32', 'bytes32', 'bytes32[]', 'uint16[]',
  'uint32', 'uint32', 'uint64', 'bytes32'];
const recordTree = StandardMerkleTree.of(recordValues, recordTypes);

const proofsOf = (tree, n) => [...Array(n).keys()].map((i) => tree.getProof(i));
const out = {
  chainId,
  claims: {
    distributor, token, root: claimTree.root,
    accounts: claimValues.map((v) => v[2]),
    amounts: claimValues.map((v) => Number(v[4])),
    leaves: claimValues.map((v) => claimTree.leafHash(v)),
    proofs: proofsOf(claimTree, claimValues.length),
  },
  records: {
    ledger, node, root: recordTree.root,
    leaves: recordValues.map((v) => recordTree.leafHash(v)),
    proofs: proofsOf(recordTree, recordValues.length),
  },
};
fs.writeFileSync(path.join(__dirname, 'merkle-golden.json'), JSON.stringify(out, null, 2) + '\n');
