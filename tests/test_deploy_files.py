"""docker compose cannot run here (no engine); check that its commands point at real entry points."""

import re
from pathlib import Path

import yaml


def compose(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "docker-compose.yml").read_text())


def module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"], command
    return command[2]


def test_app_services_run_the_real_entry_points(repo_root: Path) -> None:
    services = compose(repo_root)["services"]

    for name in ("api", "worker"):
        module = module_of(services[name]["command"])
        assert module == name
        assert (repo_root / module / "__main__.py").is_file()
        dockerfile = repo_root / services[name]["build"]["dockerfile"]
        cmd = re.search(r"^CMD (.+)$", dockerfile.read_text(), re.M)
        assert cmd and yaml.safe_load(cmd.group(1)) == services[name]["command"]


def test_dockerfiles_run_as_non_root_on_slim_python(repo_root: Path) -> None:
    for name in ("Dockerfile.api", "Dockerfile.worker"):
        text = (repo_root / name).read_text()
        assert text.startswith("#") and "FROM python:3.11-slim" in text
        assert re.search(r"^USER app$", text, re.M)
        assert "pip install -c constraints.txt ." in text
        for copied in re.findall(r"^COPY (\S+) ", text, re.M):
            assert (repo_root / copied).exists(), copied


def test_stores_are_durable_and_healthchecked(repo_root: Path) -> None:
    services = compose(repo_root)["services"]
    redis_command = " ".join(services["redis"]["command"])

    assert services["redis"]["image"].startswith("redis:7")
    assert "--appendonly yes" in redis_command and "--maxmemory-policy noeviction" in redis_command
    assert services["mongo"]["image"].startswith("mongo")
    assert any(v.endswith(":/data/db") for v in services["mongo"]["volumes"])
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        if name != "worker":
            assert "healthcheck" in service, name
    assert services["worker"]["depends_on"]["mongo"]["condition"] == "service_healthy"


def test_every_app_setting_is_documented(repo_root: Path) -> None:
    from shared.settings import Settings

    example = (repo_root / ".env.example").read_text()
    readme = (repo_root / "README.md").read_text()
    for name in Settings.model_fields:
        assert re.search(rf"^#? ?{name}=", example, re.M), f"{name} missing from .env.example"
        assert f"`{name}`" in readme, f"{name} missing from the README configuration table"
