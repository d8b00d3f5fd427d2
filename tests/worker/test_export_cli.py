import io
import subprocess
import sys

from fastapi.testclient import TestClient

from shared.settings import Settings
from tests.export_helpers import event, insert, query
from tests.processes import REPO_ROOT, os_env_without_app_settings
from worker.progress import ProgressBar


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = os_env_without_app_settings() | {
        "MONGODB_URI": settings.MONGODB_URI, "MONGO_DB": settings.MONGO_DB, "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO_ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    return subprocess.run([sys.executable, "-m", "worker", "export", *args], capture_output=True, env=env,
                          cwd=REPO_ROOT, timeout=120, check=False)


def test_cli_writes_the_same_file_as_the_api(client: TestClient, settings: Settings, admin_headers: dict) -> None:
    insert(settings, event("e1", 0, extra_data={"k": "a,\"b\"\n"}), query("q1", 1000), event("e2", 2000))
    args = {"format": "csv", "since": "2025-03-01T12:00:00.500Z", "flatten": "true"}

    done = run_cli(settings, "--format", "csv", "--since", "2025-03-01T12:00:00.500Z", "--flatten")

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == client.get("/export_data", headers=admin_headers, params=args).content
    assert done.stdout.decode().splitlines()[1].split(",")[:2] == ["query", "q1"]
    assert b"\r" not in done.stderr  # no progress bar when stderr is not a terminal


def test_cli_output_file_and_filters(client: TestClient, settings: Settings, admin_headers: dict, tmp_path) -> None:  # noqa: ANN001
    insert(settings, event("e1", 0, event_type="click"), event("e2", 1, event_type="hover"), query("q1", 2))
    target = tmp_path / "out.ndjson"

    done = run_cli(settings, "--format", "ndjson", "--event-type", "hover", "--event-type", "click", "-o", str(target))

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""
    assert target.read_bytes() == client.get("/export_data", headers=admin_headers, params=[
        ("format", "ndjson"), ("event_type", "hover"), ("event_type", "click")]).content


def test_cli_refuses_bad_arguments(settings: Settings) -> None:
    done = run_cli(settings, "--since", "not-a-date", "--user-id", "")

    assert done.returncode == 2
    assert b"since" in done.stderr and b"user_id" in done.stderr
    assert done.stdout == b""


def test_progress_bar_draws_counts_and_share() -> None:
    stream = io.StringIO()
    bar = ProgressBar(200, stream)

    bar.update(50, force=True)
    bar.finish(200)

    lines = stream.getvalue().split("\r")
    assert "50/200 records  25%" in lines[1]
    assert "200/200 records 100%" in lines[2]
    assert stream.getvalue().endswith("\n")
