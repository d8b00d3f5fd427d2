"""Byte-level requests to the real server (uvicorn + httptools), as `make run` serves the API.

What a test client cannot send: a Content-Length far larger than the bytes that follow, chunked
bodies with no end, header values with raw CR or non-ASCII bytes.
"""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.devstack import Service
from tests.conftest import mongo_uri, redis_url
from tests.processes import api_service, app_env, wait_ready

EVENT = json.dumps({"user_id": "u", "event_type": "click"}).encode()
TIMEOUT_S = 10


@pytest.fixture(scope="module")
def api_port(redis_server: Service, mongo_server: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    env = app_env(redis_url(redis_server), mongo_uri(mongo_server), STREAM_PREFIX="http-edges",
                  MONGO_DB="http_edges", INGEST_API_KEYS="edge-key")
    api = api_service(env, Path(tmp_path_factory.mktemp("http-edges")))
    api.start(ready_timeout_s=120)
    try:
        wait_ready(f"http://127.0.0.1:{api.port}")
        yield api.port
    finally:
        api.stop()


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one response (bounded in time), return status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-body"
            body += chunk
    return int(lines[0].split()[1]), headers, body


def post(path: str, headers: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode("latin-1") + body


def test_declared_length_over_the_limit_is_json_413_without_reading_the_body(api_port: int) -> None:
    # 5 MB announced, 1 KB sent: the answer must come at once, not after a wait for the rest.
    request = post("/log_event?key=edge-key", "Content-Type: application/json\r\nContent-Length: 5000000\r\n", b"x" * 1024)

    status, headers, body = exchange(api_port, request)

    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "request body is larger than 1048576 bytes", "limit_bytes": 1048576}


def test_declared_length_over_the_limit_wins_over_a_missing_key(api_port: int) -> None:
    status, _, body = exchange(api_port, post("/log_event", "Content-Length: 5000000\r\n", b"x"))

    assert status == 413
    assert json.loads(body)["limit_bytes"] == 1048576


def test_endless_chunked_body_is_cut_at_the_event_limit(api_port: int) -> None:
    chunks = b"".join(b"%x\r\n%s\r\n" % (8192, b"x" * 8192) for _ in range(10))  # 80 KiB, no final chunk
    request = post("/log_event?key=edge-key", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", chunks)

    status, _, body = exchange(api_port, request)

    assert status == 413
    assert json.loads(body) == {"error": "request body is larger than 65536 bytes", "limit_bytes": 65536}


def test_chunked_event_is_accepted(api_port: int) -> None:
    request = post("/log_event?key=edge-key", "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n",
                   b"%x\r\n%s\r\n0\r\n\r\n" % (len(EVENT), EVENT))

    status, _, body = exchange(api_port, request)

    assert status == 202
    assert json.loads(body)["status"] == "queued"


def test_unsafe_request_ids_are_replaced_not_echoed(api_port: int) -> None:
    request = post("/log_event?key=edge-key",
                   f"Content-Type: application/json\r\nX-Request-Id: \xff<script>\r\nContent-Length: {len(EVENT)}\r\n",
                   EVENT)

    status, headers, _ = exchange(api_port, request)

    assert status == 202
    assert len(headers["x-request-id"]) == 32 and headers["x-request-id"].isalnum()


def test_header_splitting_is_refused_by_the_server(api_port: int) -> None:
    # A bare CR inside a header value never reaches the app; the server answers 400 and closes.
    request = post("/log_event?key=edge-key", f"X-Request-Id: a\rSet-Cookie: x=1\r\nContent-Length: {len(EVENT)}\r\n",
                   EVENT)

    status, headers, _ = exchange(api_port, request)

    assert status == 400
    assert "set-cookie" not in headers


def test_trailing_slash_is_404_not_a_redirect_built_from_host(api_port: int) -> None:
    status, headers, body = exchange(api_port, post("/log_event/", "Content-Length: 0\r\n"))

    assert status == 404
    assert "location" not in headers
    assert json.loads(body) == {"error": "no such endpoint"}
