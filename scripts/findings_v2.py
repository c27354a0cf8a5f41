"""The Python-side findings of issue 21 (N6, N7, N8, high-s receipts) run against whichever `attribution` package is
first on the path: `scripts/findings_v2.sh` runs this once with the v2 tree (the commit before contracts v3) on
PYTHONPATH and once with HEAD. Each attack prints `attack works` or `refused`; nothing touches a chain (the deploy
findings call the deploy's own pre-transaction check, `check_roles`, which both versions run before any
transaction).

    PYTHONPATH=<tree> .venv/bin/python scripts/findings_v2.py
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable
from typing import Any

from eth_account import Account

import attribution
from attribution.chain.deploy import DeployConfig, check_roles, deploy_all
from attribution.hashing import keccak256
from attribution.records import Record
from attribution.records.payload import decode_batch, encode_batch
from attribution.records.receipt import recover_receipt_signer, sign_receipt
from attribution.rewards import EpochBatch, ScheduledRegistry, SharesSchedule, compute_rewards
from attribution.terms import AdapterTerms, DatasetTerms

# anvil's public dev account 1 (devnet only) signs the receipt; the rest are throwaway addresses
NODE_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
NODE = Account.from_key(NODE_KEY).address
LEDGER = bytes.fromhex("5FbDB2315678afecb367f032d93F642f64180aa3")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ROLES = {r: Account.from_key(keccak256(r.encode())).address for r in ("governance", "poster", "guardian", "treasury")}
DEPLOYER = Account.from_key(keccak256(b"deployer")).address


def _record(seq: int, adapter: bytes, datasets: tuple[bytes, ...], ts: int) -> Record:
    return Record(31337, LEDGER, bytes.fromhex(NODE[2:]), seq, keccak256(b"model"), adapter, datasets,
                  (10_000,) * len(datasets), 400, 600, ts, keccak256(b"io %d" % seq))


def high_s_receipt() -> tuple[bool, str]:
    """The second (n - s, flipped v) form of a valid receipt signature recovers the node too."""
    r = _record(0, bytes(32), (), 1_760_000_000)
    sig = sign_receipt(r, NODE_KEY)
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - sig[64],))  # 27 <-> 28
    try:
        signer = recover_receipt_signer(31337, LEDGER, NODE, 0, r.leaf(), high)
    except Exception as e:  # noqa: BLE001 - any refusal is the fixed behaviour
        return False, f"{type(e).__name__}: {str(e)[:90]}"
    return signer == NODE, f"the high-s form recovers {signer}"


def _epoch_batch(decoded: Any, records: list[Record], posted_at: int) -> Any:
    """The rule's input for one batch in whichever form this tree has: v2's flat `EpochBatch(batch_id, node,
    posted_at, verdict, decoded, first_seq, count)` or the later one holding a `PostedBatch`."""
    if "posted" not in {f.name for f in dataclasses.fields(EpochBatch)}:
        v2_epoch_batch: Any = EpochBatch  # typed as HEAD's class; this is the v2 tree's
        return v2_epoch_batch(1, NODE, posted_at, "ok", decoded, 0, len(records))
    from attribution.chain.batch import PostedBatch

    posted = PostedBatch(1, NODE, bytes(32), 0, len(records), bytes(32), min(r.timestamp for r in records),
                         max(r.timestamp for r in records), posted_at)
    return EpochBatch(posted, "ok", decoded)


def n6_priced_at_posted_at() -> tuple[bool, str]:
    """Records served before a price change, posted after it (a backlog held through a DA outage), are charged the
    new price."""
    adapter, dataset, owner = keccak256(b"adapter"), keccak256(b"dataset"), ROLES["governance"]
    change_at, cheap, capped = 1_760_003_600, 1_000_000, 10_000 * 10**18

    def owed(*prices: tuple[int, int]) -> int:
        reg = ScheduledRegistry()
        reg.set_dataset(dataset, 0, DatasetTerms((ROLES["treasury"],), (10_000,), dataset_id=dataset))
        for at, price in prices:
            reg.set_adapter(adapter, at, AdapterTerms(owner, price, (dataset,), (10_000,), adapter_id=adapter))
        records = [_record(i, adapter, (dataset,), change_at - 600 + i) for i in range(5)]  # served before
        decoded = decode_batch(encode_batch(31337, LEDGER, bytes.fromhex(NODE[2:]), 0, records))
        batch = _epoch_batch(decoded, records, change_at + 3600)  # posted an hour after the change
        res = compute_rewards([batch], reg, {NODE: 10**30}, SharesSchedule.fixed(2000, 3000), ROLES["treasury"])
        return int(res.nodes[NODE].owed)

    got, old, new = owed((0, cheap), (change_at, capped)), owed((0, cheap)), owed((0, capped))
    return got == new != old, f"backlog charged {got} (old price: {old}, new price: {new})"


def _config(**kw: object) -> DeployConfig:
    return DeployConfig(**{**ROLES, "unbonding_delay_s": 14 * 24 * 3600, "challenge_window_s": 3600, **kw})


def n7_deployer_keeps_mint() -> tuple[bool, str]:
    """A real-chain (chain 10) deploy without --token: the deploy goes ahead and mints a DevToken owned by the
    deployer's key."""
    try:
        check_roles(10, DEPLOYER, _config(token=None, timelock_delay_s=14 * 24 * 3600 + 3600))
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {str(e)[:90]}"
    line = next((ln.strip() for ln in inspect.getsource(deploy_all).splitlines() if 'deploy("DevToken"' in ln), "")
    return True, f"check_roles accepts it; deploy_all then runs `{line}`"


def n8_timelock_shorter_than_unbonding() -> tuple[bool, str]:
    """A real-chain deploy whose timelock delay (1 h) is far below the unbonding delay (14 days): governance can act
    before an honest node can leave."""
    try:
        check_roles(10, DEPLOYER, _config(token=ROLES["treasury"], timelock_delay_s=3600))
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {str(e)[:90]}"
    return True, "a 3600 s timelock delay with a 14-day unbonding delay is accepted"


ATTACKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "N6 usage priced at postedAt": n6_priced_at_posted_at,
    "N7 deployer keeps the mint key": n7_deployer_keeps_mint,
    "N8 timelock delay below unbonding": n8_timelock_shorter_than_unbonding,
    "high-s receipt accepted": high_s_receipt,
}


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "this tree"
    sys.stdout.write(f"attribution from {attribution.__file__.rsplit('/attribution/', 1)[0]}\n")
    for name, attack in ATTACKS.items():
        works, detail = attack()
        sys.stdout.write(f"{name}: {'attack works on ' + label if works else 'refused'} ({detail})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
