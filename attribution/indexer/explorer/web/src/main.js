// The explorer's entry: route the stable URL to its page. Every page is a function returning nodes.
import { NotFound } from "./api.js";
import { claimPage } from "./claimpage.js";
import { disputesPage } from "./disputes.js";
import { h } from "./dom.js";
import { account, adapter, batch, dataset, home, node, record } from "./pages.js";
import { verifyPage } from "./verifypage.js";

const HEX40 = "(0x[0-9a-fA-F]{40})";
const HEX64 = "(0x[0-9a-fA-F]{64})";
const ROUTES = [
  [/^\/explorer\/?$/, home],
  [new RegExp(`^/explorer/record/${HEX40}/(\\d+)$`), record],
  [/^\/explorer\/batch\/(\d+)$/, batch],
  [new RegExp(`^/explorer/node/${HEX40}$`), node],
  [new RegExp(`^/explorer/adapter/${HEX64}$`), adapter],
  [new RegExp(`^/explorer/dataset/${HEX64}$`), dataset],
  [new RegExp(`^/explorer/account/${HEX40}$`), account],
  [/^\/explorer\/verify$/, verifyPage],
  [/^\/explorer\/claim$/, claimPage],
  [/^\/explorer\/disputes$/, disputesPage],
];

async function render() {
  const main = document.getElementById("main");
  const q = new URLSearchParams(location.search).get("q");
  if (location.pathname === "/explorer/search") {
    main.replaceChildren(h("h1", {}, "Nothing found"), h("p", {}, `No record, batch, node, adapter, dataset, account or ` +
      `transaction matches “${q ?? ""}”. Try an id (0x…), an address, a tx hash, a batch number or node/seq.`));
    done();
    return;
  }
  const hit = ROUTES.map(([re, page]) => [location.pathname.match(re), page]).find(([m]) => m);
  try {
    if (!hit) throw new NotFound(`no page at ${location.pathname}`);
    const nodes = await hit[1](...hit[0].slice(1));
    main.replaceChildren(...nodes);
    const title = main.querySelector("h1")?.textContent;
    if (title) document.title = `${title} · loraledger explorer`;
  } catch (e) {
    main.replaceChildren(h("h1", {}, e instanceof NotFound ? "Not found" : "Error"), h("p", { class: "verdict fail" }, e.message));
  }
  done();
}

function done() {
  document.body.dataset.ready = "1";
  performance.mark("explorer-ready"); // time to interactive, read by the browser tests
}

render();
