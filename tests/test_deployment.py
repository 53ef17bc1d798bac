"""docker-compose runs the same servers, with the same settings, as the CI integration tests."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _services_script() -> str:
    return (ROOT / "scripts" / "services.sh").read_text()


def test_compose_runs_the_elasticsearch_version_ci_tests() -> None:
    image = _compose()["services"]["elasticsearch"]["image"]
    version = re.search(r"^ES_VERSION=(\S+)$", _services_script(), re.M)
    assert version is not None
    assert image == f"docker.elastic.co/elasticsearch/elasticsearch:{version.group(1)}"


def test_compose_elasticsearch_settings_match_ci() -> None:
    env = _compose()["services"]["elasticsearch"]["environment"]
    script = _services_script()
    assert env["discovery.type"] == "single-node" and "discovery.type: single-node" in script
    assert env["xpack.security.enabled"] == "false"
    assert "xpack.security.enabled: false" in script
    assert env["xpack.ml.enabled"] == "false" and "xpack.ml.enabled: false" in script
    assert env["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m" and "-Xms512m\\n-Xmx512m" in script


def test_compose_wires_the_api_to_both_servers_and_waits_for_the_indexer() -> None:
    services = _compose()["services"]
    api = services["api"]
    assert api["environment"]["SHOPGUIDE_STORE"] == "elasticsearch"
    assert api["environment"]["SHOPGUIDE_CACHE"] == "redis"
    assert api["depends_on"]["indexer"]["condition"] == "service_completed_successfully"
    assert services["indexer"]["environment"] == api["environment"]
    for name in ("elasticsearch", "redis"):
        assert "healthcheck" in services[name]
        assert "mem_limit" in services[name]


def test_compose_keeps_profiles_in_a_redis_that_persists_and_never_evicts() -> None:
    services = _compose()["services"]
    env = services["api"]["environment"]
    assert env["SHOPGUIDE_PROFILES"] == "redis"
    host = env["SHOPGUIDE_PROFILES_REDIS_URL"].split("//")[1].split(":")[0]
    command = services[host]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in services[host]["volumes"])
    assert services["api"]["depends_on"][host]["condition"] == "service_healthy"
