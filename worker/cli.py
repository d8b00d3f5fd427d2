"""`python -m worker dead-letters list|replay`: inspect records MongoDB refused, and retry them after a fix."""

import argparse
import sys

import orjson
from pymongo.errors import PyMongoError

from shared.export import iso_ms
from shared.mongo import create_mongo_client
from shared.settings import Settings
from worker.dead_letters import list_dead_letters, replay_dead_letters


async def run_dead_letters_cli(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker dead-letters")
    parser.add_argument("action", choices=["list", "replay"])
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    mongo = create_mongo_client(settings)
    db = mongo[settings.MONGO_DB]
    try:
        if args.action == "list":
            for letter in await list_dead_letters(db, args.limit):
                letter["failed_at"] = iso_ms(letter["failed_at"])  # MongoDB gives back naive UTC
                sys.stdout.buffer.write(orjson.dumps(letter, default=str) + b"\n")
            return 0
        stored, failing = await replay_dead_letters(db, args.limit)
        sys.stdout.write(orjson.dumps({"stored": stored, "still_failing": failing}).decode() + "\n")
        return 0 if failing == 0 else 1
    except PyMongoError as exc:
        sys.stderr.write(f"error: MongoDB is unavailable ({type(exc).__name__}); check MONGODB_URI "
                         f"(now {settings.MONGODB_URI.split('@')[-1]})\n")
        return 1
    finally:
        await mongo.close()
