// The claim page: connect an injected EIP-1193 wallet, see cumulative / claimed / claimable, claim.
import { getConfig } from "./api.js";
import { ClaimError, claimState, sendClaim, tokenBalance, units } from "./claim.js";
import { facts, h, link, mono } from "./dom.js";
import { getAddress } from "viem";

export async function claimPage() {
  const cfg = await getConfig();
  const status = h("p", { id: "claim-status", role: "status", class: "verdict" });
  const info = h("div", { id: "claim-info" });
  const say = (msg, cls = "") => { status.textContent = msg; status.className = `verdict ${cls}`; };
  let wallet, account, state;

  const refresh = async () => {
    say("reading the claimable root and its payload from the chain and DA…");
    state = await claimState(cfg, account);
    const balance = await tokenBalance(cfg, account);
    info.replaceChildren(facts([["account", link(`/explorer/account/${account}`, mono(account))], ["epoch", String(state.epoch)],
      ["cumulative", units(cfg, state.cumulative)], ["claimed", units(cfg, state.claimed)],
      ["claimable", h("strong", { id: "claimable" }, units(cfg, state.claimable))], ["balance", h("span", { id: "balance" }, units(cfg, balance))],
      ["proof", state.proof ? `${state.proof.length} nodes, built here from the epoch's payload on DA` : "—"]]),
    h("button", { id: "claim", type: "button", disabled: state.claimable === 0n, onclick: claim }, "Claim"));
    if (state.note) say(state.note, "wait");
    else if (state.claimable === 0n) say(`Nothing to claim: cumulative ${units(cfg, state.cumulative)}, all claimed.`, "wait");
    else say(`You can claim ${units(cfg, state.claimable)}.`, "pass");
  };

  const claim = async () => {
    try {
      say("waiting for your wallet to send the claim…");
      const { hash, receipt } = await sendClaim(cfg, wallet, account, state);
      const paid = state.claimable;
      await refresh();
      say(`Claimed ${units(cfg, paid)} in transaction ${hash} (block ${receipt.blockNumber}).`, "pass");
      info.append(h("p", { id: "claim-tx" }, "transaction ", mono(hash)));
    } catch (e) {
      say(e instanceof ClaimError ? e.message : `The claim failed: ${e.shortMessage ?? e.message}`, "fail");
    }
  };

  const connect = async () => {
    try {
      wallet = window.ethereum;
      if (!wallet?.request) {
        say("No wallet found: install or enable a browser wallet (EIP-1193, e.g. MetaMask) and reload.", "fail");
        return;
      }
      const accounts = await wallet.request({ method: "eth_requestAccounts" });
      if (!accounts?.length) { say("The wallet shared no account.", "fail"); return; }
      account = getAddress(accounts[0]);
      const chainId = BigInt(await wallet.request({ method: "eth_chainId" }));
      if (chainId !== BigInt(cfg.chainId)) {
        say(`Wrong network: your wallet is on chain ${chainId}, the rewards are on chain ${cfg.chainId}. Switch ` +
          "the wallet's network, then connect again.", "fail");
        return;
      }
      await refresh();
    } catch (e) {
      say(e instanceof ClaimError ? e.message : `Could not read the claim: ${e.shortMessage ?? e.message}`, "fail");
    }
  };

  return [h("h1", {}, "Claim rewards"),
    h("p", {}, "Connect your wallet. The page reads the claimable root from the RewardDistributor ", mono(cfg.distributor),
      " at ", mono(cfg.rpcUrl), ", fetches that epoch's rewards payload from DA, builds your proof and asks your wallet to " +
      "send the claim. The wallet signs; the page never holds a key."),
    h("button", { id: "connect", type: "button", onclick: connect }, "Connect wallet"), status, info];
}
