// The look-up pages: record, batch, node, adapter, dataset, account, and the home page. Each renders one indexer
// JSON answer into the page; ids link to their own pages so every URL is stable and shareable.
import { formatUnits } from "viem";
import { api, getConfig } from "./api.js";
import { barChart } from "./charts.js";
import { batchDisputes, nodeDisputes } from "./disputes.js";
import { facts, h, link, mono, table } from "./dom.js";

const time = (t) => (t ? new Date(Number(t) * 1000).toISOString().replace(".000Z", "Z") : "—");
/** A token amount for an axis: three significant digits (0.0000812, 1.25, 3400). */
export const tokenAxis = (cfg) => (v) => {
  const x = Number(formatUnits(BigInt(Math.round(v)), cfg.token.decimals));
  return x === 0 ? "0" : x >= 1000 ? x.toFixed(0) : String(Number(x.toPrecision(3)));
};
const amount = (cfg, v) => `${formatUnits(BigInt(v ?? 0), cfg.token.decimals)} ${cfg.token.symbol}`;
const verdict = (v) => h("span", { class: `badge ${v === "ok" ? "pass" : v === "pending" ? "wait" : "fail"}` }, v);
export const nodeLink = (a) => link(`/explorer/node/${a}`, mono(a));
/** For table cells: 0x7099…79C8 (the full address in the link's title and URL). */
const nodeCell = (a) => h("a", { href: `/explorer/node/${a}`, title: a }, mono(`${a.slice(0, 6)}…${a.slice(-4)}`));
const batchLink = (id) => link(`/explorer/batch/${id}`, `batch ${id}`);
const adapterLink = (id) => (/^0x0+$/.test(id) ? "base model (no adapter)" : link(`/explorer/adapter/${id}`, mono(id)));
const datasetLink = (id) => link(`/explorer/dataset/${id}`, mono(id));
const accountLink = (a) => link(`/explorer/account/${a}`, mono(a));

export async function home() {
  const [st, recent] = await Promise.all([api("/v1/status"), api("/v1/batches?limit=1000")]);
  const batches = recent.batches.slice(-20).reverse();
  return [h("h1", {}, "loraledger explorer"),
    h("p", {}, "Look up any record, batch, node, adapter, dataset or account; verify a saved answer in your browser " +
      "against the chain and DA; claim what you earned with your wallet."),
    h("p", { class: "actions" }, link("/explorer/verify", "Verify an answer"), " ", link("/explorer/claim", "Claim rewards"),
      " ", link("/explorer/disputes", "Disputes")),
    facts([["chain", String(st.chainId)], ["ledger", mono(st.ledger ?? "—")], ["indexed to block", String(st.cursor)],
      ["records", String(st.records)], ["batches", Object.entries(st.batches).map(([k, v]) => `${v} ${k}`).join(", ") || "none"],
      ["disputes", st.disputes ? `${st.disputes.open} open, ${st.disputes.answered} answered, ${st.disputes.upheld} upheld` : "—"]]),
    table("Latest batches", ["batch", "node", "seqs", "verdict", "posted"], batches.map((b) => [batchLink(b.batchId),
      nodeCell(b.node), `${b.firstSeq}..${b.firstSeq + b.count - 1}`, verdict(b.verdict), time(b.postedAt)]))];
}

