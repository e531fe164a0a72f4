#!/usr/bin/env python3
"""Writes the golden files that tests/kernels_ref_test.cpp checks the reference
(de)quantizers against, one file per tensor type in tests/golden/quants/<TYPE>.bin.

The oracle is gguf-py (pip install gguf numpy), whose gguf/quants.py is a numpy port of
ggml's reference code. Where gguf-py has no implementation (Q8_1, Q8_K) this script holds a
small numpy version of ggml's definition instead, noted below. When llama-cpp-python is
installed, every expected value is also checked against ggml itself (its libggml-base
exports dequantize_row_* and quantize_row_*_ref), and the script stops on any difference.

File layout (little-endian):
    char[4]  "MQG1"
    u32      ggml type id
    u32      elements per block
    u32      bytes per block
    u32      n_blocks                 -- dequantize case
    u8       raw[n_blocks * bytes]    random blocks with sane scale fields
    f32      expected[n_blocks * elements]
    u32      n_elems                  -- quantize case (0: no quantize oracle for this type)
    f32      input[n_elems]
    u8       expected[n_elems / elements * bytes]

Usage: python3 tests/golden/make_quant_golden.py [out_dir]   (deterministic: fixed seed)
"""
import importlib.metadata
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

RNG = np.random.default_rng(20261121)


def geometry(qtype):
    """(elements, bytes) per block. gguf-py still lists Q8_1 at 40 bytes (f32 d and s, an old
    layout); ggml's block_q8_1 holds two f16 fields: 36 bytes."""
    return (32, 36) if qtype == T.Q8_1 else GGML_QUANT_SIZES[qtype]

# Byte offsets of the f16 scale fields of each block type (all other bytes are random).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.Q8_1: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0],
}


def sane_f16(kind):
    """f16 bits: 'normal' in +-[2^-14, 2^5), 'subnormal', or 'zero'."""
    sign = int(RNG.integers(0, 2)) << 15
    if kind == "zero":
        return sign
    mant = int(RNG.integers(1, 1024))
    exp = 0 if kind == "subnormal" else int(RNG.integers(1, 20))
    return sign | (exp << 10) | mant


def random_blocks(qtype, n_blocks):
    _, type_size = geometry(qtype)
    raw = RNG.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    # Last two blocks exercise subnormal and zero scales.
    kinds = ["normal"] * (n_blocks - 2) + ["subnormal", "zero"]
    for b, kind in enumerate(kinds):
        if qtype == T.Q8_K:  # f32 d
            d = np.float32(0.0) if kind == "zero" else np.float32(RNG.normal() * 2.0 ** RNG.integers(-20, 4))
            raw[b, 0:4] = np.frombuffer(d.tobytes(), dtype=np.uint8)
            continue
        for off in F16_FIELDS[qtype]:
            h = sane_f16(kind)
            raw[b, off] = h & 0xFF
            raw[b, off + 1] = h >> 8
    return raw


def random_halves(n):
    bits = RNG.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    exp = (bits >> 10) & 0x1F
    return bits[exp != 0x1F]  # no Inf / NaN: numpy's SIMD casts may quiet signalling NaNs


# ---- numpy versions of ggml's definitions for the types gguf-py does not implement ----

def dequantize_q8_1(raw):  # d f16, s f16, qs int8[32]; x = d * q
    d = raw[:, 0:2].copy().view(np.float16).astype(np.float32)
    q = raw[:, 4:].copy().view(np.int8).astype(np.float32)
    return (q * d).reshape(-1)


def quantize_q8_1(x):
    """ggml quantize_row_q8_1_ref: Q8_0's d and q, plus s = f16(sum(q) * d) with the f32 d."""
    blocks = x.reshape(-1, 32)
    q8_0 = gguf.quants.quantize(x, T.Q8_0).reshape(-1, 34)
    d = np.abs(blocks).max(axis=1) / np.float32(127)
    sums = q8_0[:, 2:].view(np.int8).astype(np.int32).sum(axis=1)
    s = (sums.astype(np.float32) * d).astype(np.float16)
    return np.concatenate([q8_0[:, 0:2], s.view(np.uint8).reshape(-1, 2), q8_0[:, 2:]], axis=1)


def dequantize_q8_k(raw):  # d f32, qs int8[256], bsums int16[16]; x = d * q
    d = raw[:, 0:4].copy().view(np.float32)
    q = raw[:, 4:260].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(-1)


