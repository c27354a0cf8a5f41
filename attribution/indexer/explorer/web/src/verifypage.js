// The verify-an-answer page: paste or drop a saved answer, see each of the ten checks PASS / FAIL / WAIT.
import { getConfig } from "./api.js";
import { loadAnswer } from "./answer.js";
import { h, link, mono } from "./dom.js";
import { CHECKS, verifyAnswer } from "./verify.js";

const MARK = { true: ["PASS", "pass"], false: ["FAIL", "fail"], null: ["WAIT", "wait"] };

export async function verifyPage() {
  const cfg = await getConfig();
  const field = (name, label, value, hint) => h("label", {}, label, h("input", { name, value, type: "url",
    required: true, spellcheck: "false", "aria-describedby": `${name}-hint` }), h("small", { id: `${name}-hint` }, hint));
  const text = h("textarea", { id: "answer", name: "answer", rows: "5", spellcheck: "false", "aria-label": "saved answer JSON",
    placeholder: '{"request": {"prompt": "..."}, "response": {..., "attribution": {...}}}' });
  const file = h("input", { type: "file", accept: "application/json,.json", "aria-label": "open a saved answer file" });
  const list = h("ol", { id: "checks", class: "checks", "aria-live": "polite" });
  const verdict = h("p", { id: "verdict", class: "verdict", role: "status" });
  const settings = h("details", { class: "endpoints" },
    h("summary", {}, "Checked against RPC ", mono(cfg.rpcUrl), ", DA ", mono(cfg.daUrl), ", ledger ", mono(cfg.ledger),
      " (change)"),
    h("form", { id: "endpoints", method: "get", action: "/explorer/verify" },
      h("fieldset", {}, h("legend", {}, "What the checks trust"),
        field("rpc", "L2 RPC URL", cfg.rpcUrl, "every chain read goes here"),
        field("da", "DA URL", cfg.daUrl, "the batch payload is fetched from here"),
        h("label", {}, "Ledger", h("input", { name: "ledger", value: cfg.ledger, required: true,
          pattern: "0x[0-9a-fA-F]{40}", spellcheck: "false" }), h("small", {}, "AttributionLedger address of the deployment")),
        h("button", { type: "submit" }, "Use these"))));
  const run = async () => {
    list.replaceChildren(...CHECKS.map((name, i) => h("li", { id: `check-${i}`, class: "check pending" },
      h("span", { class: "badge" }, "…"), h("strong", {}, name), h("span", { class: "detail" }, ""))));
    verdict.textContent = "checking…";
    verdict.className = "verdict";
    let answer;
    try {
      answer = loadAnswer(text.value);
    } catch (e) {
      list.replaceChildren();
      verdict.textContent = `Not a saved answer: ${e.message}`;
      verdict.className = "verdict fail";
      return;
    }
    const t0 = performance.now();
    try {
      const results = await verifyAnswer(answer, { rpcUrl: cfg.rpcUrl, daUrl: cfg.daUrl, ledger: cfg.ledger,
        fromBlock: cfg.deployBlock }, (i, passed, detail) => {
        const [word, cls] = MARK[String(passed)];
        const li = list.children[i];
        li.className = `check ${cls}`;
        li.replaceChildren(h("span", { class: `badge ${cls}` }, word), h("strong", {}, CHECKS[i]), h("span", { class: "detail" }, detail));
      });
      for (const li of [...list.children].slice(results.length)) li.remove();
      const ok = results.length === CHECKS.length && results.every((r) => r.passed === true);
      const wait = !ok && results.every((r) => r.passed !== false);
      verdict.textContent = `${ok ? "VERIFIED" : wait ? "PENDING" : "NOT VERIFIED"} (${results.length} checks, ` +
        `${Math.round(performance.now() - t0)} ms)`;
      verdict.className = `verdict ${ok ? "pass" : wait ? "wait" : "fail"}`;
    } catch (e) {
      verdict.textContent = `Could not finish: ${e.shortMessage ?? e.message}`;
      verdict.className = "verdict fail";
    }
  };
  file.addEventListener("change", async () => { if (file.files[0]) { text.value = await file.files[0].text(); run(); } });
  text.addEventListener("dragover", (e) => e.preventDefault());
  text.addEventListener("drop", async (e) => {
    e.preventDefault();
    const f = e.dataTransfer.files[0];
    if (f) { text.value = await f.text(); run(); }
  });
  return [h("h1", {}, "Verify an answer"),
    h("p", {}, "Paste or drop the JSON a loraledger node answered (with what you asked). Your browser runs the ten " +
      "checks of ", mono("loraledger verify answer"), " itself, against the RPC, ledger and DA below; the indexer is not asked."),
    h("form", { id: "verify-form", onsubmit: (e) => { e.preventDefault(); run(); } },
      text, h("div", { class: "row" }, file, h("button", { type: "submit", id: "verify" }, "Verify"))),
    settings, verdict, list,
    h("p", { class: "muted" }, "A record not yet in a posted batch shows WAIT; check again after the node's batcher ran. ",
      link("/explorer/", "Back to the explorer"))];
}
