"""The naive baseline: the seed's literal design, one `insert_one` into MongoDB inside each request.

Served exactly like the API. Its client uses the driver's defaults, as the seed did.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from pymongo import AsyncMongoClient


class Event(BaseModel):
    user_id: str
    session_id: str | None = None
    event_type: str
    query: str | None = None
    target_url: str | None = None
    page_url: str | None = None
    extra_data: dict[str, Any] | None = None


def create_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = AsyncMongoClient(os.environ["MONGODB_URI"])
        app.state.events = client[os.environ.get("MONGO_DB", "naive")]["events"]
        yield
        await client.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/log_event")
    async def log_event(event: Event) -> dict[str, str]:
        document = {**event.model_dump(), "timestamp": datetime.now(UTC)}
        await app.state.events.insert_one(document)
        return {"status": "success", "id": str(document["_id"])}

    return app


if __name__ == "__main__":
    uvicorn.run("bench.naive_app:create_app", factory=True, host="127.0.0.1", port=int(os.environ["API_PORT"]),
                workers=int(os.environ["API_WORKERS"]), loop="uvloop", http="httptools", access_log=False,
                log_level="warning")
