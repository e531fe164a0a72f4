#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>
#include <type_traits>

namespace minnow::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();
// Smallest possible encodings, used to bound counts by the bytes left before allocating.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;                  // key len, 1-byte key, type, u8
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // 1-byte name, 1 dim
constexpr uint64_t kMinStringBytes = 8;                          // length, no bytes
constexpr uint64_t kMinArrayBytes = 4 + 8;                       // elem type, count
// Reserve at most this many entries up front; beyond it vectors grow as entries are actually
// read, so a corrupt count costs nothing before the bytes behind it are seen.
constexpr uint64_t kMaxReserve = 1 << 16;

std::string printable(std::string_view s, size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

// A field name is text or a callable producing it. The callable form defers formatting to the
// (rare) failure, so reading a 262k-entry vocabulary builds no strings.
template <typename Name>
std::string field_text(const Name& name) {
  if constexpr (std::is_invocable_v<const Name&>) {
    return name();
  } else {
    return std::string(name);
  }
}

// Reads little-endian fields from [0, size); failures read "<file>: <field> at offset <N>: ...".
class Cursor {
 public:
  Cursor(const std::string& file, const uint8_t* data, uint64_t size)
      : file_(file), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }

  template <typename Name>
  Status fail(uint64_t offset, const Name& field, std::string_view problem) const {
    std::ostringstream os;
    os << file_ << ": " << field_text(field) << " at offset " << offset << ": " << problem;
    return Status::error(os.str());
  }

  template <typename T, typename Name>
  Status read(const Name& field, T* out) {
    if (remaining() < sizeof(T)) {
      return fail(pos_, field,
                  "file is truncated (need " + std::to_string(sizeof(T)) + " bytes, " +
                      std::to_string(remaining()) + " left)");
    }
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status();
  }

  template <typename Name>
  Status read_string(const Name& field, std::string_view* out, uint64_t max_len) {
    uint64_t at = pos_;
    uint64_t len = 0;
    MINNOW_RETURN_IF_ERROR(read(field, &len));
    if (len > remaining()) {
      return fail(at, field,
                  "length " + std::to_string(len) + " runs past the end of the file (" +
                      std::to_string(remaining()) + " bytes left)");
    }
    if (len > max_len) {
      return fail(
          at, field,
          "length " + std::to_string(len) + " exceeds the limit of " + std::to_string(max_len));
    }
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status();
  }

  // Advances over n bytes the caller has already checked are there.
  void skip_checked(uint64_t n) { pos_ += std::min(n, remaining()); }

 private:
  const std::string& file_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

std::string element_name(const std::string& name, uint64_t i) {
  return "element " + std::to_string(i) + " of " + name;
}

// Reads metadata values. Holds the file's budget of nested-array items: each of those costs a
// Value (~150 bytes) for 12 bytes of file, far more than any other entry, so it gets a cap.
class ValueReader {
 public:
  explicit ValueReader(Cursor& c) : c_(c) {}

  // `name` is the quoted printable key as it appears in messages: 'tokenizer.ggml.tokens'.
  Status read_value(const std::string& name, ValueType type, Value* out) {
    out->type = type;
    out->file_offset = c_.pos();
    auto field = [&] { return "value of " + name; };
    switch (type) {
      case ValueType::U8:
        return read_scalar<uint8_t>(field, &out->u64);
      case ValueType::I8:
        return read_scalar<int8_t>(field, &out->i64);
      case ValueType::U16:
        return read_scalar<uint16_t>(field, &out->u64);
      case ValueType::I16:
        return read_scalar<int16_t>(field, &out->i64);
      case ValueType::U32:
        return read_scalar<uint32_t>(field, &out->u64);
      case ValueType::I32:
        return read_scalar<int32_t>(field, &out->i64);
      case ValueType::U64:
        return read_scalar<uint64_t>(field, &out->u64);
      case ValueType::I64:
        return read_scalar<int64_t>(field, &out->i64);
      case ValueType::F32:
        return read_scalar<float>(field, &out->f64);
      case ValueType::F64:
        return read_scalar<double>(field, &out->f64);
      case ValueType::BOOL: {
        uint8_t v = 0;
        MINNOW_RETURN_IF_ERROR(c_.read(field, &v));
        if (v > 1) {
          return c_.fail(out->file_offset, field,
                         "bool has value " + std::to_string(v) + " (not 0 or 1)");
        }
        out->u64 = v;
        return Status();
      }
      case ValueType::STRING:
        return c_.read_string(field, &out->str, kNoLimit);
      case ValueType::ARRAY:
        return read_array(name, 0, out);
    }
    return c_.fail(out->file_offset, field, "unknown value type");  // type was checked
  }

 private:
  template <typename T, typename Name, typename Out>
  Status read_scalar(const Name& field, Out* out) {
    T v{};
    MINNOW_RETURN_IF_ERROR(c_.read(field, &v));
    *out = static_cast<Out>(v);
    return Status();
  }

  // Reads elem_type, count and the elements of an array whose header starts at the cursor.
  Status read_array(const std::string& name, int depth, Value* out) {
    auto type_field = [&] { return "array type of " + name; };
    uint64_t at = c_.pos();
    uint32_t raw_elem = 0;
    MINNOW_RETURN_IF_ERROR(c_.read(type_field, &raw_elem));
    if (!is_valid_value_type(raw_elem)) {
      return c_.fail(at, type_field, "unknown value type " + std::to_string(raw_elem));
    }
    out->elem_type = static_cast<ValueType>(raw_elem);
    if (out->elem_type == ValueType::ARRAY && depth + 1 >= kMaxArrayNesting) {
      return c_.fail(at, type_field,
                     "arrays nested deeper than " + std::to_string(kMaxArrayNesting) +
                         " levels are not supported");
    }
    auto count_field = [&] { return "array length of " + name; };
    at = c_.pos();
    MINNOW_RETURN_IF_ERROR(c_.read(count_field, &out->count));
    uint32_t elem_size = value_type_size(out->elem_type);
    // Each element takes at least this many bytes, which bounds the count by what is left.
    uint64_t min_elem = elem_size;
    if (out->elem_type == ValueType::STRING) min_elem = kMinStringBytes;
    if (out->elem_type == ValueType::ARRAY) min_elem = kMinArrayBytes;
    if (out->count > c_.remaining() / min_elem) {
      return c_.fail(at, count_field,
                     "length " + std::to_string(out->count) + " x " + std::to_string(min_elem) +
                         " bytes runs past the end of the file (" + std::to_string(c_.remaining()) +
                         " bytes left)");
    }

    if (elem_size) {
      uint64_t elems_at = c_.pos();
      out->elems = c_.here();
      if (out->elem_type == ValueType::BOOL) {
        for (uint64_t i = 0; i < out->count; ++i) {
          if (out->elems[i] > 1) {
            return c_.fail(
                elems_at + i, [&] { return element_name(name, i); },
                "bool has value " + std::to_string(out->elems[i]) + " (not 0 or 1)");
          }
        }
      }
      c_.skip_checked(out->count * elem_size);  // no overflow: count <= remaining / elem_size
      return Status();
    }

    if (out->elem_type == ValueType::STRING) {
      out->strings.reserve(std::min(out->count, kMaxReserve));
      for (uint64_t i = 0; i < out->count; ++i) {
        std::string_view s;
        MINNOW_RETURN_IF_ERROR(c_.read_string([&] { return element_name(name, i); }, &s, kNoLimit));
        out->strings.push_back(s);
      }
      return Status();
    }

    if (out->count > kMaxNestedArrayItems - nested_items_) {
      return c_.fail(at, count_field,
                     "length " + std::to_string(out->count) +
                         " takes the nested-array items past the limit of " +
                         std::to_string(kMaxNestedArrayItems) + " per file");
    }
    nested_items_ += out->count;
    out->items.reserve(std::min(out->count, kMaxReserve));
    for (uint64_t i = 0; i < out->count; ++i) {
      Value item;
      item.type = ValueType::ARRAY;
      item.file_offset = c_.pos();
      MINNOW_RETURN_IF_ERROR(read_array(name + "[" + std::to_string(i) + "]", depth + 1, &item));
      out->items.push_back(std::move(item));
    }
    return Status();
  }

  Cursor& c_;
  uint64_t nested_items_ = 0;
};

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Float to integer conversion is undefined outside the target range and for NaN: clamp.
int64_t saturate_to_i64(double v) {
  if (std::isnan(v)) return 0;
  if (v <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  if (v >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(v);
}

bool is_valid_alignment(uint64_t a) { return a != 0 && (a & (a - 1)) == 0 && a <= kMaxAlignment; }

// File offset of a tensor info record's data-offset field, which follows the name, n_dims, the
// dimensions and the type.
uint64_t offset_field_at(const TensorInfo& t) {
  return t.info_offset + 8 + t.name.size() + 4 + 8ull * t.n_dims + 4;
}

}  // namespace

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::U8:
      return "u8";
    case ValueType::I8:
      return "i8";
    case ValueType::U16:
      return "u16";
    case ValueType::I16:
      return "i16";
    case ValueType::U32:
      return "u32";
    case ValueType::I32:
      return "i32";
    case ValueType::F32:
      return "f32";
    case ValueType::BOOL:
      return "bool";
    case ValueType::STRING:
      return "string";
    case ValueType::ARRAY:
      return "array";
    case ValueType::U64:
      return "u64";
    case ValueType::I64:
      return "i64";
    case ValueType::F64:
      return "f64";
  }
  return "?";
}

