// Claim with an injected EIP-1193 wallet: the page reads the claimable root and its rewards payload from the chain
// and DA, builds the proof itself (@openzeppelin/merkle-tree), and asks the wallet to send `claim`. It never sees a
// key: the wallet signs.
import { encodeFunctionData, formatUnits, getAddress, keccak256 } from "viem";
import { abis, daGet, publicClient } from "./chain.js";
import { standardLeaf, standardTree } from "./merkle.js";

export const REWARD_TYPES = ["uint256", "address", "address", "address", "uint256"];

export class ClaimError extends Error {}

/** What `account` can claim now: the current epoch, its payload, cumulative, claimed, claimable and the proof. */
export async function claimState(cfg, account) {
  const client = publicClient(cfg.rpcUrl);
  const dist = { address: cfg.distributor, abi: abis.RewardDistributor };
  const [epoch, root, claimed] = await Promise.all([
    client.readContract({ ...dist, functionName: "currentEpoch" }),
    client.readContract({ ...dist, functionName: "currentRoot" }),
    client.readContract({ ...dist, functionName: "claimed", args: [account] })]);
  const base = { epoch, root, claimed, cumulative: 0n, claimable: 0n, proof: null };
  if (epoch === 0n) return { ...base, note: "No root is claimable yet: the first epoch's challenge window has not ended." };
  const proposal = await client.readContract({ ...dist, functionName: "proposal", args: [epoch] });
  const event = abis.RewardDistributor.find((x) => x.type === "event" && x.name === "RootProposed");
  const logs = await client.getLogs({ address: cfg.distributor, event, args: { epoch }, fromBlock: BigInt(cfg.deployBlock),
    toBlock: "latest" });
  const log = logs.reverse().find((l) => keccak256(l.args.payloadCommitment) === proposal.payloadCommitmentHash);
  if (!log) throw new ClaimError(`no RootProposed event of epoch ${epoch} carries the committed payload`);
  const { payload, why } = await daGet(cfg.daUrl, log.args.payloadCommitment);
  if (!payload) throw new ClaimError(`the rewards payload of epoch ${epoch} is not on DA: ${why}`);
  const body = JSON.parse(new TextDecoder().decode(payload));
  const values = body.accounts.filter((a) => BigInt(a.cumulative) > 0n)
    .map((a) => [BigInt(body.chainId), getAddress(body.distributor), getAddress(a.account), getAddress(body.token), BigInt(a.cumulative)]);
  const tree = standardTree(values.map((v) => standardLeaf(REWARD_TYPES, v)));
  if (tree.root !== root || tree.root !== body.root) {
    throw new ClaimError(`stale root: the payload of epoch ${epoch} rebuilds ${tree.root}, but the claimable root ` +
      `is ${root}; reload the page (a new epoch may have become claimable)`);
  }
  const i = values.findIndex((v) => v[2] === getAddress(account));
  if (i < 0) return { ...base, note: `${account} has no cumulative amount in epoch ${epoch}: nothing to claim.` };
  const cumulative = values[i][4];
  return { ...base, cumulative, claimable: cumulative > claimed ? cumulative - claimed : 0n, proof: tree.proof(i) };
}

/** Send `claim(account, cumulative, root, proof)` through `wallet` (EIP-1193); returns the tx hash and receipt. */
export async function sendClaim(cfg, wallet, account, state) {
  if (state.claimable === 0n) {
    throw new ClaimError(`nothing to claim: cumulative ${state.cumulative}, already claimed ${state.claimed}`);
  }
  const client = publicClient(cfg.rpcUrl);
  const now = await client.readContract({ address: cfg.distributor, abi: abis.RewardDistributor, functionName: "currentRoot" });
  if (now !== state.root) throw new ClaimError("stale root: a new root became claimable since the proof was built; reload");
  const data = encodeFunctionData({ abi: abis.RewardDistributor, functionName: "claim",
    args: [account, state.cumulative, state.root, state.proof] });
  const hash = await wallet.request({ method: "eth_sendTransaction", params: [{ from: account, to: cfg.distributor, data }] });
  const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 500 });
  if (receipt.status !== "success") throw new ClaimError(`the claim transaction ${hash} reverted`);
  return { hash, receipt };
}

export async function tokenBalance(cfg, account) {
  const client = publicClient(cfg.rpcUrl);
  return client.readContract({ address: cfg.token.address, abi: abis.ERC20, functionName: "balanceOf", args: [account] });
}

export const units = (cfg, v) => `${formatUnits(BigInt(v), cfg.token.decimals)} ${cfg.token.symbol}`;
