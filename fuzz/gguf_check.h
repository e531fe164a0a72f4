// The checks the GGUF fuzzer applies to each input, shared with the corpus replay test
// (tests/gguf_corpus_test.cpp) so that CI replays exactly what the fuzzer checked:
//   * File::parse never crashes, over-reads (ASan) or hits undefined behaviour (UBSan);
//   * a rejected input gets "<name>: <field> at offset <N>: <problem>" with N <= the input size;
//   * an accepted input hands out only memory it validated: walk() touches every metadata value,
//     every array element (numeric ones through elem_i64/elem_f64, the first and last byte of
//     every string), nested arrays, every typed accessor, and the first and last byte of every
//     tensor's data;
//   * an accepted input survives Writer -> parse with identical metadata and tensors.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gguf/gguf.h"

namespace minnow::gguf_fuzz {

inline uint64_t touch(std::string_view s) {
  if (s.empty()) return 1;
  return static_cast<uint8_t>(s.front()) + 3u * static_cast<uint8_t>(s.back()) + s.size();
}

inline uint64_t walk_value(const gguf::Value& v) {
  using gguf::ValueType;
  uint64_t h = static_cast<uint64_t>(v.type) + v.file_offset;
  switch (v.type) {
    case ValueType::STRING:
      return h + touch(v.str);
    case ValueType::ARRAY:
      break;
    default:
      return h + v.u64 + static_cast<uint64_t>(v.i64) + (v.f64 == v.f64 ? 1 : 2);
  }
  h += static_cast<uint64_t>(v.elem_type) + v.count;
  switch (v.elem_type) {
    case ValueType::STRING:
      for (std::string_view s : v.strings) h += touch(s);
      break;
    case ValueType::ARRAY:
      for (const gguf::Value& item : v.items) h += walk_value(item);
      break;
    default:
      for (uint64_t i = 0; i < v.count; ++i) {
        double d = v.elem_f64(i);
        h += static_cast<uint64_t>(v.elem_i64(i)) + (d == d ? 1 : 2);
      }
  }
  return h;
}

inline uint64_t walk(const gguf::File& f) {
  uint64_t h = f.version() + f.alignment() + f.data_offset() + f.total_tensor_bytes();
  for (const gguf::KeyValue& kv : f.metadata()) {
    h += touch(kv.key) + walk_value(kv.value);
    if (f.find(kv.key) != &kv.value) std::abort();  // the index must agree with the list
    // Every accessor on every key: the right type succeeds, the others fail cleanly.
    h += f.get_u32(kv.key).ok() + f.get_u64(kv.key).ok() + f.get_i32(kv.key).ok() +
         f.get_i64(kv.key).ok() + f.get_f32(kv.key).ok() + f.get_f64(kv.key).ok() +
         f.get_bool(kv.key).ok() + f.get_string(kv.key).ok() + f.get_uint(kv.key).ok() +
         f.get_array(kv.key, kv.value.elem_type).ok();
  }
  for (const gguf::TensorInfo& t : f.tensors()) {
    h += touch(t.name) + t.n_elements + t.rows() + t.shape_string().size();
    h += t.data[0] + 7u * t.data[t.n_bytes - 1];
    if (f.find_tensor(t.name) != &t) std::abort();
  }
  return h;
}

// Whether two values hold the same data (file offsets aside); floats compare by bits.
inline bool same_value(const gguf::Value& a, const gguf::Value& b) {
  if (a.type != b.type) return false;
  if (a.type != gguf::ValueType::ARRAY) {
    return a.u64 == b.u64 && a.i64 == b.i64 && a.str == b.str &&
           std::memcmp(&a.f64, &b.f64, sizeof a.f64) == 0;
  }
  if (a.elem_type != b.elem_type || a.count != b.count || a.strings != b.strings ||
      a.items.size() != b.items.size()) {
    return false;
  }
  uint64_t n = a.count * gguf::value_type_size(a.elem_type);
  if (n && std::memcmp(a.elems, b.elems, n) != 0) return false;
  for (size_t i = 0; i < a.items.size(); ++i) {
    if (!same_value(a.items[i], b.items[i])) return false;
  }
  return true;
}

// Rewrites f with the Writer and parses the result; "" when it reads back the same.
inline std::string round_trip(const gguf::File& f) {
  gguf::Writer w(f.alignment());
  w.set_version(f.version());
  for (const gguf::KeyValue& kv : f.metadata()) {
    // A non-default alignment is written by the constructor, first; a default one kept as is.
    if (kv.key == gguf::kAlignmentKey && f.alignment() != gguf::kDefaultAlignment) continue;
    w.add_value(kv.key, kv.value);
  }
  for (const gguf::TensorInfo& t : f.tensors()) {
    std::vector<uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    Status s = w.add_tensor(t.name, t.type, ne, t.data, t.n_bytes);
    if (!s.ok()) return "writer refused a tensor the reader accepted: " + s.message();
  }
  if (Status s = w.validate(); !s.ok())
    return "writer refused what the reader accepted: " + s.message();
  std::vector<uint8_t> bytes = w.to_bytes();
  auto g = gguf::File::parse("rewritten", bytes.data(), bytes.size());
  if (!g.ok()) return "rewritten file does not parse: " + g.error();
  const gguf::File& r = **g;
  if (r.version() != f.version() || r.alignment() != f.alignment()) return "header differs";
  if (r.metadata().size() != f.metadata().size()) return "metadata count differs";
  for (const gguf::KeyValue& kv : f.metadata()) {
    const gguf::Value* v = r.find(kv.key);
    if (!v || !same_value(*v, kv.value)) return "metadata value differs";
  }
  if (r.tensors().size() != f.tensors().size()) return "tensor count differs";
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const gguf::TensorInfo& a = f.tensors()[i];
    const gguf::TensorInfo& b = r.tensors()[i];
    if (a.name != b.name || a.type != b.type || a.n_dims != b.n_dims || a.ne != b.ne ||
        a.n_bytes != b.n_bytes || std::memcmp(a.data, b.data, a.n_bytes) != 0) {
      return "tensor " + std::to_string(i) + " differs";
    }
  }
  return "";
}

struct CheckResult {
  bool parsed = false;
  std::string error;      // the reader's message when it rejected the input
  std::string violation;  // non-empty: a check above failed
};

// `data` must be exactly `size` bytes long for ASan to see over-reads.
inline CheckResult check_input(const uint8_t* data, size_t size) {
  CheckResult out;
  const std::string name = "fuzz.gguf";
  auto f = gguf::File::parse(name, data, size);
  out.parsed = f.ok();
  if (!f.ok()) {
    out.error = f.error();
    size_t at = out.error.find(" at offset ");
    if (out.error.rfind(name + ": ", 0) != 0 || at == std::string::npos) {
      out.violation = "message not of the form '<file>: <field> at offset <N>: ...': " + out.error;
    } else if (std::strtoull(out.error.c_str() + at + 11, nullptr, 10) > size) {
      out.violation = "offset in the message lies past the input: " + out.error;
    }
    return out;
  }
  volatile uint64_t sink = walk(**f);
  (void)sink;
  out.violation = round_trip(**f);
  return out;
}

}  // namespace minnow::gguf_fuzz
