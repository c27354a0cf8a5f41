// Strict decoder of `LLB2` batch payloads (DESIGN.md "Batch payload"), the browser twin of attribution/payload.py:
// every deviation throws an Error naming what is wrong, so a FAIL says why.
import { bytesToHex } from "viem";

export const UNIT = 31;
export const HEADER_BYTES = 3 * UNIT;
export const SLOT_BYTES = 2 * UNIT;
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

const padToUnit = (n) => Math.ceil(n / UNIT) * UNIT;
const allZero = (b, from, to) => { for (let i = from; i < to; i++) if (b[i]) return false; return true; };

function u(b, off, n) {
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(b[off + i]);
  return v;
}

/** Decode `payload` (Uint8Array) into header, profiles and record slots. */
export function decodeBatch(payload) {
  const b = payload;
  if (b.length > MAX_PAYLOAD_BYTES) throw new Error(`payload is ${b.length} bytes, max ${MAX_PAYLOAD_BYTES}`);
  if (b.length < 4 || b[0] !== 0x4c || b[1] !== 0x4c || b[2] !== 0x42 || b[3] !== 0x32) {
    throw new Error("payload does not start with the magic \"LLB2\"");
  }
  if (b.length < HEADER_BYTES) throw new Error(`payload is ${b.length} bytes, shorter than the 93-byte header`);
  const header = {
    chainId: u(b, 4, 8), ledger: bytesToHex(b.slice(12, 32)), node: bytesToHex(b.slice(32, 52)),
    firstSeq: u(b, 52, 8), count: Number(u(b, 60, 4)), profileCount: Number(u(b, 64, 4)),
  };
  if (!allZero(b, 68, HEADER_BYTES)) throw new Error("non-zero padding after the header");
  if (header.count === 0) throw new Error("payload holds no records (count = 0)");
  let off = HEADER_BYTES;
  const profiles = [];
  for (let k = 0; k < header.profileCount; k++) {
    if (off + 65 > b.length) throw new Error(`payload ends inside profile ${k}`);
    const n = b[off + 64];
    const body = 65 + 34 * n;
    const size = padToUnit(body);
    if (off + size > b.length) throw new Error(`payload ends inside profile ${k} (${n} datasets)`);
    if (!allZero(b, off + body, off + size)) throw new Error(`non-zero padding after profile ${k}`);
    const datasetIds = [];
    const weightsBps = [];
    for (let j = 0; j < n; j++) {
      const p = off + 65 + 34 * j;
      datasetIds.push(bytesToHex(b.slice(p, p + 32)));
      weightsBps.push(Number(u(b, p + 32, 2)));
    }
    profiles.push({ modelId: bytesToHex(b.slice(off, off + 32)), adapterId: bytesToHex(b.slice(off + 32, off + 64)),
      datasetIds, weightsBps });
    off += size;
  }
  const end = off + header.count * SLOT_BYTES;
  if (b.length < end) throw new Error(`payload is ${b.length} bytes; ${header.count} record slots need ${end}`);
  if (b.length > end) throw new Error(`${b.length - end} bytes after the last of ${header.count} record slots`);
  const slots = [];
  for (let i = 0; i < header.count; i++) {
    const p = off + i * SLOT_BYTES;
    if (!allZero(b, p + 52, p + 62)) throw new Error(`non-zero padding in record slot ${i}`);
    const profileIdx = Number(u(b, p, 4));
    if (profileIdx >= header.profileCount) {
      throw new Error(`record ${i} uses profile ${profileIdx} but only ${header.profileCount} exist`);
    }
    slots.push({ profileIdx, promptTokens: Number(u(b, p + 4, 4)), completionTokens: Number(u(b, p + 8, 4)),
      timestamp: u(b, p + 12, 8), ioHash: bytesToHex(b.slice(p + 20, p + 52)) });
  }
  return { ...header, profiles, slots };
}

/** Record i of a decoded batch as a record object (the shape of `Record.to_json`, integers as BigInt). */
export function recordAt(decoded, i) {
  const s = decoded.slots[i];
  const p = decoded.profiles[s.profileIdx];
  return { chainId: decoded.chainId, ledger: decoded.ledger, node: decoded.node, seq: decoded.firstSeq + BigInt(i),
    modelId: p.modelId, adapterId: p.adapterId, datasetIds: p.datasetIds, weightsBps: p.weightsBps,
    promptTokens: s.promptTokens, completionTokens: s.completionTokens, timestamp: s.timestamp, ioHash: s.ioHash };
}
