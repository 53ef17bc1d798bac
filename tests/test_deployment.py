"""Deployment: docker-compose runs the same servers, with the same settings, as the CI
integration tests, keeps them off the host and behind passwords, and the Docker image holds every
package the app imports and runs it as an unprivileged user. The compose files, the Dockerfile and
.dockerignore are read as text: no Docker needed."""

import ast
import fnmatch
import functools
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


class MissingVariable(Exception):
    """A variable that compose requires (``${NAME:?message}``) is unset or empty."""


# $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` (a parsed compose file or part of one) with variables substituted from
    ``env`` as `docker compose` does; `MissingVariable` for a required one that is missing."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and missing:
            return arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def required_variables(value: Any) -> set[str]:
    """The variables that ``value`` requires (``${NAME:?...}`` or ``${NAME?...}``)."""
    if isinstance(value, dict):
        return set().union(*(required_variables(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(required_variables(v) for v in value))
    if not isinstance(value, str):
        return set()
    return {m.group("braced") for m in _VARIABLE.finditer(value) if m.group("op") in (":?", "?")}


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
    url = interpolate(env["SHOPGUIDE_PROFILES_REDIS_URL"], _PASSWORDS)
    host = urlsplit(url).hostname
    assert host in services, f"{url}: no service {host!r}"
    command = services[host]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in services[host]["volumes"])
    assert services["api"]["depends_on"][host]["condition"] == "service_healthy"


# The stack's hardening: back-end servers off the host and behind passwords, the API confined.

_BACKEND = ("elasticsearch", "redis", "profiles")
# Redis URL settings of the app and the password variable each must carry.
_REDIS_URLS = {
    "SHOPGUIDE_PROFILES_REDIS_URL": "SHOPGUIDE_PROFILES_REDIS_PASSWORD",
    "SHOPGUIDE_REDIS_URL": "SHOPGUIDE_REDIS_PASSWORD",
}
_PASSWORDS = {name: f"pw-{name.lower()}-0123abcd" for name in _REDIS_URLS.values()}


def _networks(service: dict) -> set[str]:
    """The networks a service joins (list or mapping form); compose's `default` when none."""
    networks = service.get("networks")
    return set(networks) if networks else {"default"}


def _internal(compose: dict, network: str) -> bool:
    return bool(((compose.get("networks") or {}).get(network) or {}).get("internal"))


def _redis_service_of(setting: str) -> tuple[str, str]:
    """The service an API Redis URL setting points at, and the password in that URL."""
    env = interpolate(_compose()["services"]["api"]["environment"], _PASSWORDS)
    pool = redis.Redis.from_url(env[setting]).connection_pool.connection_kwargs
    return str(pool["host"]), str(pool.get("password"))


def test_compose_interpolation_follows_docker_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("a${SET}b$SET $$SET", env) == "axbx $SET"
    assert interpolate("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "d d  d"
    assert interpolate(["${SET:?msg}", {"k": "${SET?m}"}], env) == ["x", {"k": "x"}]
    for text in ("${UNSET:?set it}", "${EMPTY:?set it}", "${UNSET?set it}"):
        try:
            interpolate(text, env)
        except MissingVariable:
            continue
        raise AssertionError(f"{text} must fail without its variable")
    assert interpolate("${EMPTY?m}", env) == ""
    assert required_variables(["${A:?x}", {"k": "${B?y} ${C:-z} $D"}]) == {"A", "B"}


def test_only_the_api_publishes_a_port_and_only_on_loopback() -> None:
    services = _compose()["services"]
    publishing = {name for name, s in services.items() if s.get("ports")}
    assert publishing == {"api"}, (
        f"{sorted(publishing - {'api'})} publish ports: only the API may; put debugging ports "
        "in docker-compose.ports.yml"
    )
    for port in services["api"]["ports"]:
        assert str(port).startswith("127.0.0.1:"), f"{port}: publish the API on 127.0.0.1 only"


def test_back_end_servers_are_only_on_an_internal_network() -> None:
    compose = _compose()
    services = compose["services"]
    for name in (*_BACKEND, "indexer"):
        networks = _networks(services[name])
        outside = {n for n in networks if not _internal(compose, n)}
        assert not outside, (
            f"{name} joins {sorted(outside)}: put it on an `internal: true` network only"
        )
    api = _networks(services["api"])
    backend = _networks(services["elasticsearch"])
    assert api & backend, "the API must share the back end's network to reach its servers"
    assert any(not _internal(compose, n) for n in api), (
        "the API needs a network that is not internal too: ports on internal ones are not published"
    )
    for name in _BACKEND:
        assert not services[name].get("network_mode"), f"{name}: no network_mode (host) here"


def test_the_ports_override_publishes_back_end_ports_on_loopback_only() -> None:
    base, extra = _compose(), _compose("docker-compose.ports.yml")
    networks = base.get("networks") or {}
    assert extra["services"], "docker-compose.ports.yml publishes the back-end servers' ports"
    for name, service in extra["services"].items():
        assert name in base["services"], f"docker-compose.ports.yml: no service {name!r}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}: publish on 127.0.0.1"
        joined = _networks(base["services"][name]) | _networks(service)
        assert all(n in networks for n in joined), f"{name}: joins an undeclared network"
        assert any(not _internal(base, n) for n in joined), (
            f"{name}: Docker publishes no port of a container only on internal networks"
        )
    for network, spec in (extra.get("networks") or {}).items():
        assert not _internal(base, network) or (spec or {}).get("internal", True), (
            f"docker-compose.ports.yml must not make {network} (internal) reach out"
        )


def test_redis_servers_require_a_password_from_a_required_variable() -> None:
    services = _compose()["services"]
    for setting, variable in _REDIS_URLS.items():
        host, password = _redis_service_of(setting)
        assert host in services, f"{setting} points at {host!r}, which is not a service"
        command = services[host]["command"]
        assert "--requirepass" in command, f"{host}: add --requirepass ${{{variable}:?...}}"
        value = command[command.index("--requirepass") + 1]
        assert required_variables(value) == {variable} and value.startswith("${"), (
            f"{host}: --requirepass must be ${{{variable}:?set it in .env}} (compose then refuses "
            f"to start without it), not {value!r}"
        )
        assert interpolate(value, _PASSWORDS) == password == _PASSWORDS[variable], (
            f"{setting} must carry the password: redis://:${{{variable}:?...}}@{host}:6379/0"
        )
        try:
            interpolate(services[host], {})
        except MissingVariable:
            pass
        else:
            raise AssertionError(f"{host}: `docker compose up` must refuse an unset {variable}")


def test_the_profiles_url_carries_the_profiles_password() -> None:
    host, password = _redis_service_of("SHOPGUIDE_PROFILES_REDIS_URL")
    assert host == "profiles" and password == _PASSWORDS["SHOPGUIDE_PROFILES_REDIS_PASSWORD"]
    indexer = _compose()["services"]["indexer"]["environment"]
    assert interpolate(indexer, _PASSWORDS) == interpolate(
        _compose()["services"]["api"]["environment"], _PASSWORDS
    )


def test_redis_healthchecks_authenticate() -> None:
    services = _compose()["services"]
    for setting in _REDIS_URLS:
        host, password = _redis_service_of(setting)
        service = interpolate(services[host], _PASSWORDS)
        test = service["healthcheck"]["test"]
        text = test if isinstance(test, str) else " ".join(test[1:])
        assert "redis-cli" in text and "PONG" in text, (
            f"{host}: the healthcheck must check that redis-cli gets PONG (with a password, an "
            "unauthenticated ping answers NOAUTH, and redis-cli may still exit 0)"
        )
        env = service.get("environment") or {}
        if isinstance(env, list):  # the list form: NAME=value
            env = dict(item.partition("=")[::2] for item in env)
        via_env = env.get("REDISCLI_AUTH") == password
        flag = re.search(r"(?:^|\s)-a\s+[\"']?([^\s\"']+)", text)  # -a PASSWORD or -a "$VAR"
        given = flag.group(1) if flag else None
        via_flag = given is not None and password in (given, env.get(given.strip("${}")))
        assert via_env or via_flag, (
            f"{host}: the healthcheck must authenticate: set REDISCLI_AUTH to the password in "
            "the service's environment, or use redis-cli -a"
        )


def test_the_shopguide_containers_are_confined() -> None:
    services = _compose()["services"]
    env = _env()
    data = env["SHOPGUIDE_DATA_DIR"]
    for name in ("api", "indexer"):
        service = services[name]
        assert str(service.get("user", "")).split(":")[0] in {_image_user(), "10001"}, (
            f"{name}: set `user:` to the image's unprivileged user ({_image_user()})"
        )
        assert "no-new-privileges:true" in service.get("security_opt", []), (
            f"{name}: add security_opt: [no-new-privileges:true]"
        )
        assert [c.upper() for c in service.get("cap_drop", [])] == ["ALL"], (
            f"{name}: add cap_drop: [ALL]"
        )
        assert service.get("read_only") is True, f"{name}: read_only: true"
        assert any(str(t).split(":")[0] == "/tmp" for t in service.get("tmpfs", [])), (
            f"{name}: a read-only root needs a tmpfs at /tmp"
        )
        assert not service.get("privileged") and not service.get("cap_add"), name
    api_mounts = [_volume(v) for v in services["api"].get("volumes", [])]
    assert any(target == data and not ro for _, target, ro in api_mounts), (
        f"the API writes its API keys under {data}: mount a named volume there"
    )
    named = set(_compose().get("volumes") or {})
    assert all(source in named for source, target, _ in api_mounts if target == data)


def test_env_example_lists_every_variable_compose_requires() -> None:
    required = required_variables(_compose())
    assert {"SHOPGUIDE_PROFILES_REDIS_PASSWORD"} <= required
    text = (ROOT / ".env.example").read_text()
    listed = dict(re.findall(r"^([A-Za-z_]\w*)=(.*)$", text, re.M))
    for name in sorted(required):
        assert listed.get(name), f"add {name}=<placeholder> to .env.example"
    assert "openssl rand -hex 24" in text, "say how to make a password in .env.example"
    assert ".env" in _dockerignore(), "keep .env (the passwords) out of the image"


# The Docker image: read as text (no Docker needed). Each failure says what to fix.

DOCKERFILE = ROOT / "Dockerfile"
_ROOT_ONLY = re.compile(r"\b(apt-get|apt|pip|chown|chmod|useradd|groupadd|adduser|install)\b")
_INSTALLS_LLAMA = re.compile(r"pip install [^&;|]*?[\"']?\.\[([\w,-]*,)?llama(,[\w,-]*)?\]")


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        keyword, _, args = (pending + text).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def _args(keyword: str) -> list[str]:
    return [args for kw, args in _instructions() if kw == keyword]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for item in shlex.split(" ".join(_args("ENV"))):
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


def _image_user() -> str:
    users = _args("USER")
    assert users, "add `USER shopguide` (an unprivileged user) to the Dockerfile"
    return users[-1].split(":")[0]


def _copies_the_tree(copy_args: str) -> bool:
    """Whether a COPY's only source is the context's root (shell or JSON form, flags aside)."""
    if copy_args.lstrip().startswith("["):
        parts = json.loads(copy_args)
    else:
        if "--from=" in copy_args:
            return False
        parts = [p for p in shlex.split(copy_args) if not p.startswith("--")]
    return parts[:-1] in (["."], ["./"])


def _dockerignore() -> list[str]:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _matches(parts: list[str], pattern: list[str]) -> bool:
    """Whether path segments match pattern segments; ``**`` matches any number of segments."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _matches(parts[1:], pattern[1:])
    )


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out of the build context.

    As Docker decides: a pattern matches the path or a folder above it, ``**`` matches any
    number of folders, leading and trailing ``/`` do not count, and the last matching pattern
    wins (``!`` puts a path back).
    """
    parts = path.strip("/").split("/")
    ignored = False
    for raw in patterns:
        pattern = raw.removeprefix("!").strip().strip("/").split("/")
        if any(_matches(parts[:end], pattern) for end in range(1, len(parts) + 1)):
            ignored = not raw.startswith("!")
    return ignored


def _first_party(name: str) -> bool:
    return (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file()


def _imported_top_levels(path: Path) -> set[str]:
    """The top-level modules that ``path`` imports (``importlib.import_module("x")`` too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return {name.split(".")[0] for name in names}


def _sources_of(package: str) -> list[Path]:
    module = ROOT / f"{package}.py"
    return [module] if module.is_file() else sorted((ROOT / package).rglob("*.py"))


@functools.cache
def app_packages() -> frozenset[str]:
    """The first-party top-level packages that ``app`` needs, followed through first-party
    packages (imports inside functions count: the CLI imports lazily)."""
    needed: set[str] = set()
    todo = ["app"]
    while todo:
        package = todo.pop()
        if package in needed:
            continue
        needed.add(package)
        for path in _sources_of(package):
            todo.extend(n for n in _imported_top_levels(path) - needed if _first_party(n))
    return frozenset(needed)


def test_the_app_needs_the_packages_it_is_known_to() -> None:
    assert {"app", "retrieval", "generation", "indexer", "personalization"} <= app_packages()
    assert "tests" not in app_packages(), "the app must not import the tests"


def test_pip_installs_every_package_the_app_imports() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        include = tomllib.load(file)["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in sorted(app_packages()):
        assert any(fnmatch.fnmatchcase(package, pattern) for pattern in include), (
            f"the app imports {package!r}: add {package + '*'!r} to "
            "[tool.setuptools.packages.find] include in pyproject.toml"
        )


def test_the_image_gets_the_whole_source_tree() -> None:
    assert any(_copies_the_tree(args) for args in _args("COPY")), (
        "the Dockerfile must `COPY . .` (the source tree, filtered by .dockerignore), not copy "
        "package by package: a package left out breaks `shopguide serve` in the image"
    )


def test_dockerignore_keeps_every_file_the_image_needs() -> None:
    patterns = _dockerignore()
    needed = ["pyproject.toml", "README.md", "data/sample_catalog.jsonl"]
    for package in sorted(app_packages()):
        needed += [p.relative_to(ROOT).as_posix() for p in _sources_of(package)]
    for path in needed:
        assert not dockerignored(path, patterns), (
            f"{path} is needed in the image (`pip install .`, the app's imports or the sample "
            "catalog): remove the pattern that matches it from .dockerignore"
        )


def test_dockerignore_leaves_out_local_state() -> None:
    patterns = _dockerignore()
    for path in (".git/HEAD", ".venv/bin/python", "var/index", "app/__pycache__/main.pyc"):
        assert dockerignored(path, patterns), f"add a pattern for {path} to .dockerignore"


def test_dockerignore_matching_follows_docker() -> None:
    patterns = ["**/__pycache__", "var/", "/.venv", "*.md", "!README.md", "app/*.tmp"]
    assert dockerignored("a/b/__pycache__/x.pyc", patterns)
    assert dockerignored("__pycache__", patterns)
    assert dockerignored("var/index/x", patterns) and dockerignored(".venv/bin", patterns)
    assert dockerignored("NOTES.md", patterns) and not dockerignored("README.md", patterns)
    assert dockerignored("app/x.tmp", patterns) and not dockerignored("app/sub/x.tmp", patterns)
    assert not dockerignored("app/main.py", patterns)
    assert not dockerignored("variable/x", patterns)


def test_the_image_runs_as_an_unprivileged_user() -> None:
    instructions = _instructions()
    user = _image_user()
    assert user not in {"root", "0"}, f"USER {user} runs as root: use an unprivileged user"
    last_user = max(i for i, (kw, _) in enumerate(instructions) if kw == "USER")
    root_runs = [
        i for i, (kw, args) in enumerate(instructions) if kw == "RUN" and _ROOT_ONLY.search(args)
    ]
    assert root_runs and max(root_runs) < last_user, (
        f"move `USER {user}` after the last RUN that installs or changes ownership"
    )
    created = " ".join(_args("RUN"))
    assert re.search(rf"useradd [^&;]*\b{user}\b", created), (
        f"create the user {user!r} in a RUN (useradd --system --uid 10001 ... {user})"
    )
    assert not re.search(r"--uid\s+0\b", created), "the image's user must not have uid 0"


def test_the_user_owns_the_data_volume_and_the_models() -> None:
    instructions = _instructions()
    user, env = _image_user(), _env()
    data, models = env.get("SHOPGUIDE_DATA_DIR"), env.get("SHOPGUIDE_MODEL_DIR")
    assert data and models, "set SHOPGUIDE_DATA_DIR and SHOPGUIDE_MODEL_DIR in the Dockerfile"
    assert _args("VOLUME") and data in _args("VOLUME")[-1], f"declare VOLUME [{data!r}]"
    volume = next(i for i, (kw, _) in enumerate(instructions) if kw == "VOLUME")
    owned = re.compile(rf"(install -d [^&;]*-o {user}|chown [^&;]*{user})[^&;]*")
    before_volume = [args for kw, args in instructions[:volume] if kw == "RUN"]
    assert any(data in m.group(0) for r in before_volume for m in owned.finditer(r)), (
        f"create {data} owned by {user} before VOLUME (a named volume copies that ownership)"
    )
    assembles = [args for kw, args in instructions if kw == "RUN" and "shopguide models" in args]
    assert assembles, "assemble the generator model at build time (`shopguide models`)"
    assert re.search(rf"chown -R {user}\S* {models}\b", assembles[-1]), (
        f"end the RUN with `shopguide models` with `chown -R {user}:{user} {models}`"
    )


def test_the_image_serves_the_api_with_the_local_generator() -> None:
    cmd = _args("CMD")
    assert cmd and json.loads(cmd[-1]) == ["shopguide", "serve"], (
        'end the Dockerfile with CMD ["shopguide", "serve"]'
    )
    with (ROOT / "pyproject.toml").open("rb") as file:
        extras = tomllib.load(file)["project"].get("optional-dependencies", {})
    assert any(r.startswith("llama-cpp-python") for r in extras.get("llama", [])), (
        "pyproject.toml must define the `llama` extra with llama-cpp-python"
    )
    runs = _args("RUN")
    installs = [i for i, args in enumerate(runs) if _INSTALLS_LLAMA.search(args)]
    assert installs, 'install the project with its generator runtime: pip install ".[llama]"'
    for args in runs:
        if "pip install" in args and "llama" in args:
            flags = "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON"
            assert f'CMAKE_ARGS="{flags}"' in args, (
                f"build llama.cpp portably, with a CPU backend per instruction-set level chosen "
                f'at run time: CMAKE_ARGS="{flags}" pip install ...: {args}'
            )
    instructions = _instructions()
    copies = [i for i, (kw, a) in enumerate(instructions) if kw == "COPY" and _copies_the_tree(a)]
    install = max(
        i for i, (kw, a) in enumerate(instructions) if kw == "RUN" and _INSTALLS_LLAMA.search(a)
    )
    assert copies and copies[0] < install, 'run pip install ".[llama]" after `COPY . .`'


def _volume(volume: str | dict) -> tuple[str, str, bool]:
    """A compose volume's source, target and whether it is read-only (short or long syntax)."""
    if isinstance(volume, dict):
        return volume.get("source", ""), volume["target"], bool(volume.get("read_only"))
    match = re.fullmatch(r"(?:(\$\{[^}]*\}[^:]*|[^:]*):)?([^:]+)(?::([\w,]+))?", volume)
    assert match, f"cannot read the volume {volume!r}"
    source, target, mode = match.groups()
    return source or "", target, "ro" in (mode or "").split(",")


def test_compose_runs_the_image_as_its_user() -> None:
    services = _compose()["services"]
    env = _env()
    writable = {env["SHOPGUIDE_DATA_DIR"], env["SHOPGUIDE_MODEL_DIR"]}
    ours = [s for s in services.values() if str(s.get("image", "")).startswith("shopguide")]
    assert len(ours) >= 2, "the api and the indexer run the shopguide image"
    for service in ours:
        assert str(service.get("user", "")).split(":")[0] not in {"root", "0"}, (
            "do not run the shopguide image as root in docker-compose.yml"
        )
        for volume in service.get("volumes", []):
            source, target, read_only = _volume(volume)
            named = bool(source) and not source.startswith((".", "/", "$", "~"))
            assert read_only or (named and target in writable), (
                f"{volume}: mount bind mounts read-only, and named volumes only at "
                f"{sorted(writable)} (owned by the image's user)"
            )


def test_the_stack_requires_keys() -> None:
    """No admin key made for the machine on the first start: the stack serves only the keys
    the operator adds (or none: 401 for every request but /health and the docs)."""
    env = _compose()["services"]["api"]["environment"]
    assert str(env.get("SHOPGUIDE_LOCAL_KEY")).lower() == "false"
    assert str(env.get("SHOPGUIDE_INSECURE_LOCAL", "false")).lower() == "false"
    assert "--insecure-local" not in _compose()["services"]["api"].get("command", [])
