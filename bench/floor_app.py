"""The floor: a bare ASGI route that does one XADD of the raw body and answers 202. No framework, no validation.

Served exactly like the API (uvicorn, uvloop, httptools, the same worker count), so ours/floor is
the price of FastAPI, validation and record building.
"""

import os

import uvicorn
from redis.asyncio import Redis

_HEADERS = [(b"content-type", b"application/json")]


class FloorApp:
    def __init__(self, redis_url: str, stream: str) -> None:
        self._redis_url = redis_url
        self._stream = stream
        self._redis: Redis | None = None

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await self._redis.xadd(self._stream, {"kind": b"event", "data": body})
        await send({"type": "http.response.start", "status": 202, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b'{"status":"queued"}'})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # api.main.create_redis_client's options: the same XADD, not a cheaper one. (Importing
                # api.main would import LiteLLM, which takes seconds.)
                self._redis = Redis.from_url(self._redis_url, socket_timeout=2, socket_connect_timeout=1,
                                             health_check_interval=10)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> FloorApp:
    return FloorApp(os.environ["REDIS_URL"], os.environ.get("FLOOR_STREAM", "floor:records"))


if __name__ == "__main__":
    uvicorn.run("bench.floor_app:create_app", factory=True, host="127.0.0.1", port=int(os.environ["API_PORT"]),
                workers=int(os.environ["API_WORKERS"]), loop="uvloop", http="httptools", access_log=False,
                log_level="warning")
