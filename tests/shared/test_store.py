"""Per-document write errors a real server cannot be made to return on demand, via a stub collection."""

import pytest
from pymongo.errors import BulkWriteError

from shared.store import DUPLICATE_KEY, Rejection, insert_idempotent


class _RefusingCollection:
    """Answers insert_many with the given per-document write errors, as MongoDB would."""

    def __init__(self, *codes: int) -> None:
        self.codes = codes

    async def insert_many(self, documents: list[dict], ordered: bool) -> None:
        errors = [{"index": i, "code": code, "errmsg": f"code {code}"} for i, code in enumerate(self.codes)]
        raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": [], "nInserted": 0})


async def test_duplicates_count_as_stored_and_other_refusals_are_returned() -> None:
    rejected = await insert_idempotent(_RefusingCollection(DUPLICATE_KEY, 121), [{"_id": 1}, {"_id": 2}])

    assert rejected == [Rejection(index=1, code=121, message="code 121")]


@pytest.mark.parametrize("code", [91, 11600, 10107, 112])  # shutting down, not primary, write conflict
async def test_transient_refusals_raise_so_the_batch_is_retried_not_dead_lettered(code: int) -> None:
    with pytest.raises(BulkWriteError):
        await insert_idempotent(_RefusingCollection(121, code), [{"_id": 1}, {"_id": 2}])