def quantize_q8_k(x):
    """ggml quantize_row_q8_K_ref: iscale = -127 / (signed element of largest magnitude),
    q = min(127, round-half-even(iscale * x)), d = 1 / iscale, bsums over groups of 16."""
    out = []
    for blk in x.reshape(-1, 256):
        i = int(np.argmax(np.abs(blk)))
        if np.abs(blk[i]) == 0:
            d, q = np.float32(0), np.zeros(256, np.int32)
        else:
            iscale = np.float32(-127) / blk[i]
            q = np.minimum(np.rint(iscale * blk).astype(np.int32), 127)
            d = np.float32(1) / iscale
        bsums = q.reshape(16, 16).sum(axis=1)
        out.append(np.frombuffer(np.float32(d).tobytes() + q.astype(np.int8).tobytes()
                                 + bsums.astype(np.int16).tobytes(), dtype=np.uint8))
    return np.stack(out)


# ---- quantize inputs ----

def tie_block(qtype):
    """A block whose elements hit the quantizer's rounding ties exactly."""
    if qtype in (T.Q8_0, T.Q8_1):  # amax 127/8 -> d = 1/8: x * 8 = k + 0.5
        v = (np.arange(32) - 16 + 0.5) / 8
        v[0] = 127 / 8
    elif qtype == T.Q4_0:  # max -2 -> d = 1/4: x * 4 + 8.5 lands on halves and integers
        v = (np.arange(32) - 16) / 8
        v[0] = -2
    elif qtype == T.Q4_1:  # min -1, max 2.75 -> d = 1/4
        v = -1 + np.arange(32) / 8 * 0.9375
        v[0], v[1] = -1, 2.75
    elif qtype == T.Q5_0:  # max -2 -> d = 1/8
        v = (np.arange(32) - 16) / 16
        v[0] = -2
    elif qtype == T.Q5_1:  # min -1, max 2.875 -> d = 1/8
        v = -1 + np.arange(32) / 16 * 1.9375
        v[0], v[1] = -1, 2.875
    elif qtype == T.Q8_K:  # max 127/8 -> iscale = -8: iscale * x = -(k + 0.5)
        v = (np.arange(256) % 64 - 32 + 0.5) / 8
        v[0] = 127 / 8
    else:
        raise ValueError(qtype)
    return v.astype(np.float32)


def quantize_input(qtype):
    qk, _ = geometry(qtype)
    parts = [
        RNG.normal(size=qk),                       # plain Gaussian
        RNG.normal(size=qk) * 300.0,               # large
        RNG.normal(size=qk) * 1e-3,                # small
        np.where(RNG.random(qk) < 0.05, 40.0, 1.0) * RNG.normal(size=qk),  # outliers
        tie_block(qtype),
        np.zeros(qk),                              # all zero: no division by zero
        np.full(qk, 0.7),                          # constant
        np.full(qk, -2.5),
    ]
    if qk == 256:
        parts = parts[:1] + parts[3:6]             # keep the 256-wide goldens small
    return np.concatenate(parts).astype(np.float32)


def float_inputs(n):
    """f32 values spread over the f16 range and past it, plus exact f16 rounding ties."""
    mant = RNG.integers(0, 1 << 23, size=n, dtype=np.uint32)
    exp = RNG.integers(127 - 30, 127 + 18, size=n, dtype=np.uint32)  # 2^-30 .. 2^17
    sign = RNG.integers(0, 2, size=n, dtype=np.uint32) << 31
    vals = (sign | (exp << 23) | mant).view(np.float32)
    halves = random_halves(n).view(np.float16)  # ties: half an f16 ulp past an f16 value
    ulp = np.spacing(halves).astype(np.float32)
    ties = (halves.astype(np.float32) + ulp / 2).astype(np.float32)
    extra = np.array([0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.99, 65520.0, 1e6,
                      2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26, 6.1e-5],
                     dtype=np.float32)
    return np.concatenate([vals, ties, extra]).astype(np.float32)


# ---- optional cross-check against ggml's own C code, as shipped in llama-cpp-python ----

def load_libggml():
    try:
        import ctypes
        import llama_cpp
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so")
    return ctypes.CDLL(path) if os.path.exists(path) else None


def ggml_dequantize(lib, qtype, raw):
    import ctypes
    qk, _ = geometry(qtype)
    n = raw.shape[0] * qk
    out = np.zeros(n, np.float32)
    src = np.ascontiguousarray(raw)
    if qtype in (T.F16, T.BF16):
        fn = lib.ggml_fp16_to_fp32_row if qtype == T.F16 else lib.ggml_bf16_to_fp32_row
    else:
        fn = getattr(lib, f"dequantize_row_{qtype.name.lower().replace('_k', '_K')}", None)
        if fn is None:
            return None  # ggml has no dequantize_row_q8_1
    fn.restype = None
    fn(src.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n))
    return out


