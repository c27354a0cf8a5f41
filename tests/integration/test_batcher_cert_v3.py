"""A batch dispersed under a DA certificate v2 before the upgrade is put again before it is posted: the ledger gets a
certificate v3, whose chunks can answer an availability challenge (docs/da.md "Version 2 certificates")."""

from __future__ import annotations

import os
import time
from pathlib import Path

from attribution.batcher import Batcher, BatcherConfig
from attribution.chain.artifacts import ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.contracts import Ledger
from attribution.chain.txmgr import TxManager, TxMgrConfig
from attribution.da.client import DAClient
from attribution.da.codec import CERT_V2, Certificate, parse_commitment
from attribution.devnet.processes import free_port
from attribution.hashing import keccak256
from attribution.records import PendingRecord
from attribution.store import RecordStore
from tests.fixtures.chain import deploy_fixture_contracts, start_anvil, stop_process
from tests.fixtures.da import DAServerFactory


def test_a_batch_dispersed_under_v2_is_posted_with_v3(tmp_path: Path, forge_artifacts: ArtifactStore,
                                                      da_server_factory: DAServerFactory) -> None:
    anvil = start_anvil(port=free_port())
    try:
        d = deploy_fixture_contracts(anvil, forge_artifacts)
        da = da_server_factory.start(kzg=False)
        now = int(anvil.w3.eth.get_block("latest")["timestamp"])
        with RecordStore(tmp_path / "records.db", bytes.fromhex(d.node.address[2:])) as store:
            store.append_many([PendingRecord(d.chain_id, bytes.fromhex(d.ledger.address[2:]),
                                             bytes.fromhex(d.node.address[2:]), b"\x01" * 32, b"\x00" * 32, (), (),
                                             10, 20, now, os.urandom(32)) for _ in range(3)])
            client = ChainClient(anvil.rpc_url, d.node)
            batcher = Batcher(store, DAClient(da.url, max_retries=1, backoff=0.05),
                              Ledger(client, d.ledger.address, d.ledger.abi),
                              TxManager(client, d.node, TxMgrConfig(resubmit_after_s=1.0)),
                              BatcherConfig(seal_interval_s=0.05, seal_min_records=1, confirmations=1,
                                            poll_interval_s=0.05, start_block=d.deployment.deploy_block))
            batcher.seal(force=True)
            (b,) = store.batches()
            payload = store.batch_payload(b.batch_id)
            assert payload is not None
            v2 = Certificate(payload_keccak=keccak256(payload), payload_length=len(payload),
                             kzg_commitments_hash=bytes(32), blob_count=0, da_sequence=0, stored_at=now,
                             version=CERT_V2).commitment()
            store.set_batch_state(b.batch_id, "dispersed", commitment=v2)  # what an older DA server returned
            deadline = time.monotonic() + 60
            while store.batches()[0].state != "final":
                assert time.monotonic() < deadline, batcher.status()
                batcher.run_once()
                anvil.rpc("evm_mine")
            (posted,) = d.ledger.batch_posted_events(from_block=d.deployment.deploy_block, node=d.node.address)
            cert = parse_commitment(bytes(posted["daCommitment"]))
            assert cert.version == 3 and cert.resolvable and cert.payload_keccak == keccak256(payload)
            assert store.batches()[0].commitment == bytes(posted["daCommitment"])
            batcher.da.close()
    finally:
        stop_process(anvil.proc)
