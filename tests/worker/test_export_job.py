import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pymongo import AsyncMongoClient, MongoClient

from shared.export_jobs import BUCKET, JOBS
from shared.settings import Settings
from tests.export_helpers import event, ids, insert, query
from tests.worker.export_jobs_helpers import FlakyBucket, interrupt_mid_write, refusing, run_jobs
from worker.jobs.export import delete_expired_exports


def submit(client: TestClient, headers: dict, **params: object) -> str:
    response = client.post("/exports", headers=headers, json=params)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def status(client: TestClient, headers: dict, job_id: str) -> dict:
    response = client.get(f"/exports/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def files_of(settings: Settings, job_id: str) -> tuple[list[str], dict[str, int]]:
    with MongoClient(settings.MONGODB_URI) as mongo:
        db = mongo[settings.MONGO_DB]
        files = [f["_id"] for f in db[f"{BUCKET}.files"].find({"metadata.job_id": job_id})]
        chunks = {attempt: db[f"{BUCKET}.chunks"].count_documents({"files_id": f"{job_id}-{attempt}"})
                  for attempt in (1, 2, 3)}
    return files, chunks


def test_export_job_completes_and_matches_the_streamed_export(client: TestClient, settings: Settings,
                                                              admin_headers: dict) -> None:
    insert(settings, event("e1", 0, extra_data={"a": "x,y"}), query("q1", 1), event("e2", 2, user_id="other"))
    job_id = submit(client, admin_headers, format="csv", user_id="u1", flatten=True)
    queued = status(client, admin_headers, job_id)
    assert (queued["state"], queued["records_written"], queued["params"]["user_id"]) == ("queued", 0, "u1")

    worker = run_jobs(settings)

    done = status(client, admin_headers, job_id)
    assert (worker.jobs_complete, done["state"], done["records_written"], done["errors"]) == (1, "done", 2, [])
    assert done["download_url"] == f"/exports/{job_id}/download"
    assert done["filename"].startswith("llm-export-") and done["filename"].endswith(".csv")
    download = client.get(done["download_url"], headers=admin_headers | {"Accept-Encoding": "identity"})
    streamed = client.get("/export_data", headers=admin_headers,
                          params={"format": "csv", "user_id": "u1", "flatten": "true"})
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["accept-ranges"] == "bytes"
    assert download.headers["content-disposition"] == f'attachment; filename="{done["filename"]}"'
    assert download.content == streamed.content
    assert int(download.headers["content-length"]) == done["bytes_written"] == len(download.content)
    assert files_of(settings, job_id)[0] == [f"{job_id}-1"]


def test_interrupted_job_is_retried_and_only_the_complete_file_is_done(client: TestClient, settings: Settings,
                                                                       admin_headers: dict) -> None:
    insert(settings, *[event(f"e{i:04d}", i, extra_data={"pad": "p" * 200}) for i in range(2000)])
    job_id = submit(client, admin_headers, format="ndjson")
    flaky: list[FlakyBucket] = []

    def factory(bucket, db):  # noqa: ANN001, ANN202
        flaky.append(FlakyBucket(bucket, db, fail_after=2))
        return flaky[0]

    worker = run_jobs(settings, factory)

    done = status(client, admin_headers, job_id)
    assert (worker.jobs_retried, worker.jobs_complete) == (1, 1)
    assert (done["state"], done["attempts"], done["records_written"]) == ("done", 2, 2000)
    assert [(e["attempt"], e["error"].split(":")[0]) for e in done["errors"]] == [(1, "AutoReconnect")]
    assert flaky[0].orphan_chunks[0] >= 1  # attempt 1 had flushed chunks when it died
    assert files_of(settings, job_id) == ([f"{job_id}-2"], {1: 0, 2: len(_chunks(settings, job_id)), 3: 0})
    body = client.get(f"/exports/{job_id}/download", headers=admin_headers).content
    lines = body.decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"e{i:04d}" for i in range(2000)]


def test_a_job_cut_off_by_worker_shutdown_runs_again_and_completes(client: TestClient, settings: Settings,
                                                                    admin_headers: dict) -> None:
    insert(settings, *[event(f"e{i:04d}", i, extra_data={"pad": "p" * 200}) for i in range(1500)])
    job_id = submit(client, admin_headers, format="json")

    stopped = asyncio.run(interrupt_mid_write(settings))
    interrupted = status(client, admin_headers, job_id)
    worker = run_jobs(settings)

    assert (stopped.jobs_retried, interrupted["state"], interrupted["attempts"]) == (1, "queued", 1)
    done = status(client, admin_headers, job_id)
    assert (worker.jobs_complete, done["state"], done["attempts"], done["records_written"]) == (1, "done", 2, 1500)
    assert [e["attempt"] for e in done["errors"]] == [1]
    assert "interrupted" in done["errors"][0]["error"]
    assert files_of(settings, job_id)[0] == [f"{job_id}-2"]
    records = client.get(f"/exports/{job_id}/download", headers=admin_headers).json()
    assert ids(records) == [f"e{i:04d}" for i in range(1500)]


