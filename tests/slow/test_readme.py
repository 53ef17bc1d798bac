"""Every command the README shows, run as a user would run it, with what it must show.

A command added to the README's ``bash`` blocks fails `test_every_readme_command_is_run` until a
test here runs it (or the table of commands CI cannot run says why).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.sse import parse_sse

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SAMPLE = ROOT / "data" / "sample_catalog.jsonl"
MODELS_DIR = ROOT / "var" / "models"
README_URL = "localhost:8000"
README_KEY = "var/local-api-key"  # where the API keeps the key it made for this machine

# Commands CI cannot run as written, and what checks them instead.
NOT_RUN = {
    r"bash scripts/test\.sh": "the test command itself: .ci/run runs it",
    r"(\w+=\S+ )*docker compose .*": "no Docker daemon on the CI machine; the Dockerfile and "
    "docker-compose.yml are checked by tests/test_deployment.py",
}
# Commands run by the tests below, by the test that runs them.
RUN = {
    r"bash scripts/start\.sh": "api",
    r"curl .*": "api",
    r"shopguide index catalog\.jsonl( --prune)?": "index",
    r"shopguide adapt-reranker \S+ --out \S+": "reranker",
    r"shopguide export-reranker \S+": "reranker",
    r"SHOPGUIDE_RERANKER=\S+ (SHOPGUIDE_RERANKER_RUNTIME=\S+ )?shopguide serve": "reranker",
}


def readme_commands() -> list[str]:
    """The commands in the README's ``bash`` blocks: continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s{2,}#.*$", "", command).strip()
            command = re.sub(r"\s+", " ", command)
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def _commands(kind: str) -> list[str]:
    return [
        c
        for c in readme_commands()
        if any(re.fullmatch(p, c) and k == kind for p, k in RUN.items())
    ]


def test_every_readme_command_is_run() -> None:
    commands = readme_commands()
    assert len(commands) >= 10
    for command in commands:
        matched = [p for p in (*RUN, *NOT_RUN) if re.fullmatch(p, command)]
        assert len(matched) == 1, f"README command not run by any test: {command!r}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPGUIDE_")}
    env.update(
        SHOPGUIDE_DATA_DIR=str(data_dir),
        SHOPGUIDE_MODEL_DIR=str(MODELS_DIR),
        SHOPGUIDE_HOST="127.0.0.1",
        SHOPGUIDE_PORT=str(port),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    )
    return env


@dataclass
class Server:
    """A server started by a README command."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    @property
    def key_file(self) -> Path:
        """The admin key the server made on its first start."""
        return self.data_dir / "local-api-key"

    def get(self, path: str, *, key: bool = True) -> httpx.Response:
        headers = {}
        if key and path != "/health":
            headers["authorization"] = f"Bearer {self.key_file.read_text().strip()}"
        return httpx.get(self.url + path, timeout=30, headers=headers)

    def wait_until(self, ready: str, timeout_s: float) -> dict:
        """Poll /health until ``ready`` ('up': it answers; 'generator': the model is loaded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                health = self.get("/health")
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            body = health.json()
            if ready == "up" or body["generator"]["state"] == "ready":
                return body
            if body["generator"]["state"] == "failed":
                pytest.fail(f"the generator failed: {body['generator']}")
            time.sleep(1)
        pytest.fail(f"no {ready} server within {timeout_s} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    started: list[Server] = []

    def start(command: str, cwd: Path, **env: str) -> Server:
        port = _free_port()
        log = tmp_path / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=cwd,
                env=_env(tmp_path / "data", port, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(f"http://127.0.0.1:{port}", port, process, log, tmp_path / "data")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _curl(command: str, server: Server) -> str:
    result = subprocess.run(
        [
            "bash",
            "-c",
            command.replace(README_URL, f"127.0.0.1:{server.port}").replace(
                README_KEY, str(server.key_file)
            ),
        ],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout.decode()


def _check_curl(command: str, body: str) -> None:
    """What each README example must show."""
    if "/advice" in command:
        events = parse_sse(body)
        assert events[-1][0] == "final", events[-1]
        assert any(kind == "token" for kind, _ in events)
        answer = events[-1][1]
        assert answer["citations"], answer
        return
    data = json.loads(body)
    assert "error" not in data, (command, data)
    if "/ask" in command:
        assert not data["abstained"], data
        assert data["citations"] and data["claims"], data
    elif "/search" in command:
        assert data["results"], data
        if "under $100" in command:
            assert data["applied_constraints"] and all(r["price"] <= 100 for r in data["results"])
    elif "/products/" in command:
        assert data["product"]["id"] == command.rsplit("/", 1)[1]
    elif "/health" in command:
        assert data["status"] == "ok" and data["store"]["products"] > 0


def test_start_and_the_examples(start_server) -> None:  # type: ignore[no-untyped-def]
    """`bash scripts/start.sh`: search answers before the generator is loaded; then every
    curl example in the README answers as documented."""
    (start,) = [c for c in _commands("api") if c.startswith("bash")]
    server = start_server(start, ROOT)
    health = server.wait_until("up", timeout_s=300)
    assert health["store"]["products"] > 0
    assert server.get("/search?q=headphones", key=False).status_code == 401
    assert server.key_file.stat().st_mode & 0o077 == 0  # the key is the owner's only
    log = server.log.read_text()  # not a terminal: where the key is, not the key
    assert f"API key made for this machine (admin): in {server.key_file}" in log
    assert server.key_file.read_text().strip() not in log
    first = server.get("/search?q=headphones").json()
    assert first["results"]
    server.wait_until("generator", timeout_s=600)
    curls = [c for c in _commands("api") if c.startswith("curl")]
    assert len(curls) >= 6
    for command in curls:
        _check_curl(command, _curl(command, server))


def _project(tmp_path: Path) -> Path:
    """A folder laid out as the README's relative paths expect."""
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "data" / SAMPLE.name)
    shutil.copy(SAMPLE, folder / "catalog.jsonl")
    return folder


def _run(command: str, cwd: Path, tmp_path: Path, timeout_s: float = 600) -> str:
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=_env(tmp_path / "data", _free_port()),
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, (command, output[-3000:])
    return output


def test_index_commands(tmp_path: Path) -> None:
    project = _project(tmp_path)
    first, prune = _commands("index")
    lines = (project / "catalog.jsonl").read_text().splitlines()
    count = len(lines)
    assert re.search(
        rf"read {count}, indexed {count}, skipped 0, removed 0", _run(first, project, tmp_path)
    )
    (project / "catalog.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert "removed 1" in _run(prune, project, tmp_path)


def test_reranker_commands(tmp_path: Path, start_server) -> None:  # type: ignore[no-untyped-def]
    """Adapt a re-ranker to the sample catalog, export it, and serve it both ways."""
    project = _project(tmp_path)
    commands = _commands("reranker")
    for command in commands:
        if command.endswith("shopguide serve"):
            server = start_server(command, project, SHOPGUIDE_LLM_PRIME="false")
            server.wait_until("up", timeout_s=300)
            body = server.get("/search?q=noise%20cancelling%20headphones").json()
            assert body["reranked"] and body["results"], body
            assert body["results"][0]["why"]["rerank_score"] is not None
            server.stop()
        else:
            _run(command, project, tmp_path, timeout_s=1200)
    assert (project / "var" / "reranker" / "model.int8.onnx").is_file()
