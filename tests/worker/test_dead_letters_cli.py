"""`python -m worker dead-letters`: times as the exports write them, and a clear line when MongoDB is unreachable."""

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from pymongo import AsyncMongoClient

from scripts.devstack import free_port
from shared.settings import Settings
from worker.cli import run_dead_letters_cli


def test_list_writes_one_json_object_per_letter_with_utc_times(settings: Settings, capsys) -> None:  # noqa: ANN001
    async def run() -> int:
        mongo = AsyncMongoClient(settings.MONGODB_URI)
        await mongo[settings.MONGO_DB]["dead_letters"].insert_one(
            {"_id": "1-0", "kind": "event", "data": "{", "reason": "undecodable", "code": None,
             "failed_at": datetime(2026, 12, 4, 9, 0, 0, 250000, tzinfo=UTC)})
        await mongo.close()
        return await run_dead_letters_cli(settings, ["list"])

    assert asyncio.run(run()) == 0

    [letter] = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (letter["_id"], letter["failed_at"]) == ("1-0", "2026-12-04T09:00:00.250Z")


@pytest.mark.parametrize("action", ["list", "replay"])
def test_unreachable_mongodb_is_one_line_and_exit_1(settings: Settings, capsys, action: str) -> None:  # noqa: ANN001
    nowhere = settings.model_copy(update={"MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
                                          "MONGO_TIMEOUT_MS": 300})

    assert asyncio.run(run_dead_letters_cli(nowhere, [action])) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: MongoDB is unavailable") and "MONGODB_URI" in err and err.count("\n") == 1