bool is_valid_value_type(uint32_t raw) { return raw <= static_cast<uint32_t>(ValueType::F64); }

uint32_t value_type_size(ValueType type) {
  switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    case ValueType::STRING:
    case ValueType::ARRAY:
      return 0;
  }
  return 0;
}

double Value::elem_f64(uint64_t i) const {
  const uint8_t* p = elems + i * value_type_size(elem_type);
  switch (elem_type) {
    case ValueType::F32:
      return load<float>(p);
    case ValueType::F64:
      return load<double>(p);
    case ValueType::U64:
      return static_cast<double>(load<uint64_t>(p));
    default:
      return static_cast<double>(elem_i64(i));
  }
}

int64_t Value::elem_i64(uint64_t i) const {
  const uint8_t* p = elems + i * value_type_size(elem_type);
  switch (elem_type) {
    case ValueType::U8:
    case ValueType::BOOL:
      return load<uint8_t>(p);
    case ValueType::I8:
      return load<int8_t>(p);
    case ValueType::U16:
      return load<uint16_t>(p);
    case ValueType::I16:
      return load<int16_t>(p);
    case ValueType::U32:
      return load<uint32_t>(p);
    case ValueType::I32:
      return load<int32_t>(p);
    case ValueType::U64:
      return static_cast<int64_t>(load<uint64_t>(p));
    case ValueType::I64:
      return load<int64_t>(p);
    case ValueType::F32:
      return saturate_to_i64(load<float>(p));
    case ValueType::F64:
      return saturate_to_i64(load<double>(p));
    default:
      return 0;
  }
}

