"""The explorer in Debian's chromium (Playwright), against a real devnet, node, batcher, DA server and
`loraledger indexer serve`: a record looked up from a real answer; a saved answer verified in the page (all ten
checks PASS, read from the RPC and DA by the browser itself); the same answer with one character of its completion
changed fails at ioHash; a contributor claims through a test EIP-1193 provider backed by an anvil dev account and
their token balance grows by exactly the payout; the plots draw real data; a watcher's disputes show on the
disputes, batch and node pages.

Set LORALEDGER_EXPLORER_SHOTS=docs/explorer to (re)write the screenshots docs/explorer.md shows."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from attribution.chain.disputes import DisputeStatus
from attribution.chain.errors import ContractRevert
from attribution.da.client import DAClient
from attribution.devnet.processes import free_port
from attribution.records import Record
from attribution.rewards.epochs import RewardsChain
from attribution.rewards.tree import decode_payload
from tests.fixtures.chain import AnvilNode, own_anvil
from tests.fixtures.da import DAServerProcess
from tests.integration.node.conftest import API_KEY, NodeEnv, NodeProcess, run_batchers_until_final

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed: "
                                                    "run `make setup` (as root with apt) to install it")]
playwright_sync = pytest.importorskip("playwright.sync_api")

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CONTRIBUTOR = 5  # dev account 5 contributes dataset A (node_env)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("LORALEDGER_EXPLORER_SHOTS")


class Indexer:
    """A running `loraledger indexer serve` (with its explorer)."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def get(self, path: str) -> Any:
        r = httpx.get(self.url + path, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


def start_indexer(root: Path, db: str, rpc_url: str, da_url: str, deployment: Path) -> Indexer:
    port = free_port()
    log = root / f"indexer-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    cli = Path(sys.executable).with_name("loraledger")
    proc = subprocess.Popen([str(cli), "indexer", "serve", "--db", db, "--rpc-url", rpc_url, "--da-url", da_url,
                             "--deployment", str(deployment), "--confirmations", "0", "--port", str(port),
                             "--poll", "0.2"], cwd=root, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"indexer exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/v1/status", timeout=2).status_code == 200:
                return Indexer(proc, url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"indexer not up:\n{log.read_text()[-3000:]}")


def wait_indexed(idx: Indexer, records: int) -> None:
    for _ in range(600):
        st = idx.get("/v1/status")
        if st["records"] >= records and set(st["batches"]) == {"ok"}:
            return
        time.sleep(0.2)
    raise AssertionError(f"the indexer did not index {records} records: {st}")


def _ask(url: str, body: dict[str, Any], path: str) -> dict[str, Any]:
    r = httpx.post(url + path, json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    return {"request": body, "response": r.json()}


# records are priced at their own time: this module needs a chain whose clock follows the wall clock
anvil = pytest.fixture(scope="module", name="anvil")(own_anvil)


@pytest.fixture(scope="module")
def world(served_node: NodeProcess, node_env: NodeEnv, anvil: AnvilNode, module_da: DAServerProcess,
          module_da_client: DAClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Real answers (completions and chat, two adapters), posted by the batcher, one rewards epoch published and
    past its challenge window, and the indexer serving the explorer."""
    d = node_env.deployment
    answers = [_ask(served_node.url, {"model": "ad-a", "prompt": f"Tell me about {w}", "max_tokens": 6, "seed": i},
                    "/v1/completions") for i, w in enumerate(("ledgers", "adapters", "rollups", "ducks"))]
    answers += [_ask(served_node.url, {"model": "ad-b", "max_tokens": 5, "seed": 7, "messages": [
        {"role": "user", "content": "Héllo, who pays for this answer?"}]}, "/v1/chat/completions")]
    run_batchers_until_final(anvil, module_da.url, [(node_env, None)])
    d.rewards.approve_and_deposit(d.token, d.node.address, 10**21, account=d.node)
    anvil.rpc("evm_mine")  # an epoch ends before the head block: its end block must hold the batches and the deposit
    rc = RewardsChain(d.deployment.bind(d.client), module_da_client)
    proposal = rc.publish(rc.compute(rc.plan()), account=d.accounts[2])
    latest = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", latest + 3601)  # past the challenge window
    anvil.rpc("evm_mine")
    root = tmp_path_factory.mktemp("explorer")
    idx = start_indexer(root, str(root / "index.db"), d.rpc_url, module_da.url,
                        node_env.root / "deployments" / f"{d.chain_id}.json")
    try:
        n_records = d.ledger.next_seq(d.node.address)
        wait_indexed(idx, n_records)
        payload = decode_payload(module_da_client.get(proposal.commitment))
        yield {"answers": answers, "indexer": idx, "payload": payload, "root": root, "records": n_records,
               "deployment": d, "da": module_da}
    finally:
        idx.proc.send_signal(signal.SIGTERM)
        try:
            idx.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            idx.proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    pg = context.new_page()
    pg.csp_errors = []
    pg.on("console", lambda m: pg.csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        yield pg
    finally:
        context.close()


def ready(page: Any) -> None:
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)


def shot(page: Any, name: str, at: str | None = None) -> None:
    """Screenshots for docs/explorer.md at desktop and phone width (only when LORALEDGER_EXPLORER_SHOTS is set),
    scrolled to the element `at` when given."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        if at:
            page.locator(at).evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(150)
        path = Path(SHOTS) / f"{name}-{label}.png"
        page.screenshot(path=str(path))
        if shutil.which("pngquant"):  # a palette of 64 colours keeps the docs' PNGs small (text and flat fills)
            subprocess.run(["pngquant", "--force", "--skip-if-larger", "--quality", "60-95", "64", "--output",
                            str(path), str(path)], check=False)
    page.set_viewport_size(DESKTOP)


def attribution(answer: dict[str, Any]) -> dict[str, Any]:
    att: dict[str, Any] = answer["response"]["attribution"]
    return att


def test_search_finds_the_record_of_a_real_answer(world: dict[str, Any], page: Any) -> None:
    idx: Indexer = world["indexer"]
    att = attribution(world["answers"][0])
    response = page.goto(idx.url + "/")
    ready(page)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "'unsafe" not in csp
    shot(page, "home")
    # by keyboard: Tab reaches the skip link, the home link, then the search box; Enter searches
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "q"
    page.keyboard.type(f"{att['node']}/{att['seq']}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/explorer/record/{att['node']}/{att['seq']}")
    ready(page)
    body = page.inner_text("main")
    assert f"Record {att['seq']} of node" in body
    assert att["record"]["ioHash"] in body and att["leaf"] in body
    assert page.locator(".badge.pass", has_text="ok").count() == 1
    proof = page.locator("ol.proof li").all_inner_texts()
    assert proof and all(p.startswith("0x") and len(p) == 66 for p in proof)
    shot(page, "record")
    page.click("main a[href^='/explorer/batch/']")
    ready(page)
    assert "Batch" in page.inner_text("h1")
    assert page.locator(f"main a[href='/explorer/record/{att['node']}/{att['seq']}']").count() == 1
    shot(page, "batch")
    # the search box takes a batch tx hash and an adapter id too, and says so when nothing matches
    batch = idx.get(f"/v1/records/{att['node']}/{att['seq']}")["batchId"]
    tx = idx.get(f"/v1/batches/{batch}")["txHash"]
    page.goto(f"{idx.url}/explorer/search?q={tx}")
    page.wait_for_url(f"**/explorer/batch/{batch}")
    page.goto(f"{idx.url}/explorer/search?q=0x{'ab' * 32}")
    ready(page)
    assert "Nothing found" in page.inner_text("h1")
    assert not page.csp_errors
    # the verify page may connect to an RPC the user chose, and to nothing else
    chosen = httpx.get(f"{idx.url}/explorer/verify", params={"rpc": "http://127.0.0.1:9"})
    assert "http://127.0.0.1:9" in chosen.headers["content-security-policy"].split("connect-src")[1].split(";")[0]
    # bad input: a 400 JSON naming the parameter
    bad = httpx.get(f"{idx.url}/v1/explorer/nodes/0x12")
    assert bad.status_code == 400 and "node" in bad.json()["error"]["message"]
    assert httpx.get(f"{idx.url}/v1/explorer/accounts/zz").status_code == 400


def _verify(page: Any, idx: Indexer, answer: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    page.goto(idx.url + "/explorer/verify")
    ready(page)
    page.fill("#answer", json.dumps(answer))
    page.click("#verify")
    page.wait_for_function("() => !/checking/.test(document.querySelector('#verdict').textContent)", timeout=60_000)
    items = page.locator("#checks li").all()
    return page.inner_text("#verdict"), [(li.locator(".badge").inner_text(), li.inner_text()) for li in items]


def test_a_saved_answer_verifies_in_the_browser(world: dict[str, Any], page: Any) -> None:
    idx: Indexer = world["indexer"]
    metrics_file = world["root"] / "verify-page-metrics.json"
    for answer in (world["answers"][0], world["answers"][-1]):  # a completion and a chat answer
        verdict, checks = _verify(page, idx, answer)
        assert verdict.startswith("VERIFIED"), (verdict, checks)
        assert len(checks) == 10 and all(mark == "PASS" for mark, _ in checks), checks
        assert "verifyRecord" in checks[8][1] and "= true" in checks[8][1]
    shot(page, "verify", at="#verify-form")
    # page weight and time to interactive of the verify page (cold load, cache off)
    context = page.context
    cold = context.browser.new_context(viewport=DESKTOP)
    p2 = cold.new_page()
    cdp = cold.new_cdp_session(p2)
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    p2.goto(idx.url + "/explorer/verify")
    ready(p2)
    m = p2.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource');
        const ready = performance.getEntriesByName('explorer-ready')[0];
        return {transferBytes: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0),
                decodedBytes: nav.decodedBodySize + res.reduce((a, r) => a + r.decodedBodySize, 0),
                requests: 1 + res.length, domContentLoadedMs: nav.domContentLoadedEventEnd,
                interactiveMs: ready ? ready.startTime : null};
    }""")
    cold.close()
    metrics_file.write_text(json.dumps(m))
    print(f"verify page: {m}")  # noqa: T201 - the figure docs/explorer.md reports
    assert m["interactiveMs"] is not None and m["requests"] >= 4 and m["transferBytes"] > 0
    assert not page.csp_errors


def test_one_changed_character_in_the_completion_fails_at_io_hash(world: dict[str, Any], page: Any) -> None:
    answer = json.loads(json.dumps(world["answers"][1]))
    choice = answer["response"]["choices"][0]
    text = choice["text"]
    choice["text"] = ("X" if text[:1] != "X" else "Y") + text[1:]
    verdict, checks = _verify(page, world["indexer"], answer)
    assert verdict.startswith("NOT VERIFIED")
    assert checks[0][0] == "FAIL" and "ioHash" in checks[0][1]
    assert all(mark == "PASS" for mark, _ in checks[1:4])  # the record, leaf and receipt are still the node's
    shot(page, "verify-fail", at="#verdict")


def _wallet(page: Any, anvil: AnvilNode, account: str, chain_id: int) -> None:
    """A test EIP-1193 provider: the page's `window.ethereum`, each request answered by anvil, whose dev account
    `account` is unlocked (anvil signs; the page holds no key)."""
    def rpc(method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [account]
        if method == "eth_chainId":
            return hex(chain_id)
        return anvil.rpc(method, *params)

    page.expose_function("__walletRpc", rpc)
    page.add_init_script("""window.ethereum = {isLoraledgerTest: true,
        request: ({method, params}) => window.__walletRpc(method, params || []), on() {}, removeListener() {}};""")


def test_a_contributor_claims_with_an_injected_wallet(world: dict[str, Any], page: Any, anvil: AnvilNode) -> None:
    idx: Indexer = world["indexer"]
    d = world["deployment"]
    who = d.accounts[CONTRIBUTOR].address
    payout = int(next(a["cumulative"] for a in world["payload"]["accounts"] if a["account"] == who))
    assert payout > 0 and d.rewards.claimed(who) == 0
    before = d.token.balance_of(who)

    wrong = page.context.browser.new_context(viewport=DESKTOP)
    wp = wrong.new_page()
    _wallet(wp, anvil, who, 1)
    wp.goto(idx.url + "/explorer/claim")
    ready(wp)
    wp.click("#connect")
    wp.wait_for_selector("#claim-status.fail")
    assert "Wrong network" in wp.inner_text("#claim-status")
    wrong.close()

    _wallet(page, anvil, who, d.chain_id)
    page.goto(idx.url + "/explorer/claim")
    ready(page)
    page.click("#connect")
    page.wait_for_selector("#claim:not([disabled])", timeout=30_000)
    symbol = idx.get("/v1/explorer/config")["token"]["symbol"]
    assert symbol in page.inner_text("#claimable")
    page.click("#claim")
    page.wait_for_function("() => /^Claimed/.test(document.querySelector('#claim-status').textContent)",
                           timeout=60_000)
    shot(page, "claim")
    assert d.token.balance_of(who) - before == payout
    assert d.rewards.claimed(who) == payout
    tx = page.inner_text("#claim-tx")
    assert tx.startswith("transaction 0x")
    # the page now shows the empty claim: nothing left, the button off
    assert page.locator("#claim[disabled]").count() == 1
    page.click("#connect")
    page.wait_for_function("() => /Nothing to claim/.test(document.querySelector('#claim-status').textContent)")
    # the account page agrees, with its earnings plot
    page.goto(f"{idx.url}/explorer/account/{who}")
    ready(page)
    bars = page.locator("svg.chart rect.bar")
    assert bars.count() >= 1 and float(bars.first.get_attribute("height") or 0) > 0
    shot(page, "account")


def test_plots_render_real_data(world: dict[str, Any], page: Any) -> None:
    idx: Indexer = world["indexer"]
    att = attribution(world["answers"][0])
    page.goto(f"{idx.url}/explorer/node/{att['node']}")
    ready(page)
    heights = [float(h or 0) for h in page.locator("svg.chart rect.bar").evaluate_all(
        "els => els.map(e => e.getAttribute('height'))")]
    assert sum(1 for h in heights if h > 0) >= 1
    hourly = idx.get(f"/v1/explorer/nodes/{att['node']}")["recordsPerHour"]
    assert sum(x["records"] for x in hourly) == world["records"]
    shot(page, "node")
    adapter = att["record"]["adapterId"]
    page.goto(f"{idx.url}/explorer/adapter/{adapter}")
    ready(page)
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    tokens_bars = charts.nth(0).locator("rect.bar").evaluate_all("els => els.map(e => +e.getAttribute('height'))")
    assert any(h > 0 for h in tokens_bars)
    epochs = idx.get(f"/v1/explorer/adapters/{adapter}")["epochs"]
    assert epochs[0]["epoch"] == "1" and epochs[0]["tokens"] > 0 and int(epochs[0]["earnings"]) > 0
    shot(page, "adapter")
    dataset = att["record"]["datasetIds"][0]
    page.goto(f"{idx.url}/explorer/dataset/{dataset}")
    ready(page)
    assert page.locator("svg.chart").count() == 2
    shot(page, "dataset")
    # an account's usage: the tokens of the records whose fees paid it, checked against the adapters' own plots
    d = world["deployment"]
    who = d.accounts[CONTRIBUTOR].address
    per_adapter = {}
    for ad in {attribution(a)["record"]["adapterId"] for a in world["answers"]}:
        got = idx.get(f"/v1/explorer/adapters/{ad}")
        contributors = {c for ds in got["state"]["datasetIds"]
                        for c in idx.get(f"/v1/explorer/datasets/{ds}")["state"]["contributors"]}
        tokens = next(e["tokens"] for e in got["epochs"] if e["epoch"] == "1")
        per_adapter[ad] = (tokens, who in contributors or got["state"]["owner"] == who)
    usage = {e["epoch"]: e["tokens"] for e in idx.get(f"/v1/explorer/accounts/{who}")["usage"]}
    assert usage["1"] == sum(t for t, paid in per_adapter.values() if paid) > 0
    node_usage = {e["epoch"]: e["tokens"] for e in idx.get(f"/v1/explorer/accounts/{d.node.address}")["usage"]}
    assert node_usage["1"] == sum(t for t, _ in per_adapter.values())  # the node served every record
    stranger = {e["epoch"]: e["tokens"] for e in idx.get(f"/v1/explorer/accounts/0x{'11' * 20}")["usage"]}
    assert stranger["1"] == 0 and not any(stranger.values())  # paid nothing: epoch 1 still shows, as a zero
    page.goto(f"{idx.url}/explorer/account/{who}")
    ready(page)
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    assert charts.nth(0).locator("title").first.text_content() == "Tokens per epoch"
    usage_bars = charts.nth(0).locator("rect.bar").evaluate_all("els => els.map(e => +e.getAttribute('height'))")
    assert any(h > 0 for h in usage_bars)
    assert f"1 {usage['1']}" in (charts.nth(0).get_attribute("aria-label") or "")
    # phone width: nothing wider than the screen
    page.set_viewport_size(PHONE)
    page.goto(f"{idx.url}/explorer/verify")
    ready(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert not page.csp_errors


def test_rewards_status_and_claim_print_token_units(world: dict[str, Any]) -> None:
    """The terminal's care: `rewards status|claim` tables print `0.000034 LLDEV`, `--json` keeps raw integers."""
    d = world["deployment"]
    operator = d.node.address  # dev account 1 earns the node's share
    payout = int(next(a["cumulative"] for a in world["payload"]["accounts"] if a["account"] == operator))
    deployment = world["root"] / "deployment.json"
    d.deployment.save(deployment)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    cli = [str(Path(sys.executable).with_name("loraledger")), "rewards"]
    where = ["--rpc-url", d.rpc_url, "--deployment", str(deployment), "--da-url", world["da"].url]

    def run(*args: str) -> str:
        p = subprocess.run([*cli, *args, *where], cwd=world["root"], env=env, capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout

    symbol = d.token.contract.functions.symbol().call()
    raw = json.loads(run("status", "--account", operator, "--json"))["account"]
    assert raw["claimable"] == str(payout)
    table = run("status", "--account", operator)
    units = format(Decimal(payout).scaleb(-18), "f").rstrip("0").rstrip(".")
    assert f"{units} {symbol}" in table and str(payout) not in table
    claimed = run("claim", "--dev-account", "1")
    assert f"{units} {symbol}" in claimed
    assert d.rewards.claimed(operator) == payout


def test_disputes_show_on_their_pages(world: dict[str, Any], page: Any, anvil: AnvilNode) -> None:
    """A watcher challenges the real node: an omission of a real answer's record (answered, by the node's process or
    by the watcher with the proof the indexer serves: anyone may) and an availability challenge on its batch. The
    disputes page lists both with their status; the batch page and the node page show them."""
    d, idx = world["deployment"], world["indexer"]
    disputes = d.deployment.bind(d.client).disputes
    assert disputes is not None
    att = attribution(world["answers"][1])
    indexed = idx.get(f"/v1/records/{att['node']}/{att['seq']}")
    batch_id = indexed["batchId"]
    watcher = d.accounts[6]
    record = Record.from_json(att["record"])
    asked = disputes.open_omission(record.abi_values(), bytes.fromhex(att["receipt"][2:]), batch_id, account=watcher)
    try:
        disputes.respond_omission(asked.dispute_id, indexed["proof"], account=watcher)
    except ContractRevert:  # the node's own process answered first (DisputesNotOpen)
        pass
    assert disputes.dispute(asked.dispute_id).status is DisputeStatus.ANSWERED
    chunk = disputes.open_availability(batch_id, 0, account=watcher)
    anvil.rpc("evm_mine")
    for _ in range(300):
        counts = idx.get("/v1/status")["disputes"]
        if sum(counts.values()) >= 2 and counts["answered"] >= 1:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the indexer did not index the disputes: {counts}")

    page.goto(f"{idx.url}/explorer/disputes")
    ready(page)
    rows = page.locator("table tbody tr")
    assert rows.count() == 2
    text = page.locator("main").inner_text()
    assert "omission" in text and "availability" in text and f"seq {att['seq']}" in text
    assert page.locator("tbody tr", has_text="omission").locator(".badge").inner_text() == "answered"
    assert page.locator("tbody tr", has_text="availability").locator(".badge").inner_text() in ("open", "answered")
    shot(page, "disputes")

    page.locator("tbody tr", has_text="omission").get_by_role("link", name=f"batch {batch_id}").click()
    page.wait_for_url(f"**/explorer/batch/{batch_id}")
    ready(page)
    table = page.get_by_role("region", name="Disputes", exact=True)
    assert table.locator("tbody tr").count() == 2
    shot(page, "batch-disputes", at="[aria-label='Disputes']")
    assert {int(x) for x in table.locator("tbody tr td:first-child").all_inner_texts()} == {asked.dispute_id,
                                                                                            chunk.dispute_id}
    assert "counts" in page.locator("dl.facts").inner_text()  # not unavailable: its records still earn
    page.goto(f"{idx.url}/explorer/node/{att['node']}")
    ready(page)
    node_text = page.locator("main").inner_text()
    assert "slashed in total" in node_text and re.search(r"[01] open, [12] answered, 0 upheld", node_text)
    assert page.get_by_role("region", name="Disputes against this node").locator("tbody tr").count() == 2
    assert not page.csp_errors


def test_the_explorer_answers_the_same_on_postgresql(world: dict[str, Any], request: pytest.FixtureRequest) -> None:
    """A second indexer on PostgreSQL serves the explorer's look-ups and plots with the same JSON as SQLite's."""
    cluster = request.getfixturevalue("postgres_cluster")
    d = world["deployment"]
    sqlite_idx: Indexer = world["indexer"]
    pg = start_indexer(world["root"], cluster.new_database(), d.rpc_url, world["da"].url,
                       d.deployment.save(world["root"] / "pg-deployment.json"))
    try:
        for _ in range(600):
            if pg.get("/v1/status") == sqlite_idx.get("/v1/status"):
                break
            time.sleep(0.2)
        att = attribution(world["answers"][0])
        record = att["record"]
        paths = ["/v1/status", "/v1/explorer/batches/1", f"/v1/explorer/nodes/{att['node']}",
                 f"/v1/explorer/adapters/{record['adapterId']}", f"/v1/explorer/datasets/{record['datasetIds'][0]}",
                 f"/v1/explorer/accounts/{d.accounts[CONTRIBUTOR].address}",
                 f"/v1/explorer/search?q={att['node']}/{att['seq']}", f"/v1/records/{att['node']}/{att['seq']}",
                 "/v1/explorer/disputes", "/v1/disputes"]
        for path in paths:
            assert pg.get(path) == sqlite_idx.get(path), path
        assert pg.get(paths[2])["recordsPerHour"]
    finally:
        pg.proc.send_signal(signal.SIGTERM)
        pg.proc.wait(timeout=30)
