"""Several API worker processes: the refusal without shared state, and two workers serving."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.api.server import server_config
from app.cli import main
from app.settings import Settings
from benchmarks.servers import OwnRedis, free_port


def test_one_worker_is_the_default_and_needs_nothing_shared() -> None:
    settings = Settings(cache="memory")
    assert settings.workers == 1
    assert settings.shared_state_problems() == []


def test_several_workers_without_redis_are_refused_saying_what_to_set() -> None:
    with pytest.raises(ValueError, match="SHOPGUIDE_CACHE=redis") as refused:
        Settings(workers=2, cache="memory")
    assert "conversation" in str(refused.value)
    assert "erasing a shopper" in str(refused.value)
    with pytest.raises(ValueError, match="SHOPGUIDE_CACHE=redis"):
        Settings(workers=2, cache="none", rate_limit_backend="redis")


def test_several_workers_need_shared_rate_limits_unless_unlimited() -> None:
    assert Settings(workers=3, cache="redis").rate_limit_store == "redis"
    with pytest.raises(ValueError, match="up to 3 times"):
        Settings(workers=3, cache="redis", rate_limit_backend="memory")
    unlimited = Settings(
        workers=3,
        cache="redis",
        rate_limit_backend="memory",
        rate_limit_search_per_minute=0,
        rate_limit_answers_per_minute=0,
    )
    assert unlimited.workers == 3
    # profiles in files are shared by the workers (a lock file serialises them)
    assert Settings(workers=2, cache="redis", profiles="file").shared_state_problems() == []


def test_several_workers_count_trending_and_pairs_in_redis_even_with_file_profiles() -> None:
    from app.services import build_pair_counts, build_trending_counts
    from recommendation.stores.memory import MemoryPairCounts, MemoryTrendingStore
    from recommendation.stores.redis import RedisPairCounts, RedisTrendingStore

    url = "redis://127.0.0.1:1/0"  # never connected to here
    shared = Settings(workers=2, cache="redis", redis_url=url, profiles="file")
    assert isinstance(build_trending_counts(shared), RedisTrendingStore)
    assert isinstance(build_pair_counts(shared), RedisPairCounts)
    alone = Settings(workers=1, cache="redis", redis_url=url, profiles="file")
    assert isinstance(build_trending_counts(alone), MemoryTrendingStore)
    assert isinstance(build_pair_counts(alone), MemoryPairCounts)


def test_the_command_refuses_workers_without_redis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPGUIDE_CACHE", "memory")
    monkeypatch.delenv("SHOPGUIDE_WORKERS", raising=False)
    assert main(["serve", "--workers", "2"]) == 2
    out = capsys.readouterr().out
    assert "configuration error" in out and "SHOPGUIDE_WORKERS=2 needs shared state" in out
    assert "SHOPGUIDE_CACHE=redis" in out


def test_several_workers_are_served_from_the_factory() -> None:
    config = server_config("app.api.server:worker_app", "127.0.0.1", 8000, workers=4)
    assert (config.workers, config.factory, config.app) == (4, True, "app.api.server:worker_app")
    assert config.http == "h11"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_two_workers_serve_on_one_port(tmp_path: Path) -> None:
    redis = OwnRedis(tmp_path)
    redis.start()
    port = free_port()
    env = {
        **os.environ,
        "SHOPGUIDE_DATA_DIR": str(tmp_path / "data"),
        "SHOPGUIDE_EMBEDDER": "hashing-256",
        "SHOPGUIDE_CACHE": "redis",
        "SHOPGUIDE_REDIS_URL": redis.url,
        "SHOPGUIDE_PORT": str(port),
        "SHOPGUIDE_LLM_BACKEND": "openai",  # never called by /health
        "SHOPGUIDE_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "SHOPGUIDE_LLM_PRIME": "false",
        "SHOPGUIDE_LOG_JSON": "true",
        "SHOPGUIDE_LOG_LEVEL": "INFO",
    }
    env.pop("SHOPGUIDE_WORKERS", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--workers", "2"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/health"
    try:
        deadline = time.monotonic() + 120
        ready: set[int] = set()
        while len(ready) < 2:
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8", errors="replace")
            time.sleep(0.5)
            ready = _pids(log, "worker ready")
        assert process.pid not in ready  # the supervisor serves nothing itself

        def health(_: int) -> int:  # a new connection each: the workers share the accepts
            return httpx.get(url, timeout=10).status_code

        served: set[int] = set()
        with ThreadPoolExecutor(8) as pool:
            while served != ready and time.monotonic() < deadline:
                assert set(pool.map(health, range(40))) == {200}
                time.sleep(0.3)  # the request lines are written after the responses
                served = _pids(log, "request")
        assert served == ready
    finally:
        process.terminate()  # SIGTERM: the supervisor stops its workers
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            redis.stop()
    time.sleep(0.5)
    for pid in ready:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"worker {pid} left running"


def _pids(log: Path, message: str) -> set[int]:
    pids = set()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == message and "pid" in entry:
            pids.add(int(entry["pid"]))
    return pids


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