Value numeric_array(ValueType elem, uint64_t count, const void* elems) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.count = count;
  v.elems = static_cast<const uint8_t*>(elems);
  return v;
}

Value string_array(std::vector<std::string_view> strings) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType::STRING;
  v.count = strings.size();
  v.strings = std::move(strings);
  return v;
}

Value array_of_arrays(std::vector<Value> items) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType::ARRAY;
  v.count = items.size();
  v.items = std::move(items);
  return v;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (uint32_t i = 0; i < n_dims; ++i) {
    if (i) s += ", ";
    s += std::to_string(ne[i]);
  }
  return s + "]";
}

// ---------------------------------------------------------------------------------------------
// File

File::~File() {
  if (mapped_ && data_) munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::unique_ptr<File>> File::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::error(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return Status::error(path + ": file is empty (0 bytes), not a GGUF file");
  }
  void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) return Status::error(path + ": cannot mmap: " + std::strerror(e));

  std::unique_ptr<File> f(new File());
  f->path_ = path;
  f->data_ = static_cast<const uint8_t*>(p);
  f->size_ = static_cast<uint64_t>(st.st_size);
  f->mapped_ = true;
  MINNOW_RETURN_IF_ERROR(f->parse_all());
  return f;
}

Result<std::unique_ptr<File>> File::parse(std::string name, const uint8_t* data, size_t size) {
  std::unique_ptr<File> f(new File());
  f->path_ = std::move(name);
  f->data_ = data;
  f->size_ = data ? size : 0;
  MINNOW_RETURN_IF_ERROR(f->parse_all());
  return f;
}

