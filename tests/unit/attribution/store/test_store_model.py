"""Stateful property test: the record store against a plain-list model (appends, reopen, batches)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from attribution.records import Record
from attribution.store import BATCH_STATES, RecordStore
from tests.unit.attribution.factories import NODE, pending


class StoreModel(RuleBasedStateMachine):
    """Whatever the sequence of operations, the store holds exactly the model's records and batches."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="store-model-"))
        self.store = RecordStore(self.dir / "r.db", NODE)
        self.records: list[Record] = []
        self.batches: list[tuple[int, int, int, str]] = []  # (batch_id, first, count, state)

    @rule(n=st.integers(1, 5), tokens=st.integers(0, 2**32 - 1), many=st.booleans())
    def append(self, n: int, tokens: int, many: bool) -> None:
        recs = [pending(prompt_tokens=tokens) for _ in range(n)]
        seqs = self.store.append_many(recs) if many else [self.store.append(r) for r in recs]
        assert seqs == list(range(len(self.records), len(self.records) + n))
        self.records.extend(r.with_seq(s) for r, s in zip(recs, seqs, strict=True))

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = RecordStore(self.dir / "r.db", NODE)

    @precondition(lambda self: len(self.records) > (self.batches[-1][1] + self.batches[-1][2] if self.batches else 0))
    @rule(data=st.data())
    def seal(self, data: st.DataObject) -> None:
        first = self.batches[-1][1] + self.batches[-1][2] if self.batches else 0
        count = data.draw(st.integers(1, len(self.records) - first))
        b = self.store.create_batch(first, count, root=bytes(32))
        self.batches.append((b.batch_id, first, count, "sealed"))

    @precondition(lambda self: bool(self.batches))
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        k = data.draw(st.integers(0, len(self.batches) - 1))
        bid, first, count, state = self.batches[k]
        nxt = BATCH_STATES[min(BATCH_STATES.index(state) + 1, len(BATCH_STATES) - 1)]
        assert self.store.set_batch_state(bid, nxt).state == nxt
        self.batches[k] = (bid, first, count, nxt)

    @invariant()
    def matches_model(self) -> None:
        assert self.store.next_seq() == len(self.records)
        assert self.store.range(0, len(self.records) + 1) == self.records
        for bid, first, count, state in self.batches:
            b = self.store.batch_of(first + count - 1)
            assert b is not None and (b.batch_id, b.first_seq, b.count, b.state) == (bid, first, count, state)
        end = self.batches[-1][1] + self.batches[-1][2] if self.batches else 0
        assert self.store.batch_of(end) is None

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
