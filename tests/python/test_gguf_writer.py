"""minnow's GGUF writer and reader against gguf-py, an independent implementation.

Environment:
  MINNOW_BUILD_DIR  the CMake build directory holding tests/gguf_write_sample (default: build,
                    relative to the repository root). Build it with
                    `cmake --build build --target gguf_write_sample` (scripts/test.sh does).

Both directions:
  * minnow writes (tests/gguf_write_sample.cpp, every metadata value type, arrays of strings,
    nested arrays, tensors of several types and ranks, alignments 1..4096, v2 and v3) and
    gguf-py's GGUFReader must read back exactly what the writer meant to write: metadata keys,
    types, values and order; tensor names, types, shapes, offsets and bytes. With the default
    alignment the file must also be byte-identical to what gguf-py's GGUFWriter writes for the
    same content.
  * gguf-py's GGUFWriter writes and minnow's reader (`gguf_write_sample dump`) must read back
    what was handed to gguf-py.
The comparison of `minnow inspect` with gguf-py on the real models is in test_inspect.py.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter

ROOT = Path(__file__).resolve().parents[2]

TYPE_NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array", GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}
VALUE_TYPES = {name: vt for vt, name in TYPE_NAMES.items()}


@pytest.fixture(scope="session")
def sample_bin() -> Path:
    build = Path(os.environ.get("MINNOW_BUILD_DIR") or "build")
    if not build.is_absolute():
        build = ROOT / build
    path = build / "tests" / "gguf_write_sample"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built; run `cmake --build {build} --target gguf_write_sample`"
                    " or set MINNOW_BUILD_DIR")
    return path


def run_sample(sample_bin: Path, *args) -> dict | list:
    p = subprocess.run([str(sample_bin), *map(str, args)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, f"gguf_write_sample {' '.join(map(str, args))}: {p.stderr}"
    return json.loads(p.stdout)


def ggml_pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


# ------------------------------------------------------------------------------------------
# gguf-py's reading, converted to the JSON shape gguf_write_sample prints

def scalar_json(x, vtype: GGUFValueType):
    if vtype in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if vtype == GGUFValueType.BOOL:
        return bool(x)
    return int(x)


def walk_parts(parts, i: int, vtype: GGUFValueType):
    """Value starting at parts[i] (gguf-py's decoded pieces of a field) -> (json, next i)."""
    if vtype == GGUFValueType.STRING:
        return bytes(parts[i + 1]).decode("utf-8"), i + 2
    if vtype == GGUFValueType.ARRAY:
        elem = GGUFValueType(int(parts[i][0]))
        count = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(count):
            v, i = walk_parts(parts, i, elem)
            items.append(v)
        return {"elem_type": TYPE_NAMES[elem], "value": items}, i
    return scalar_json(parts[i][0], vtype), i + 1


def field_json(field) -> dict:
    vtype = field.types[0]
    value, end = walk_parts(field.parts, 3, vtype)  # parts: key length, key, value type, value
    assert end == len(field.parts), field.name
    out = {"key": field.name, "type": TYPE_NAMES[vtype]}
    if vtype == GGUFValueType.ARRAY:
        out["elem_type"] = value["elem_type"]
        out["value"] = value["value"]
        if value["elem_type"] != "array":  # gguf-py's own accessor agrees for flat arrays
            assert [scalar_json(x, field.types[-1]) if not isinstance(x, str) else x
                    for x in field.contents()] == out["value"], field.name
    else:
        out["value"] = value
    return out


def gguf_py_json(path: Path) -> dict:
    r = GGUFReader(path)
    meta = [field_json(f) for name, f in r.fields.items() if not name.startswith("GGUF.")]
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "type": GGMLQuantizationType(t.tensor_type).name,
            "shape": [int(d) for d in t.shape],
            "n_bytes": int(t.n_bytes),
            "data_hex": t.data.tobytes().hex(),
            "offset": int(t.data_offset) - int(r.data_offset),
        })
    return {
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "metadata": meta,
        "tensors": tensors,
    }