Status File::parse_all() {
  Cursor c(path_, data_, size_);

  // --- header
  if (size_ < 4) {
    return c.fail(0, "magic", "file is truncated (" + std::to_string(size_) + " bytes)");
  }
  uint32_t magic = 0;
  MINNOW_RETURN_IF_ERROR(c.read("magic", &magic));
  if (magic != kMagic) {
    return c.fail(0, "magic",
                  "expected 'GGUF', found '" +
                      printable(std::string_view(reinterpret_cast<const char*>(data_), 4)) +
                      "' (not a GGUF file)");
  }
  MINNOW_RETURN_IF_ERROR(c.read("version", &version_));
  if (version_ != 2 && version_ != 3) {
    std::string why;
    if (version_ == 0) {
      why = "version 0 is invalid";
    } else if (version_ == 1) {
      why = "version 1 (32-bit counts) is obsolete and not supported; convert the file to v3";
    } else if ((version_ & 0xFFFF) == 0) {
      why = "version " + std::to_string(version_) +
            " looks byte-swapped: big-endian GGUF files are not supported";
    } else {
      why = "version " + std::to_string(version_) + " is newer than this reader (supports 2 and 3)";
    }
    return c.fail(4, "version", why);
  }

  uint64_t n_tensors = 0, n_kv = 0;
  MINNOW_RETURN_IF_ERROR(c.read("tensor count", &n_tensors));
  MINNOW_RETURN_IF_ERROR(c.read("metadata count", &n_kv));
  if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
    return c.fail(8, "tensor count",
                  std::to_string(n_tensors) + " tensors cannot fit in the " +
                      std::to_string(c.remaining()) + " bytes left in the file");
  }
  if (n_tensors > kMaxTensors) {
    return c.fail(
        8, "tensor count",
        std::to_string(n_tensors) + " tensors exceed the limit of " + std::to_string(kMaxTensors));
  }
  if (n_kv > c.remaining() / kMinKvBytes) {
    return c.fail(16, "metadata count",
                  std::to_string(n_kv) + " key/value pairs cannot fit in the " +
                      std::to_string(c.remaining()) + " bytes left in the file");
  }
  if (n_kv > kMaxMetadataEntries) {
    return c.fail(16, "metadata count",
                  std::to_string(n_kv) + " key/value pairs exceed the limit of " +
                      std::to_string(kMaxMetadataEntries));
  }

  // --- metadata
  ValueReader values(c);
  kvs_.reserve(std::min(n_kv, kMaxReserve));
  kv_index_.reserve(std::min(n_kv, kMaxReserve));
  for (uint64_t i = 0; i < n_kv; ++i) {
    KeyValue kv;
    uint64_t key_at = c.pos();
    auto key_field = [&] { return "key of metadata entry " + std::to_string(i); };
    MINNOW_RETURN_IF_ERROR(c.read_string(key_field, &kv.key, kMaxKeyBytes));
    if (kv.key.empty()) return c.fail(key_at, key_field, "key is empty");
    if (auto it = kv_index_.find(kv.key); it != kv_index_.end()) {
      uint64_t first_at = kvs_[it->second].value.file_offset - 4 - kv.key.size() - 8;
      return c.fail(key_at, key_field,
                    "duplicate key '" + printable(kv.key) + "' (first at offset " +
                        std::to_string(first_at) + ")");
    }
    std::string name = "'" + printable(kv.key) + "'";
    uint64_t type_at = c.pos();
    uint32_t raw_type = 0;
    auto type_field = [&] { return "value type of " + name; };
    MINNOW_RETURN_IF_ERROR(c.read(type_field, &raw_type));
    if (!is_valid_value_type(raw_type)) {
      return c.fail(type_at, type_field, "unknown value type " + std::to_string(raw_type));
    }
    MINNOW_RETURN_IF_ERROR(values.read_value(name, static_cast<ValueType>(raw_type), &kv.value));
    kv_index_.emplace(kv.key, kvs_.size());
    kvs_.push_back(std::move(kv));
  }

  if (const Value* a = find(kAlignmentKey)) {
    std::string field = "value of '" + std::string(kAlignmentKey) + "'";
    if (a->type != ValueType::U32) {
      return c.fail(
          a->file_offset, field,
          "alignment has type " + std::string(value_type_name(a->type)) + ", expected u32");
    }
    if (a->u64 == 0) return c.fail(a->file_offset, field, "alignment is 0");
    if ((a->u64 & (a->u64 - 1)) != 0) {
      return c.fail(a->file_offset, field,
                    "alignment " + std::to_string(a->u64) + " is not a power of two");
    }
    if (a->u64 > kMaxAlignment) {
      return c.fail(a->file_offset, field,
                    "alignment " + std::to_string(a->u64) + " exceeds the limit of " +
                        std::to_string(kMaxAlignment));
    }
    alignment_ = static_cast<uint32_t>(a->u64);
  }

  // --- tensor infos
  if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
    return c.fail(8, "tensor count",
                  std::to_string(n_tensors) + " tensors cannot fit in the " +
                      std::to_string(c.remaining()) + " bytes left after the metadata");
  }
  tensors_.reserve(std::min(n_tensors, kMaxReserve));
  tensor_index_.reserve(std::min(n_tensors, kMaxReserve));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.info_offset = c.pos();
    auto name_field = [&] { return "name of tensor " + std::to_string(i); };
    MINNOW_RETURN_IF_ERROR(c.read_string(name_field, &t.name, kMaxKeyBytes));
    if (t.name.empty()) return c.fail(t.info_offset, name_field, "name is empty");
    if (auto it = tensor_index_.find(t.name); it != tensor_index_.end()) {
      return c.fail(t.info_offset, name_field,
                    "duplicate tensor name '" + printable(t.name) + "' (first at offset " +
                        std::to_string(tensors_[it->second].info_offset) + ")");
    }
    std::string tn = "tensor '" + printable(t.name) + "'";
    uint64_t dims_at = c.pos();
    MINNOW_RETURN_IF_ERROR(c.read("n_dims of " + tn, &t.n_dims));
    if (t.n_dims == 0 || t.n_dims > kMaxDims) {
      return c.fail(
          dims_at, "n_dims of " + tn,
          "n_dims is " + std::to_string(t.n_dims) + ", must be 1.." + std::to_string(kMaxDims));
    }
    t.n_elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      uint64_t at = c.pos();
      std::string field = "dimension " + std::to_string(d) + " of " + tn;
      MINNOW_RETURN_IF_ERROR(c.read(field, &t.ne[d]));
      if (t.ne[d] == 0) return c.fail(at, field, "dimension is 0");
      if (t.ne[d] > static_cast<uint64_t>(INT64_MAX) ||
          __builtin_mul_overflow(t.n_elements, t.ne[d], &t.n_elements) ||
          t.n_elements > static_cast<uint64_t>(INT64_MAX)) {
        std::string dims;
        for (uint32_t k = 0; k <= d; ++k) dims += (k ? " x " : "") + std::to_string(t.ne[k]);
        return c.fail(at, field, "element count " + dims + " overflows 63 bits");
      }
    }
    uint64_t type_at = c.pos();
    uint32_t raw_type = 0;
    MINNOW_RETURN_IF_ERROR(c.read("type of " + tn, &raw_type));
    auto tt = tensor_type_traits(raw_type);
    if (!tt) {
      return c.fail(type_at, "type of " + tn, "unknown tensor type " + std::to_string(raw_type));
    }
    t.type = tt->type;
    if (t.ne[0] % tt->block_elems != 0) {
      return c.fail(dims_at + 4, "dimension 0 of " + tn,
                    "row of " + std::to_string(t.ne[0]) + " elements is not a multiple of the " +
                        std::string(tt->name) + " block size " + std::to_string(tt->block_elems));
    }
    if (t.n_elements / tt->block_elems > static_cast<uint64_t>(INT64_MAX) / tt->block_bytes) {
      return c.fail(dims_at + 4, "dimensions of " + tn,
                    "byte size of " + std::to_string(t.n_elements) + " " + std::string(tt->name) +
                        " elements overflows 63 bits");
    }
    t.n_bytes = t.n_elements / tt->block_elems * tt->block_bytes;
    uint64_t off_at = c.pos();
    MINNOW_RETURN_IF_ERROR(c.read("data offset of " + tn, &t.offset));
    if (t.offset % alignment_ != 0) {
      return c.fail(off_at, "data offset of " + tn,
                    "offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                        std::to_string(alignment_));
    }
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(t);
  }

  // --- data section
  uint64_t end_of_infos = c.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size_) {
    return c.fail(end_of_infos, "tensor data",
                  "data section would start at offset " + std::to_string(data_offset_) +
                      ", past the end of the file (" + std::to_string(size_) + " bytes)");
  }
  uint64_t data_bytes = data_offset_ <= size_ ? size_ - data_offset_ : 0;
  for (auto& t : tensors_) {
    uint64_t end = 0;
    if (__builtin_add_overflow(t.offset, t.n_bytes, &end) || end > data_bytes) {
      return c.fail(offset_field_at(t), "data offset of tensor '" + printable(t.name) + "'",
                    "data [" + std::to_string(t.offset) + ", +" + std::to_string(t.n_bytes) +
                        ") lies outside the " + std::to_string(data_bytes) +
                        "-byte data section (file is truncated or the offset is wrong)");
    }
    t.data = data_ + data_offset_ + t.offset;
  }
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset < b->offset || (a->offset == b->offset && a->info_offset < b->info_offset);
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* a = by_offset[i - 1];
    const TensorInfo* b = by_offset[i];
    if (b->offset < a->offset + a->n_bytes) {
      return c.fail(offset_field_at(*b), "data offset of tensor '" + printable(b->name) + "'",
                    "data [" + std::to_string(b->offset) + ", +" + std::to_string(b->n_bytes) +
                        ") overlaps tensor '" + printable(a->name) + "' [" +
                        std::to_string(a->offset) + ", +" + std::to_string(a->n_bytes) + ")");
    }
  }
  return Status();
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

