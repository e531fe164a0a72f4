"""Shared fixtures for the Python tests (run by scripts/test.sh in the test venv).

These tests drive the real `minnow` binary and compare what it says with independent readers
(gguf-py, ...). They find the binary in $MINNOW_BIN (default build/minnow) and the models in
$MINNOW_CACHE (default ~/.cache/minnow/models), named as in scripts/models.tsv.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ModelEntry:
    name: str   # "smollm2:135m"
    arch: str   # "llama"
    file: str   # file name in the model cache
    size: int
    sha256: str


def manifest() -> list[ModelEntry]:
    """The rows of scripts/models.tsv; the first is the default model."""
    rows = []
    for line in (ROOT / "scripts" / "models.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, arch, file, size, sha, *_ = line.split("\t")
        rows.append(ModelEntry(name, arch, file, int(size), sha))
    return rows


MODELS = manifest()


def model_cache() -> Path:
    return Path(os.environ.get("MINNOW_CACHE") or Path.home() / ".cache" / "minnow" / "models")


@pytest.fixture(scope="session")
def minnow_bin() -> Path:
    path = Path(os.environ.get("MINNOW_BIN") or ROOT / "build" / "minnow")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built; run scripts/test.sh or scripts/quickstart.sh")
    return path


@pytest.fixture
def run_minnow(minnow_bin):
    """run_minnow(*args, env=None) -> CompletedProcess with text stdout/stderr."""
    def run(*args: str, env: dict | None = None, timeout: float = 120):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run([str(minnow_bin), *args], capture_output=True, text=True,
                              env=full_env, timeout=timeout)
    return run


@pytest.fixture
def minnow_json(run_minnow):
    """minnow_json(*args) -> the parsed stdout of a command that must succeed."""
    def run(*args: str):
        p = run_minnow(*args)
        assert p.returncode == 0, f"minnow {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
        return json.loads(p.stdout)
    return run


def model_path(entry: ModelEntry) -> Path:
    """The model's file in the cache; skips the test when setup has not fetched it."""
    path = model_cache() / entry.file
    if not path.is_file():
        pytest.skip(f"{path} absent; run scripts/quickstart.sh to fetch {entry.name}")
    return path


@pytest.fixture(params=MODELS, ids=[m.name for m in MODELS])
def model(request) -> tuple[ModelEntry, Path]:
    """Each model of scripts/models.tsv in turn, with its path in the cache."""
    return request.param, model_path(request.param)