export async function record(node, seq) {
  const cfg = await getConfig();
  const r = await api(`/v1/records/${node}/${seq}`);
  const b = await api(`/v1/batches/${r.batchId}`);
  const rec = r.record;
  return [h("h1", {}, `Record ${rec.seq} of node `, mono(rec.node)),
    facts([["status", verdict(r.verdict)], ["batch", batchLink(r.batchId)], ["node", nodeLink(rec.node)],
      ["seq", String(rec.seq)], ["adapter", adapterLink(rec.adapterId)], ["model", mono(rec.modelId)],
      ["datasets", rec.datasetIds.length ? rec.datasetIds.map((d, i) => [datasetLink(d), ` ${rec.weightsBps[i] / 100}% `]) : "none"],
      ["tokens", `${rec.promptTokens} prompt + ${rec.completionTokens} completion`], ["finished", time(rec.timestamp)],
      ["ioHash", mono(rec.ioHash)], ["leaf", mono(r.leaf)], ["posted in block", String(r.blockNumber)],
      ["transaction", mono(b.txHash)], ["DA payload", h("a", { href: `${cfg.daUrl}/get/${b.daCommitment}`, rel: "noreferrer" },
        "download from DA")]]),
    h("h2", {}, "Merkle proof"),
    r.proof ? h("ol", { class: "proof" }, r.proof.map((p) => h("li", {}, mono(p)))) :
      h("p", {}, "No proof: the batch has not verified ok."),
    h("p", {}, "The indexer says so; to check it yourself, ", link("/explorer/verify", "verify the saved answer"), ".")];
}

export async function batch(id) {
  const cfg = await getConfig();
  const { batch: b, records } = await api(`/v1/explorer/batches/${id}`);
  return [h("h1", {}, `Batch ${b.batchId}`),
    facts([["verdict", verdict(b.verdict)], ["detail", b.detail ?? "—"], ["node", nodeLink(b.node)],
      ["seqs", `${b.firstSeq}..${b.firstSeq + b.count - 1} (${b.count} records)`], ["root", mono(b.root)],
      ["rebuilt root", mono(b.rebuiltRoot ?? "—")], ["posted", `${time(b.postedAt)}, block ${b.blockNumber}`],
      ["transaction", mono(b.txHash)], ["DA commitment", h("a", { href: `${cfg.daUrl}/get/${b.daCommitment}`, rel: "noreferrer",
        class: "mono wrap" }, b.daCommitment)], ["rewards", b.unavailable ? "none: marked unavailable" :
        b.verdict === "ok" ? "counts" : "none: not verified ok"]]),
    ...batchDisputes(cfg, b),
    table("Records", ["seq", "adapter", "tokens", "finished"], records.map((r) => [
      link(`/explorer/record/${b.node}/${r.seq}`, String(r.seq)), adapterLink(r.adapterId),
      String(r.promptTokens + r.completionTokens), time(r.timestamp)]))];
}

export async function node(addr) {
  const cfg = await getConfig();
  const n = await api(`/v1/explorer/nodes/${addr}`);
  return [h("h1", {}, "Node ", mono(n.node)),
    facts([["active", n.active ? "yes" : "no"], ["bond", amount(cfg, n.bond.bonded)],
      ["unbonding", amount(cfg, n.bond.unbonding)], ["fee credit", amount(cfg, n.feeCredit)],
      ["next seq on-chain", String(n.nextSeq)], ["records indexed", String(n.records)]]),
    h("figure", {}, barChart("Records per hour", n.recordsPerHour.map((x) => time(x.hour * 3600).slice(5, 16)),
      n.recordsPerHour.map((x) => x.records)), h("figcaption", {}, "Records per hour (UTC), from verified batches.")),
    n.notOk.length ? table("Batches whose verdict is not ok", ["batch", "verdict", "detail"],
      n.notOk.map((b) => [batchLink(b.batchId), verdict(b.unavailable ? "unavailable" : b.verdict), b.detail ?? ""]))
      : h("p", {}, "Every batch verified ok."),
    ...nodeDisputes(cfg, n),
    table("Batches", ["batch", "seqs", "verdict", "posted"], n.batches.map((b) => [batchLink(b.batchId),
      `${b.firstSeq}..${b.firstSeq + b.count - 1}`, verdict(b.verdict), time(b.postedAt)]))];
}

// The usage plot of an adapter, a dataset or an account: `epochs` rows with `epoch` and `tokens`.
function tokensFigure(epochs, caption) {
  return h("figure", {}, barChart("Tokens per epoch", epochs.map((e) => String(e.epoch)), epochs.map((e) => e.tokens)),
    h("figcaption", {}, caption));
}

