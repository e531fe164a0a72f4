// Touches everything a parsed gguf::File hands out: every metadata value, every array element
// (numeric elements through elem_i64/elem_f64, the first and last byte of every string),
// nested arrays, the typed accessors, and the first and last byte of every tensor's data.
// Under ASan an over-read anywhere in what the reader validated shows up here. Shared by the
// libFuzzer target and the corpus replay test so both check the same thing.
#pragma once

#include <cstdint>

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
    if (f.find(kv.key) != &kv.value) h += 1000;  // the index must agree with the list
    // Every accessor on every key: the right type succeeds, the others fail cleanly.
    h += f.get_u32(kv.key).ok() + f.get_u64(kv.key).ok() + f.get_i32(kv.key).ok() +
         f.get_i64(kv.key).ok() + f.get_f32(kv.key).ok() + f.get_f64(kv.key).ok() +
         f.get_bool(kv.key).ok() + f.get_string(kv.key).ok() + f.get_uint(kv.key).ok() +
         f.get_array(kv.key, kv.value.elem_type).ok();
  }
  for (const gguf::TensorInfo& t : f.tensors()) {
    h += touch(t.name) + t.n_elements + t.rows() + t.shape_string().size();
    h += t.data[0] + 7u * t.data[t.n_bytes - 1];
    if (f.find_tensor(t.name) != &t) h += 1000;
  }
  return h;
}

}  // namespace minnow::gguf_fuzz