def expected_offsets(tensors: list[dict], alignment: int) -> list[int]:
    offsets, at = [], 0
    for t in tensors:
        offsets.append(at)
        at += ggml_pad(t["n_bytes"], alignment)
    return offsets


def without_offsets(tensors: list[dict]) -> list[dict]:
    return [{k: v for k, v in t.items() if k != "offset"} for t in tensors]


# ------------------------------------------------------------------------------------------
# minnow writes, gguf-py reads

WRITE_CASES = [(32, 3), (32, 2), (1, 3), (64, 3), (256, 3), (4096, 3)]


@pytest.mark.parametrize("alignment,version", WRITE_CASES,
                         ids=[f"align{a}-v{v}" for a, v in WRITE_CASES])
def test_minnow_writer_read_by_gguf_py(sample_bin, tmp_path, alignment, version):
    path = tmp_path / "sample.gguf"
    meant = run_sample(sample_bin, "write", path, alignment, version)
    theirs = gguf_py_json(path)

    assert theirs["version"] == version
    assert theirs["alignment"] == alignment
    assert theirs["data_offset"] % alignment == 0
    assert [m["key"] for m in theirs["metadata"]] == [m["key"] for m in meant["metadata"]]
    for mine, got in zip(meant["metadata"], theirs["metadata"]):
        assert got == mine, mine["key"]
    # Every value type and element type was exercised, nested arrays included.
    assert {m["type"] for m in meant["metadata"]} == set(VALUE_TYPES)
    assert {m["elem_type"] for m in meant["metadata"] if m["type"] == "array"} == \
        set(VALUE_TYPES)

    assert without_offsets(theirs["tensors"]) == meant["tensors"]
    offsets = expected_offsets(meant["tensors"], alignment)
    assert [t["offset"] for t in theirs["tensors"]] == offsets
    assert len({t["type"] for t in meant["tensors"]}) >= 10
    assert {len(t["shape"]) for t in meant["tensors"]} == {1, 2, 3, 4}
    last = meant["tensors"][-1]
    assert path.stat().st_size == theirs["data_offset"] + offsets[-1] + ggml_pad(
        last["n_bytes"], alignment)

    # minnow's own reader reads the same as gguf-py.
    ours = run_sample(sample_bin, "dump", path)
    assert ours["data_offset"] == theirs["data_offset"]
    assert ours["metadata"] == theirs["metadata"]
    assert ours["tensors"] == theirs["tensors"]


