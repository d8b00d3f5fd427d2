"""Export jobs through the real processes: the API enqueues on Redis, the `python -m worker` process runs the job."""

import csv
import io
from collections.abc import Iterator

import httpx
import pytest

from tests.processes import wait_until
from tests.test_e2e import ADMIN, System


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System(tmp_path_factory.mktemp("e2e-export")).start()
    yield running
    running.stop()


def test_export_job_runs_in_the_worker_process(system: System) -> None:
    sent = [httpx.post(f"{system.url}/log_event", json={"user_id": "u", "event_type": "click", "extra_data": {"i": i}})
            .json()["id"] for i in range(5)]
    assert wait_until(lambda: set(sent) <= set(system.stored_ids()), timeout_s=10)

    job = httpx.post(f"{system.url}/exports", headers=ADMIN, json={"format": "csv", "flatten": True})
    assert job.status_code == 202
    status_url = f"{system.url}{job.json()['status_url']}"
    assert wait_until(lambda: httpx.get(status_url, headers=ADMIN).json()["state"] == "done", timeout_s=30)

    download = httpx.get(f"{system.url}/exports/{job.json()['job_id']}/download", headers=ADMIN)
    streamed = httpx.get(f"{system.url}/export_data", headers=ADMIN, params={"format": "csv", "flatten": "true"})
    assert download.content == streamed.content
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert sorted(r["id"] for r in rows) == sorted(sent)  # two posts in one millisecond are ordered by id
    assert [(r["timestamp"], r["id"]) for r in rows] == sorted((r["timestamp"], r["id"]) for r in rows)
    assert {r["id"]: r["extra_data.i"] for r in rows} == {record_id: str(i) for i, record_id in enumerate(sent)}