uint64_t File::total_tensor_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors_) n += t.n_bytes;
  return n;
}

Status File::key_error(std::string_view key, const Value& v, std::string_view problem) const {
  return Status::error(path_ + ": value of '" + printable(key) + "' at offset " +
                       std::to_string(v.file_offset) + ": " + std::string(problem));
}

Result<const Value*> File::typed(std::string_view key, ValueType type) const {
  const Value* v = find(key);
  if (!v) return Status::error(path_ + ": metadata key '" + printable(key) + "' is missing");
  if (v->type != type) {
    return key_error(key, *v,
                     "has type " + std::string(value_type_name(v->type)) + ", expected " +
                         std::string(value_type_name(type)));
  }
  return v;
}

Result<uint32_t> File::get_u32(std::string_view key) const {
  auto v = typed(key, ValueType::U32);
  if (!v) return v.status();
  return static_cast<uint32_t>((*v)->u64);
}

Result<uint64_t> File::get_u64(std::string_view key) const {
  auto v = typed(key, ValueType::U64);
  if (!v) return v.status();
  return (*v)->u64;
}

Result<int32_t> File::get_i32(std::string_view key) const {
  auto v = typed(key, ValueType::I32);
  if (!v) return v.status();
  return static_cast<int32_t>((*v)->i64);
}