def gguf_py_writer_from(meant: dict, path: Path) -> None:
    """Writes, with gguf-py's GGUFWriter, the content gguf_write_sample says it wrote."""
    meta = meant["metadata"]
    assert meta[0]["key"] == "general.architecture"  # GGUFWriter always writes it first
    w = GGUFWriter(path, arch=meta[0]["value"])
    for m in meta[1:]:
        vtype = VALUE_TYPES[m["type"]]
        if vtype == GGUFValueType.ARRAY:
            elem = VALUE_TYPES[m["elem_type"]]
            value = [x["value"] for x in m["value"]] if elem == GGUFValueType.ARRAY else m["value"]
            w.add_key_value(m["key"], value, vtype, sub_type=elem)
        else:
            w.add_key_value(m["key"], m["value"], vtype)
    for t in meant["tensors"]:
        qtype = GGMLQuantizationType[t["type"]]
        block, size = GGML_QUANT_SIZES[qtype]
        shape = list(reversed(t["shape"]))  # numpy order: rows last
        shape[-1] = shape[-1] // block * size
        data = np.frombuffer(bytes.fromhex(t["data_hex"]), dtype=np.uint8).reshape(shape)
        w.add_tensor(t["name"], data, raw_shape=shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_minnow_writer_is_byte_identical_to_gguf_py_writer(sample_bin, tmp_path):
    mine = tmp_path / "minnow.gguf"
    meant = run_sample(sample_bin, "write", mine)
    # gguf-py only infers nested arrays' inner types (ints as i32, str as string): our sample
    # uses exactly those, so the whole file can be compared.
    theirs = tmp_path / "gguf_py.gguf"
    gguf_py_writer_from(meant, theirs)
    a, b = mine.read_bytes(), theirs.read_bytes()
    assert len(a) == len(b)
    first = next((i for i in range(len(a)) if a[i] != b[i]), None)
    assert first is None, f"files differ first at byte {first}"


# ------------------------------------------------------------------------------------------
# gguf-py writes, minnow reads

def rng_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def build_gguf_py_file(path: Path, alignment: int | None) -> dict:
    """A file written by GGUFWriter, and the JSON minnow's dump should print for it."""
    w = GGUFWriter(path, arch="qwen2")
    meta = [{"key": "general.architecture", "type": "string", "value": "qwen2"}]

    def kv(key, vtype, value, elem=None, expect=None):
        w.add_key_value(key, value, vtype, sub_type=elem)
        m = {"key": key, "type": TYPE_NAMES[vtype]}
        if vtype == GGUFValueType.ARRAY:
            m["elem_type"] = TYPE_NAMES[elem]
        m["value"] = value if expect is None else expect
        meta.append(m)

    if alignment is not None:
        w.add_custom_alignment(alignment)
        meta.append({"key": "general.alignment", "type": "u32", "value": alignment})
    V = GGUFValueType
    kv("qwen2.block_count", V.UINT32, 24)
    kv("t.u8", V.UINT8, 7)
    kv("t.i8", V.INT8, -7)
    kv("t.u16", V.UINT16, 65535)
    kv("t.i16", V.INT16, -300)
    kv("t.i32", V.INT32, -123456)
    kv("t.u64", V.UINT64, 2**64 - 1)
    kv("t.i64", V.INT64, -(2**63))
    kv("t.f32", V.FLOAT32, 0.1, expect=float(np.float32(0.1)))
    kv("t.f64", V.FLOAT64, 0.1)
    kv("t.bool", V.BOOL, True)
    kv("t.string", V.STRING, "Ünïcödé \U0001F41F")
    kv("t.empty", V.STRING, "")
    kv("tokenizer.ggml.tokens", V.ARRAY, ["<|endoftext|>", "Ġthe", "", "\n"], V.STRING)
    kv("tokenizer.ggml.scores", V.ARRAY, [0.0, -1.25, 3.5], V.FLOAT32)
    kv("tokenizer.ggml.token_type", V.ARRAY, [1, 3, 6, -1], V.INT32)
    kv("t.u8s", V.ARRAY, [0, 255], V.UINT8)
    kv("t.i8s", V.ARRAY, [-128, 127], V.INT8)
    kv("t.u16s", V.ARRAY, [1, 65535], V.UINT16)
    kv("t.i16s", V.ARRAY, [-32768, 5], V.INT16)
    kv("t.u32s", V.ARRAY, [4294967295], V.UINT32)
    kv("t.u64s", V.ARRAY, [2**64 - 1, 0], V.UINT64)
    kv("t.i64s", V.ARRAY, [-(2**63), 2**63 - 1], V.INT64)
    kv("t.f64s", V.ARRAY, [1e-300, -2.5], V.FLOAT64)
    kv("t.bools", V.ARRAY, [True, False, True], V.BOOL)
    kv("t.nested", V.ARRAY, [[1, 2], [3], [4, 5, 6]], V.ARRAY,
       expect=[{"elem_type": "i32", "value": v} for v in ([1, 2], [3], [4, 5, 6])])
    kv("t.nested_strings", V.ARRAY, [["a", "bc"], ["d"]], V.ARRAY,
       expect=[{"elem_type": "string", "value": v} for v in (["a", "bc"], ["d"])])

    tensors = []
    seed = 0

    def tensor(name, qtype: GGMLQuantizationType, ne: list[int]):
        nonlocal seed
        seed += 1
        block, size = GGML_QUANT_SIZES[qtype]
        shape = list(reversed(ne))
        shape[-1] = shape[-1] // block * size
        raw = rng_bytes(int(np.prod(shape)), seed)
        w.add_tensor(name, np.frombuffer(raw, np.uint8).reshape(shape), raw_shape=shape,
                     raw_dtype=qtype)
        tensors.append({"name": name, "type": qtype.name, "shape": ne, "n_bytes": len(raw),
                        "data_hex": raw.hex()})

    Q = GGMLQuantizationType
    # Plain numpy arrays take gguf-py's own type inference path.
    f32 = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    w.add_tensor("t.f32_numpy", f32)
    tensors.append({"name": "t.f32_numpy", "type": "F32", "shape": [4, 3], "n_bytes": 48,
                    "data_hex": f32.tobytes().hex()})
    i16 = np.array([-1, 2, -3], dtype=np.int16)
    w.add_tensor("t.i16_numpy", i16)
    tensors.append({"name": "t.i16_numpy", "type": "I16", "shape": [3], "n_bytes": 6,
                    "data_hex": i16.tobytes().hex()})
    tensor("t.f16", Q.F16, [5, 2])
    tensor("t.bf16", Q.BF16, [3])
    tensor("t.f64", Q.F64, [2, 1, 2])
    tensor("t.i8", Q.I8, [9])
    tensor("t.i32", Q.I32, [2, 2, 2, 2])
    tensor("t.i64", Q.I64, [1])
    tensor("t.q4_0", Q.Q4_0, [64, 2])
    tensor("t.q5_1", Q.Q5_1, [32])
    tensor("t.q8_0", Q.Q8_0, [32, 3])
    tensor("t.q2_k", Q.Q2_K, [256])
    tensor("t.q3_k", Q.Q3_K, [256, 2])
    tensor("t.q4_k", Q.Q4_K, [512])
    tensor("t.q6_k", Q.Q6_K, [256, 1, 2])
    tensor("t.iq4_nl", Q.IQ4_NL, [32, 2])
    tensor("t.iq2_xxs", Q.IQ2_XXS, [256])
    tensor("t.mxfp4", Q.MXFP4, [32, 3])
    tensor("t.tq2_0", Q.TQ2_0, [256])

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"version": 3, "alignment": alignment or 32, "metadata": meta, "tensors": tensors}


