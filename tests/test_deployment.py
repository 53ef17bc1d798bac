"""Deployment: docker-compose runs the same servers, with the same settings, as the CI
integration tests, and the Docker image holds every package the app imports and runs it as an
unprivileged user. The Dockerfile and .dockerignore are read as text: no Docker needed."""

import ast
import fnmatch
import functools
import json
import re
import shlex
import tomllib
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