def ggml_quantize(lib, qtype, x):
    import ctypes
    qk, type_size = geometry(qtype)
    out = np.zeros(x.size // qk * type_size, np.uint8)
    src = np.ascontiguousarray(x, dtype=np.float32)
    if qtype == T.F16:
        fn = lib.ggml_fp32_to_fp16_row
    elif qtype == T.BF16:
        fn = lib.ggml_fp32_to_bf16_row_ref
    else:
        fn = getattr(lib, f"quantize_row_{qtype.name.lower().replace('_k', '_K')}_ref")
    fn.restype = None
    fn(src.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(x.size))
    return out


def cross_check(lib, qtype, raw, deq, qin, qout):
    if lib is None:
        return
    ref = ggml_dequantize(lib, qtype, raw)
    if ref is not None and not np.array_equal(ref.view(np.uint32), deq.view(np.uint32)):
        sys.exit(f"{qtype.name}: dequantized values differ from libggml")
    if qin is not None and qtype != T.F16:  # ggml's f16 row conversion may use F16C: skip
        if not np.array_equal(ggml_quantize(lib, qtype, qin), np.asarray(qout).reshape(-1)):
            sys.exit(f"{qtype.name}: quantized bytes differ from libggml")


def write(out_dir, qtype, raw, deq, qin, qout):
    qk, type_size = geometry(qtype)
    assert deq.dtype == np.float32 and deq.size == raw.shape[0] * qk, (qtype, deq.dtype, deq.shape)
    with open(os.path.join(out_dir, f"{qtype.name}.bin"), "wb") as f:
        f.write(b"MQG1")
        f.write(struct.pack("<IIII", int(qtype), qk, type_size, raw.shape[0]))
        f.write(raw.tobytes())
        f.write(deq.astype("<f4").tobytes())
        if qin is None:
            f.write(struct.pack("<I", 0))
        else:
            assert qout.size == qin.size // qk * type_size
            f.write(struct.pack("<I", qin.size))
            f.write(qin.astype("<f4").tobytes())
            f.write(np.ascontiguousarray(qout).astype(np.uint8).tobytes())


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "quants")
    os.makedirs(out_dir, exist_ok=True)

    lib = load_libggml()

    # F16 / BF16: elements are the blocks.
    halves = random_halves(384)
    fin = float_inputs(512)
    with np.errstate(over="ignore"):  # values past 65520 become Inf, as they should
        fin_f16 = fin.astype(np.float16)
    f16_deq = halves.view(np.float16).astype(np.float32)
    cross_check(lib, T.F16, halves.view(np.uint8).reshape(-1, 2), f16_deq, None, None)
    write(out_dir, T.F16, halves.view(np.uint8).reshape(-1, 2), f16_deq, fin, fin_f16.view(np.uint8))

    bf = RNG.integers(0, 1 << 16, size=384, dtype=np.uint32).astype(np.uint16)
    bf = bf[((bf >> 7) & 0xFF) != 0xFF]
    bf_in = np.concatenate([fin, np.array([np.nan, -np.nan], np.float32),
                            np.array([0x7F800001, 0xFFBFFFFF], np.uint32).view(np.float32)])
    bf_deq = gguf.quants.dequantize(bf.view(np.uint8), T.BF16).reshape(-1)
    bf_out = gguf.quants.quantize(bf_in, T.BF16)
    cross_check(lib, T.BF16, bf.view(np.uint8).reshape(-1, 2), bf_deq, bf_in, bf_out)
    write(out_dir, T.BF16, bf.view(np.uint8).reshape(-1, 2), bf_deq, bf_in, bf_out)

    gguf_quantizes = {T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}
    for qtype in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q8_1, T.Q2_K, T.Q3_K, T.Q4_K,
                  T.Q5_K, T.Q6_K, T.Q8_K, T.IQ4_NL, T.IQ4_XS]:
        qk, _ = geometry(qtype)
        raw = random_blocks(qtype, 6 if qk == 32 else 4)
        if qtype == T.Q8_1:
            deq = dequantize_q8_1(raw)
        elif qtype == T.Q8_K:
            deq = dequantize_q8_k(raw)
        else:
            deq = gguf.quants.dequantize(raw.reshape(-1), qtype).reshape(-1)
        qin = qout = None
        if qtype in gguf_quantizes:
            qin = quantize_input(qtype)
            qout = gguf.quants.quantize(qin, qtype)
        elif qtype == T.Q8_1:
            qin = quantize_input(qtype)
            qout = quantize_q8_1(qin)
        elif qtype == T.Q8_K:
            qin = quantize_input(qtype)
            qout = quantize_q8_k(qin)
        cross_check(lib, qtype, raw, deq, qin, qout)
        write(out_dir, qtype, raw, deq, qin, qout)
    checked = (f"; all cross-checked against libggml from llama-cpp-python "
               f"{importlib.metadata.version('llama_cpp_python')}" if lib else "")
    print(f"wrote goldens to {out_dir} with gguf {importlib.metadata.version('gguf')}, "
          f"numpy {np.__version__}{checked}")


if __name__ == "__main__":
    main()