@pytest.mark.parametrize("alignment", [None, 16, 64, 1024])
def test_gguf_py_writer_read_by_minnow(sample_bin, tmp_path, alignment):
    path = tmp_path / "from_gguf_py.gguf"
    meant = build_gguf_py_file(path, alignment)
    ours = run_sample(sample_bin, "dump", path)

    assert ours["version"] == meant["version"]
    assert ours["alignment"] == meant["alignment"]
    assert [m["key"] for m in ours["metadata"]] == [m["key"] for m in meant["metadata"]]
    for got, want in zip(ours["metadata"], meant["metadata"]):
        assert got == want, want["key"]
    assert without_offsets(ours["tensors"]) == meant["tensors"]

    theirs = gguf_py_json(path)  # gguf-py's own reading of its file: offsets and data section
    assert ours["data_offset"] == theirs["data_offset"]
    assert [t["offset"] for t in ours["tensors"]] == [t["offset"] for t in theirs["tensors"]]
    assert [t["offset"] for t in ours["tensors"]] == expected_offsets(meant["tensors"],
                                                                     meant["alignment"])


def test_tensor_type_table_matches_gguf_py(sample_bin):
    ours = {t["name"]: t for t in run_sample(sample_bin, "types")}
    for name, t in ours.items():
        q = GGMLQuantizationType[name]
        assert t["id"] == int(q), name
        if name == "Q8_1":
            # gguf-py 0.19 still has the old float d and s (40 bytes); ggml's block_q8_1 holds
            # two halves and 32 quants (36). Q8_1 is a dot-product intermediate, never stored.
            assert (t["block_elems"], t["block_bytes"]) == (32, 36)
            assert GGML_QUANT_SIZES[q] == (32, 40)
            continue
        assert (t["block_elems"], t["block_bytes"]) == GGML_QUANT_SIZES[q], name
    # Types gguf-py 0.19 knows that minnow's table does not have yet.
    missing = {q.name for q in GGMLQuantizationType} - set(ours)
    assert missing <= {"NVFP4", "Q1_0"}, missing