Result<int64_t> File::get_i64(std::string_view key) const {
  auto v = typed(key, ValueType::I64);
  if (!v) return v.status();
  return (*v)->i64;
}

Result<float> File::get_f32(std::string_view key) const {
  auto v = typed(key, ValueType::F32);
  if (!v) return v.status();
  return static_cast<float>((*v)->f64);
}

Result<double> File::get_f64(std::string_view key) const {
  auto v = typed(key, ValueType::F64);
  if (!v) return v.status();
  return (*v)->f64;
}

Result<bool> File::get_bool(std::string_view key) const {
  auto v = typed(key, ValueType::BOOL);
  if (!v) return v.status();
  return (*v)->u64 != 0;
}

Result<std::string_view> File::get_string(std::string_view key) const {
  auto v = typed(key, ValueType::STRING);
  if (!v) return v.status();
  return (*v)->str;
}

Result<uint64_t> File::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return Status::error(path_ + ": metadata key '" + printable(key) + "' is missing");
  switch (v->type) {
    case ValueType::U8:
    case ValueType::U16:
    case ValueType::U32:
    case ValueType::U64:
      return v->u64;
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
      if (v->i64 >= 0) return static_cast<uint64_t>(v->i64);
      return key_error(
          key, *v, "is negative (" + std::to_string(v->i64) + "), expected an unsigned integer");
    default:
      return key_error(
          key, *v, "has type " + std::string(value_type_name(v->type)) + ", expected an integer");
  }
}

Result<const Value*> File::get_array(std::string_view key, ValueType elem) const {
  auto v = typed(key, ValueType::ARRAY);
  if (!v) return v.status();
  if ((*v)->elem_type != elem) {
    return key_error(key, **v,
                     "is an array of " + std::string(value_type_name((*v)->elem_type)) +
                         ", expected an array of " + std::string(value_type_name(elem)));
  }
  return *v;
}

// ---------------------------------------------------------------------------------------------
// Writer

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  if (alignment_ != kDefaultAlignment) add_u32(kAlignmentKey, alignment_);
}

template <typename T>
void Writer::put(T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  kv_bytes_.insert(kv_bytes_.end(), p, p + sizeof v);
}

void Writer::put_string(std::string_view s) {
  put<uint64_t>(s.size());
  kv_bytes_.insert(kv_bytes_.end(), s.begin(), s.end());
}

void Writer::begin_kv(std::string_view key, ValueType type) {
  ++n_kv_;
  if (!keys_.insert(std::string(key)).second) {
    note_problem("duplicate metadata key '" + printable(key) + "'");
  }
  put_string(key);
  put<uint32_t>(static_cast<uint32_t>(type));
}

