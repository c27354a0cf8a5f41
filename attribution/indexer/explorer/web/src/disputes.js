// Disputes (BatchDisputes, docs/disputes.md) as the indexer folds them from events: the disputes page, and the
// tables the batch and node pages show. Status badges: open (waiting for the node's answer), answered (the node was
// honest; the bond went to it), upheld (the node was at fault; slashed unless already punished).
import { formatUnits } from "viem";
import { api, getConfig } from "./api.js";
import { facts, h, link, mono, table } from "./dom.js";

const time = (t) => (t ? new Date(Number(t) * 1000).toISOString().replace(".000Z", "Z") : "—");
const BADGE = { open: "wait", answered: "pass", upheld: "fail" };
export const disputeStatus = (s) => h("span", { class: `badge ${BADGE[s] ?? ""}` }, s);
const short = (a) => h("a", { href: `/explorer/node/${a}`, title: a }, mono(`${a.slice(0, 6)}…${a.slice(-4)}`));
const tokens = (cfg, v) => `${formatUnits(BigInt(v ?? 0), cfg.token.decimals)} ${cfg.token.symbol}`;

/** What the dispute is about: the seq or chunk it names, and why a commission was wrong. */
function subject(d) {
  if (d.kind === "availability") return `chunk ${d.index}${d.markedUnavailable ? ": batch marked unavailable" : ""}`;
  return `seq ${d.index}${d.reason ? ` (${d.reason.replaceAll("_", " ")})` : ""}`;
}

function outcome(cfg, d) {
  if (d.status === "open") return `answer due by ${time(d.deadline)}`;
  if (d.status === "answered") return `answered ${time(d.closed?.timestamp)}`;
  return `slashed ${tokens(cfg, d.slashed)} (${tokens(cfg, d.toChallenger)} to the challenger)`;
}

/** A table of disputes; `withNode` adds the accused node's column (the batch and disputes pages). */
export function disputesTable(cfg, caption, list, { withNode = true } = {}) {
  const head = ["dispute", "kind", "status", ...(withNode ? ["node"] : []), "batch", "about", "outcome", "opened"];
  return table(caption, head, list.map((d) => [String(d.disputeId), d.kind, disputeStatus(d.status),
    ...(withNode ? [short(d.node)] : []), d.batchId ? link(`/explorer/batch/${d.batchId}`, `batch ${d.batchId}`) : "—",
    subject(d), outcome(cfg, d), time(d.opened?.timestamp)]));
}

/** The batch page's disputes: a line when there are none. */
export function batchDisputes(cfg, b) {
  const list = b.disputes ?? [];
  const head = b.unavailable
    ? [h("p", { class: "verdict fail" }, "Unavailable: the node did not publish a challenged chunk of this batch's " +
      "payload on-chain in time. Its records earn nothing in rewards.")]
    : [];
  return [...head, list.length ? disputesTable(cfg, "Disputes", list.slice().reverse())
    : h("p", { class: "muted" }, "No dispute names this batch.")];
}

/** The node page's disputes: the stake slashed and every dispute against it. */
export function nodeDisputes(cfg, n) {
  const c = n.disputeCounts ?? { open: 0, answered: 0, upheld: 0 };
  return [h("h2", {}, "Disputes"),
    facts([["slashed in total", tokens(cfg, n.slashed)],
      ["disputes", `${c.open} open, ${c.answered} answered, ${c.upheld} upheld`],
      ["unavailable batches", n.unavailableBatches?.length ? n.unavailableBatches.map((id) =>
        [link(`/explorer/batch/${id}`, `batch ${id}`), " "]) : "none"]]),
    n.disputes?.length ? disputesTable(cfg, "Disputes against this node", n.disputes, { withNode: false })
      : h("p", { class: "muted" }, "No dispute names this node.")];
}

export async function disputesPage() {
  const cfg = await getConfig();
  const status = new URLSearchParams(location.search).get("status");
  const d = await api(`/v1/explorer/disputes?limit=1000${status ? `&status=${encodeURIComponent(status)}` : ""}`);
  return [h("h1", {}, "Disputes"),
    h("p", {}, "Challenges and proofs against nodes (omission, equivocation, commission, availability), as the " +
      "BatchDisputes contract's events tell them. Filter: ", link("/explorer/disputes", "all"), " · ",
      ["open", "answered", "upheld"].map((s) => [link(`/explorer/disputes?status=${s}`, `${s} (${d.counts[s]})`), " "])),
    d.disputes.length ? disputesTable(cfg, status ? `Disputes (${status})` : "Disputes, newest first", d.disputes)
      : h("p", { class: "muted" }, "No disputes.")];
}