def test_a_job_that_fails_for_good_is_marked_failed_and_leaves_no_file(client: TestClient, settings: Settings,
                                                                       admin_headers: dict) -> None:
    insert(settings, event("e1", 0))
    job_id = submit(client, admin_headers)

    worker = run_jobs(settings, refusing)

    failed = status(client, admin_headers, job_id)
    assert (worker.jobs_failed, failed["state"], failed["attempts"]) == (1, "failed", 1)
    assert failed["errors"][0]["error"].startswith("OperationFailure")
    assert "download_url" not in failed
    download = client.get(f"/exports/{job_id}/download", headers=admin_headers)
    assert download.status_code == 409
    assert download.json() == {"error": "the export is failed; download it once its state is done",
                               "state": "failed"}
    assert files_of(settings, job_id) == ([], {1: 0, 2: 0, 3: 0})


def test_expired_exports_are_deleted_with_their_files(client: TestClient, settings: Settings,
                                                      admin_headers: dict) -> None:
    insert(settings, event("e1", 0))
    job_id, kept = submit(client, admin_headers), submit(client, admin_headers)
    run_jobs(settings)
    with MongoClient(settings.MONGODB_URI) as mongo:
        mongo[settings.MONGO_DB][JOBS].update_one(
            {"_id": job_id}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})

    assert asyncio.run(_cleanup(settings)) == 1

    assert client.get(f"/exports/{job_id}", headers=admin_headers).status_code == 404
    assert files_of(settings, job_id) == ([], {1: 0, 2: 0, 3: 0})
    assert status(client, admin_headers, kept)["state"] == "done"


@pytest.mark.parametrize(("range_header", "status_code", "content_range", "part"), [
    ("bytes=0-9", 206, "bytes 0-9/{n}", slice(0, 10)),
    ("bytes=10-", 206, "bytes 10-{last}/{n}", slice(10, None)),
    ("bytes=-7", 206, "bytes {tail}-{last}/{n}", slice(-7, None)),
    ("bytes=5-100000", 206, "bytes 5-{last}/{n}", slice(5, None)),
    ("bytes=abc", 200, None, slice(None)),
    ("bytes=0-1,4-5", 200, None, slice(None)),
    ("items=0-1", 200, None, slice(None)),
])
def test_download_ranges(client: TestClient, settings: Settings, admin_headers: dict, range_header: str,
                         status_code: int, content_range: str | None, part: slice) -> None:
    insert(settings, *[event(f"e{i}", i) for i in range(5)])
    job_id = submit(client, admin_headers, format="ndjson")
    run_jobs(settings)
    url = f"/exports/{job_id}/download"
    whole = client.get(url, headers=admin_headers).content
    n = len(whole)

    response = client.get(url, headers=admin_headers | {"Range": range_header, "Accept-Encoding": "gzip"})

    assert response.status_code == status_code
    assert response.content == whole[part]
    if content_range:
        assert response.headers["content-range"] == content_range.format(n=n, last=n - 1, tail=n - 7)
        assert response.headers["content-length"] == str(len(whole[part]))
        assert "content-encoding" not in response.headers  # a byte range of the file, never re-encoded


def test_download_range_past_the_end_is_a_416(client: TestClient, settings: Settings, admin_headers: dict) -> None:
    insert(settings, event("e1", 0))
    job_id = submit(client, admin_headers, format="ndjson")
    run_jobs(settings)
    size = status(client, admin_headers, job_id)["bytes_written"]

    for header in (f"bytes={size}-", "bytes=-0"):
        response = client.get(f"/exports/{job_id}/download", headers=admin_headers | {"Range": header})
        assert response.status_code == 416
        assert response.headers["content-range"] == f"bytes */{size}"
        assert response.json() == {"error": f"range not satisfiable: the file has {size} bytes", "size": size}

    stale = client.get(f"/exports/{job_id}/download", headers=admin_headers | {"Range": "bytes=0-0",
                                                                               "If-Range": '"other"'})
    assert stale.status_code == 200  # If-Range names another file version: send the whole file


def test_jobs_apply_the_filters(client: TestClient, settings: Settings, admin_headers: dict) -> None:
    insert(settings, event("e1", 0), query("q1", 1))
    job_id = submit(client, admin_headers, type="query")
    run_jobs(settings)

    records = client.get(f"/exports/{job_id}/download", headers=admin_headers).json()

    assert ids(records) == ["q1"]


async def _cleanup(settings: Settings) -> int:
    mongo = AsyncMongoClient(settings.MONGODB_URI)
    try:
        return await delete_expired_exports({"db": mongo[settings.MONGO_DB]})
    finally:
        await mongo.close()


def _chunks(settings: Settings, job_id: str) -> list[dict]:
    with MongoClient(settings.MONGODB_URI) as mongo:
        return list(mongo[settings.MONGO_DB][f"{BUCKET}.chunks"].find({"files_id": f"{job_id}-2"}, {"n": 1}))