void Writer::add_u8(std::string_view k, uint8_t v) {
  begin_kv(k, ValueType::U8);
  put(v);
}
void Writer::add_i8(std::string_view k, int8_t v) {
  begin_kv(k, ValueType::I8);
  put(v);
}
void Writer::add_u16(std::string_view k, uint16_t v) {
  begin_kv(k, ValueType::U16);
  put(v);
}
void Writer::add_i16(std::string_view k, int16_t v) {
  begin_kv(k, ValueType::I16);
  put(v);
}
void Writer::add_u32(std::string_view k, uint32_t v) {
  if (k == kAlignmentKey && v != alignment_) {
    note_problem("general.alignment " + std::to_string(v) +
                 " differs from the writer's alignment " + std::to_string(alignment_) +
                 " (pass it to the constructor instead)");
  }
  begin_kv(k, ValueType::U32);
  put(v);
}
void Writer::add_i32(std::string_view k, int32_t v) {
  begin_kv(k, ValueType::I32);
  put(v);
}
void Writer::add_u64(std::string_view k, uint64_t v) {
  begin_kv(k, ValueType::U64);
  put(v);
}
void Writer::add_i64(std::string_view k, int64_t v) {
  begin_kv(k, ValueType::I64);
  put(v);
}
void Writer::add_f32(std::string_view k, float v) {
  begin_kv(k, ValueType::F32);
  put(v);
}
void Writer::add_f64(std::string_view k, double v) {
  begin_kv(k, ValueType::F64);
  put(v);
}
void Writer::add_bool(std::string_view k, bool v) {
  begin_kv(k, ValueType::BOOL);
  put<uint8_t>(v ? 1 : 0);
}
void Writer::add_string(std::string_view k, std::string_view v) {
  begin_kv(k, ValueType::STRING);
  put_string(v);
}

void Writer::add_string_array(std::string_view k, const std::vector<std::string>& v) {
  begin_kv(k, ValueType::ARRAY);
  put<uint32_t>(static_cast<uint32_t>(ValueType::STRING));
  put<uint64_t>(v.size());
  for (const auto& s : v) put_string(s);
}

void Writer::add_array_raw(std::string_view k, ValueType elem, uint64_t count, const void* elems) {
  begin_kv(k, ValueType::ARRAY);
  put<uint32_t>(static_cast<uint32_t>(elem));
  put<uint64_t>(count);
  const auto* p = static_cast<const uint8_t*>(elems);
  uint64_t n = count * value_type_size(elem);
  if (count != 0 && (value_type_size(elem) == 0 || !p)) {
    note_problem("add_array_raw('" + printable(k) + "') needs a fixed-size element type and " +
                 "elements, got " + std::to_string(count) + " of " +
                 std::string(value_type_name(elem)));
    return;
  }
  if (n) kv_bytes_.insert(kv_bytes_.end(), p, p + n);
}

void Writer::add_f32_array(std::string_view k, const std::vector<float>& v) {
  add_array_raw(k, ValueType::F32, v.size(), v.data());
}
void Writer::add_i32_array(std::string_view k, const std::vector<int32_t>& v) {
  add_array_raw(k, ValueType::I32, v.size(), v.data());
}
void Writer::add_u32_array(std::string_view k, const std::vector<uint32_t>& v) {
  add_array_raw(k, ValueType::U32, v.size(), v.data());
}

void Writer::put_array_body(const Value& v) {
  if (!is_valid_value_type(static_cast<uint32_t>(v.elem_type))) {
    note_problem("array element type " + std::to_string(static_cast<uint32_t>(v.elem_type)));
  }
  put<uint32_t>(static_cast<uint32_t>(v.elem_type));
  switch (v.elem_type) {
    case ValueType::STRING:
      put<uint64_t>(v.strings.size());
      for (std::string_view s : v.strings) put_string(s);
      break;
    case ValueType::ARRAY:
      put<uint64_t>(v.items.size());
      for (const Value& item : v.items) put_array_body(item);
      break;
    default: {
      put<uint64_t>(v.count);
      uint64_t n = v.count * value_type_size(v.elem_type);
      if (n && !v.elems) {
        note_problem("array of " + std::to_string(v.count) + " elements without elements");
      } else if (n) {
        kv_bytes_.insert(kv_bytes_.end(), v.elems, v.elems + n);
      }
    }
  }
}

void Writer::add_value(std::string_view k, const Value& v) {
  if (k == kAlignmentKey && v.type == ValueType::U32) {
    add_u32(k, static_cast<uint32_t>(v.u64));  // keeps the consistency check
    return;
  }
  if (!is_valid_value_type(static_cast<uint32_t>(v.type))) {
    note_problem("value type " + std::to_string(static_cast<uint32_t>(v.type)) + " of '" +
                 printable(k) + "'");
  }
  begin_kv(k, v.type);
  switch (v.type) {
    case ValueType::U8:
      put<uint8_t>(static_cast<uint8_t>(v.u64));
      break;
    case ValueType::I8:
      put<int8_t>(static_cast<int8_t>(v.i64));
      break;
    case ValueType::U16:
      put<uint16_t>(static_cast<uint16_t>(v.u64));
      break;
    case ValueType::I16:
      put<int16_t>(static_cast<int16_t>(v.i64));
      break;
    case ValueType::U32:
      put<uint32_t>(static_cast<uint32_t>(v.u64));
      break;
    case ValueType::I32:
      put<int32_t>(static_cast<int32_t>(v.i64));
      break;
    case ValueType::U64:
      put<uint64_t>(v.u64);
      break;
    case ValueType::I64:
      put<int64_t>(v.i64);
      break;
    case ValueType::F32:
      put<float>(static_cast<float>(v.f64));
      break;
    case ValueType::F64:
      put<double>(v.f64);
      break;
    case ValueType::BOOL:
      put<uint8_t>(v.u64 ? 1 : 0);
      break;
    case ValueType::STRING:
      put_string(v.str);
      break;
    case ValueType::ARRAY:
      put_array_body(v);
      break;
  }
}