function epochCharts(cfg, epochs, what) {
  const labels = epochs.map((e) => String(e.epoch));
  const fmt = tokenAxis(cfg);
  return h("div", { class: "charts" },
    tokensFigure(epochs, `Tokens served ${what}, per rewards epoch ("open": not proposed yet).`),
    h("figure", {}, barChart("Earnings per epoch", labels, epochs.map((e) => Number(BigInt(e.earnings))), { fmt, unit: cfg.token.symbol }),
      h("figcaption", {}, `Fees ${what} earned, per epoch, at the registry's price in effect at each record's time.`)));
}

function historyTable(hist) {
  return table("Registry history", ["event", "effective", "block", "terms"], hist.map((e) => [e.event, time(e.effectiveAt),
    String(e.blockNumber), mono(JSON.stringify(e.terms))]));
}

export async function adapter(id) {
  const cfg = await getConfig();
  const a = await api(`/v1/explorer/adapters/${id}`);
  const s = a.state;
  return [h("h1", {}, "Adapter ", mono(a.adapterId)),
    s ? facts([["owner", accountLink(s.owner)], ["price", `${amount(cfg, s.pricePerMTokens)} per million tokens`],
      ["active", s.active ? "yes" : "no"], ["content hash", mono(s.contentHash)], ["base model", mono(s.baseModelId)],
      ["provenance", s.datasetIds.map((d, i) => h("div", {}, datasetLink(d), ` ${s.weightsBps[i] / 100}%`))], ["uri", s.uri]])
      : h("p", {}, "Not in the registry."),
    epochCharts(cfg, a.epochs, "by this adapter"),
    table("Price history", ["effective", "price per million tokens"], a.prices.map((p) => [time(p.effectiveAt), amount(cfg, p.pricePerMTokens)])),
    historyTable(a.history)];
}

export async function dataset(id) {
  const cfg = await getConfig();
  const d = await api(`/v1/explorer/datasets/${id}`);
  const s = d.state;
  return [h("h1", {}, "Dataset ", mono(d.datasetId)),
    s ? facts([["owner", accountLink(s.owner)], ["contributors", s.contributors.map((c, i) => h("div", {}, accountLink(c),
      ` ${s.sharesBps[i] / 100}%`))], ["used by", d.adapters.length ? d.adapters.map((x) => h("div", {}, adapterLink(x))) : "no adapter"],
    ["uri", s.uri]]) : h("p", {}, "Not in the registry."),
    epochCharts(cfg, d.epochs, "through this dataset (weighted by each adapter's provenance)"),
    historyTable(d.history)];
}

export async function account(addr) {
  const cfg = await getConfig();
  const a = await api(`/v1/explorer/accounts/${addr}`);
  const labels = a.epochs.map((e) => String(e.epoch));
  return [h("h1", {}, "Account ", mono(a.account)),
    facts([["earned (cumulative, claimable root)", amount(cfg, a.cumulative)], ["claimed", amount(cfg, a.claimed)],
      ["claimable now", amount(cfg, a.claimable)]]),
    h("p", { class: "actions" }, link("/explorer/claim", "Claim with your wallet")),
    h("div", { class: "charts" },
      tokensFigure(a.usage, "Tokens (prompt + completion) of the verified records whose fees paid this account, as " +
        "node, adapter owner or dataset contributor, per rewards epoch (\"open\": not proposed yet)."),
      h("figure", {}, barChart("Earnings per epoch", labels, a.epochs.map((e) => Number(BigInt(e.amount))),
        { fmt: tokenAxis(cfg), unit: cfg.token.symbol }),
      h("figcaption", {}, "This account's amount in each epoch's rewards payload (DA).")),
    ),
    table("Epochs", ["epoch", "earned", "cumulative", "state"], a.epochs.map((e) => [String(e.epoch), amount(cfg, e.amount),
      amount(cfg, e.cumulative), e.state]))];
}