Status Writer::add_tensor(std::string_view name, TensorType type, const std::vector<uint64_t>& ne,
                          const void* data, size_t n_bytes) {
  std::string what = "gguf writer: tensor '" + printable(name) + "'";
  if (name.empty() || name.size() > kMaxKeyBytes) {
    return Status::error(what + " name must be 1.." + std::to_string(kMaxKeyBytes) + " bytes");
  }
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims)) {
    return Status::error(what + " has " + std::to_string(ne.size()) + " dimensions (1..4 allowed)");
  }
  auto tt = tensor_type_traits(static_cast<uint32_t>(type));
  if (!tt) {
    return Status::error(what + " has unknown type " + std::to_string(static_cast<uint32_t>(type)));
  }
  uint64_t n = 1;
  for (uint64_t d : ne) {
    if (d == 0 || __builtin_mul_overflow(n, d, &n) || n > static_cast<uint64_t>(INT64_MAX)) {
      return Status::error(what + " has a zero dimension or too many elements");
    }
  }
  if (ne[0] % tt->block_elems != 0) {
    return Status::error(what + " row length " + std::to_string(ne[0]) +
                         " is not a multiple of the " + std::string(tt->name) + " block size " +
                         std::to_string(tt->block_elems));
  }
  uint64_t expect = n / tt->block_elems * tt->block_bytes;
  if (expect != n_bytes) {
    return Status::error(what + " needs " + std::to_string(expect) + " bytes of data, got " +
                         std::to_string(n_bytes));
  }
  for (const auto& t : tensors_) {
    if (t.name == name)
      return Status::error("gguf writer: duplicate tensor name '" + printable(name) + "'");
  }
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({std::string(name), type, ne, std::vector<uint8_t>(p, p + n_bytes)});
  return Status();
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out;
  auto put_raw = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  auto put_u32 = [&](uint32_t v) { put_raw(&v, 4); };
  auto put_u64 = [&](uint64_t v) { put_raw(&v, 8); };
  // An invalid alignment (tests build such files on purpose) pads to 1 rather than dividing by 0.
  const uint64_t unit = alignment_ ? alignment_ : 1;
  auto pad = [&] {
    while (out.size() % unit) out.push_back(0);
  };
  auto aligned = [&](uint64_t n) { return (n + unit - 1) / unit * unit; };

  put_u32(kMagic);
  put_u32(version_);
  put_u64(tensors_.size());
  put_u64(n_kv_);
  out.insert(out.end(), kv_bytes_.begin(), kv_bytes_.end());
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_u64(t.name.size());
    put_raw(t.name.data(), t.name.size());
    put_u32(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put_u64(d);
    put_u32(static_cast<uint32_t>(t.type));
    put_u64(offset);
    offset = aligned(offset + t.data.size());
  }
  pad();
  for (const auto& t : tensors_) {
    put_raw(t.data.data(), t.data.size());
    pad();
  }
  return out;
}

Status Writer::validate() const {
  if (!is_valid_alignment(alignment_)) {
    return Status::error("gguf writer: alignment " + std::to_string(alignment_) +
                         " is not a power of two in 1.." + std::to_string(kMaxAlignment));
  }
  if (version_ != 2 && version_ != 3) {
    return Status::error("gguf writer: version " + std::to_string(version_) + " (2 or 3 only)");
  }
  if (!problem_.empty()) return Status::error("gguf writer: " + problem_);
  return Status();
}

Status Writer::write(const std::string& path) const {
  MINNOW_RETURN_IF_ERROR(validate());
  std::vector<uint8_t> bytes = to_bytes();
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::error(tmp + ": cannot create: " + std::strerror(errno));
  size_t wrote = std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = wrote == bytes.size() && std::fflush(f) == 0;
  int e = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return Status::error(tmp + ": write failed: " + std::strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    e = errno;
    std::remove(tmp.c_str());
    return Status::error(path + ": cannot rename into place: " + std::strerror(e));
  }
  return Status();
}

}  // namespace minnow::gguf
