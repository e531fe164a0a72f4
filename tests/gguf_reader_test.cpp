// GGUF reader: every malformed case fails with its own message naming the file, the field and
// the offset; valid files of every value type, v2 and v3, and several alignments read back
// exactly what was written.
//
// Malformed files are hand-assembled with Bytes (which returns the offset of each field it
// writes, so expected offsets do not come from the reader under test) or written by the Writer
// and patched. With MINNOW_WRITE_SEEDS=<dir> every file a test builds is also saved there as a
// fuzzing seed (see fuzz/README.md).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "fuzz/gguf_check.h"
#include "gguf/gguf.h"

namespace minnow::gguf {
namespace {

constexpr char kName[] = "t.gguf";

// Saves `bytes` as a fuzzing seed named after the running test when MINNOW_WRITE_SEEDS is set.
void save_seed(const std::vector<uint8_t>& bytes, const std::string& prefix) {
  const char* dir = std::getenv("MINNOW_WRITE_SEEDS");
  if (!dir || bytes.size() > 64 * 1024) return;
  static std::map<std::string, int> used;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string base = prefix + "_" + info->test_suite_name() + "_" + info->name();
  int n = used[base]++;
  std::string path = std::string(dir) + "/" + base;
  if (n) path += '_' + std::to_string(n);
  path += ".gguf";
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

// A parse over an exact-size heap copy, so that ASan flags any read past the end.
struct Parsed {
  std::vector<uint8_t> bytes;
  Result<std::unique_ptr<File>> file;
  explicit Parsed(const std::vector<uint8_t>& b)
      : bytes(b.begin(), b.end()), file(File::parse(kName, bytes.data(), bytes.size())) {}
  const File& operator*() const { return **file; }
  const File* operator->() const { return file->get(); }
};

// Expects the parse to fail with "t.gguf: <expected>..." (expected includes field and offset).
void expect_error(const std::vector<uint8_t>& bytes, const std::string& expected) {
  save_seed(bytes, "bad");
  Parsed p(bytes);
  ASSERT_FALSE(p.file.ok()) << "parsed a malformed file; expected: " << expected;
  EXPECT_NE(p.file.error().find(std::string(kName) + ": " + expected), std::string::npos)
      << "got:      " << p.file.error() << "\nexpected: " << expected;
}

std::string at(const std::string& field, uint64_t offset) {
  return field + " at offset " + std::to_string(offset) + ": ";
}

// Little-endian byte assembly; each writer returns the offset where it wrote.
class Bytes {
 public:
  template <typename T>
  uint64_t put(T v) {
    uint64_t pos = b_.size();
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b_.insert(b_.end(), p, p + sizeof v);
    return pos;
  }
  uint64_t u8(uint8_t v) { return put(v); }
  uint64_t u32(uint32_t v) { return put(v); }
  uint64_t u64(uint64_t v) { return put(v); }
  uint64_t raw(std::string_view s) {
    uint64_t pos = b_.size();
    b_.insert(b_.end(), s.begin(), s.end());
    return pos;
  }
  uint64_t str(std::string_view s) {
    uint64_t pos = u64(s.size());
    raw(s);
    return pos;
  }
  void header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF");
    u32(version);
    u64(n_tensors);
    u64(n_kv);
  }
  // A key and its value type; returns the offset of the value.
  uint64_t key(std::string_view k, ValueType type) {
    str(k);
    u32(static_cast<uint32_t>(type));
    return size();
  }
  struct Info {
    uint64_t start, n_dims, dims, type, offset;
  };
  Info tensor(std::string_view name, const std::vector<uint64_t>& ne, TensorType type,
              uint64_t offset) {
    Info i{};
    i.start = str(name);
    i.n_dims = u32(static_cast<uint32_t>(ne.size()));
    i.dims = size();
    for (uint64_t d : ne) u64(d);
    i.type = u32(static_cast<uint32_t>(type));
    i.offset = u64(offset);
    return i;
  }
  void pad(uint64_t alignment) {
    while (b_.size() % alignment) b_.push_back(0);
  }
  void fill(uint64_t n, uint8_t v = 0xAB) { b_.insert(b_.end(), n, v); }
  void set_u32(uint64_t at, uint32_t v) { std::memcpy(&b_[at], &v, 4); }
  uint64_t size() const { return b_.size(); }
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

std::vector<uint8_t> iota_bytes(size_t n, uint8_t start = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(start + i * 7);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Header

TEST(GgufHeader, BadMagic) {
  Bytes b;
  b.raw("GGML");
  b.u32(3);
  b.u64(0);
  b.u64(0);
  expect_error(b.bytes(), at("magic", 0) + "expected 'GGUF', found 'GGML' (not a GGUF file)");
  std::vector<uint8_t> binary = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
  expect_error(binary, at("magic", 0) + "expected 'GGUF', found '\\x7fELF'");
}

TEST(GgufHeader, ShorterThanMagic) {
  expect_error({}, at("magic", 0) + "file is truncated (0 bytes)");
  expect_error({'G', 'G', 'U'}, at("magic", 0) + "file is truncated (3 bytes)");
}

TEST(GgufHeader, Version0) {
  Bytes b;
  b.header(0, 0, 0);
  expect_error(b.bytes(), at("version", 4) + "version 0 is invalid");
}

TEST(GgufHeader, Version1) {
  Bytes b;
  b.header(0, 0, 1);
  expect_error(b.bytes(), at("version", 4) + "version 1 (32-bit counts) is obsolete");
}

TEST(GgufHeader, FutureVersion) {
  Bytes b;
  b.header(0, 0, 4);
  expect_error(b.bytes(), at("version", 4) + "version 4 is newer than this reader");
  Bytes far;
  far.header(0, 0, 0x12345);
  expect_error(far.bytes(), at("version", 4) + "version 74565 is newer than this reader");
}

TEST(GgufHeader, BigEndianVersion) {
  Bytes b;
  b.header(0, 0, 0x03000000);
  expect_error(b.bytes(), at("version", 4) + "version 50331648 looks byte-swapped");
}

TEST(GgufHeader, TensorCountTooLargeForFile) {
  Bytes b;
  b.header(1000, 0);
  b.fill(100);
  expect_error(b.bytes(),
               at("tensor count", 8) + "1000 tensors cannot fit in the 100 bytes left in the file");
  Bytes huge;
  huge.header(0xFFFFFFFFFFFFFFFFull, 0);
  expect_error(huge.bytes(), at("tensor count", 8) + "18446744073709551615 tensors cannot fit");
}

TEST(GgufHeader, TensorCountTooLargeAfterMetadata) {
  // Two 33-byte infos fit in what follows the header, but not once the metadata is read.
  Bytes b;
  b.header(2, 1);
  b.key("k", ValueType::STRING);
  b.str(std::string(60, 'x'));
  expect_error(b.bytes(), at("tensor count", 8) +
                              "2 tensors cannot fit in the 0 bytes left after the metadata");
}

TEST(GgufHeader, MetadataCountTooLargeForFile) {
  Bytes b;
  b.header(0, 50);
  b.fill(100);
  expect_error(b.bytes(), at("metadata count", 16) +
                              "50 key/value pairs cannot fit in the 100 bytes left in the file");
  Bytes huge;
  huge.header(0, 0xFFFFFFFFFFFFFFFFull);
  expect_error(huge.bytes(), at("metadata count", 16) + "18446744073709551615 key/value pairs");
}

TEST(GgufHeader, CountLimitsBoundMemory) {
  // Counts the file could back but whose entries would cost ~10x the file in memory.
  Bytes t;
  t.header(kMaxTensors + 1, 0);
  t.fill((kMaxTensors + 1) * 33, 0);
  Parsed pt(t.bytes());
  ASSERT_FALSE(pt.file.ok());
  EXPECT_NE(pt.file.error().find(at("tensor count", 8) + "1048577 tensors exceed the limit"),
            std::string::npos)
      << pt.file.error();
  Bytes k;
  k.header(0, kMaxMetadataEntries + 1);
  k.fill((kMaxMetadataEntries + 1) * 14, 0);
  Parsed pk(k.bytes());
  ASSERT_FALSE(pk.file.ok());
  EXPECT_NE(pk.file.error().find(at("metadata count", 16) + "1048577 key/value pairs exceed"),
            std::string::npos)
      << pk.file.error();
}

// ---------------------------------------------------------------------------------------------
// Metadata

TEST(GgufMetadata, KeyLengthBeyondFile) {
  Bytes b;
  b.header(0, 1);
  uint64_t k = b.u64(0xFFFFFFFFFFFFFFFFull);
  b.fill(20);
  expect_error(b.bytes(), at("key of metadata entry 0", k) +
                              "length 18446744073709551615 runs past the end of the file (20 "
                              "bytes left)");
}

TEST(GgufMetadata, KeyLongerThanSpecLimit) {
  Bytes b;
  b.header(0, 1);
  b.key(std::string(70000, 'k'), ValueType::U8);
  b.u8(1);
  expect_error(b.bytes(),
               at("key of metadata entry 0", 24) + "length 70000 exceeds the limit of 65535");
}

TEST(GgufMetadata, EmptyKey) {
  Bytes b;
  b.header(0, 1);
  b.key("", ValueType::U8);
  b.u8(1);
  b.fill(8);
  expect_error(b.bytes(), at("key of metadata entry 0", 24) + "key is empty");
}

TEST(GgufMetadata, StringLengthBeyondFile) {
  Bytes b;
  b.header(0, 1);
  uint64_t v = b.key("general.name", ValueType::STRING);
  b.u64(0xFFFFFFFFFFFFFFFFull);
  b.raw("abc");
  expect_error(b.bytes(), at("value of 'general.name'", v) +
                              "length 18446744073709551615 runs past the end of the file (3 "
                              "bytes left)");
  Bytes one_over;
  one_over.header(0, 1);
  v = one_over.key("general.name", ValueType::STRING);
  one_over.u64(4);
  one_over.raw("abc");
  expect_error(one_over.bytes(), at("value of 'general.name'", v) + "length 4 runs past");
}

TEST(GgufMetadata, ArrayLengthBeyondFile) {
  Bytes b;
  b.header(0, 1);
  b.key("a", ValueType::ARRAY);
  b.u32(static_cast<uint32_t>(ValueType::F32));
  uint64_t n = b.u64(0xFFFFFFFFFFFFFFFFull);
  b.fill(16);
  expect_error(b.bytes(), at("array length of 'a'", n) +
                              "length 18446744073709551615 x 4 bytes runs past the end of the "
                              "file (16 bytes left)");
  // 5 u32 elements with 16 bytes left: one element short.
  Bytes c;
  c.header(0, 1);
  c.key("a", ValueType::ARRAY);
  c.u32(static_cast<uint32_t>(ValueType::U32));
  n = c.u64(5);
  c.fill(16);
  expect_error(c.bytes(), at("array length of 'a'", n) + "length 5 x 4 bytes runs past");
}

TEST(GgufMetadata, StringArrayLengthBeyondFile) {
  Bytes b;
  b.header(0, 1);
  b.key("tokenizer.ggml.tokens", ValueType::ARRAY);
  b.u32(static_cast<uint32_t>(ValueType::STRING));
  uint64_t n = b.u64(1u << 30);
  b.str("a");
  expect_error(b.bytes(), at("array length of 'tokenizer.ggml.tokens'", n) +
                              "length 1073741824 x 8 bytes runs past the end of the file");
}

TEST(GgufMetadata, StringArrayElementBeyondFile) {
  Bytes b;
  b.header(0, 1);
  b.key("tokenizer.ggml.tokens", ValueType::ARRAY);
  b.u32(static_cast<uint32_t>(ValueType::STRING));
  b.u64(3);
  b.str("<s>");
  uint64_t e = b.u64(0xFFFFFFFFFFFFFFFFull);
  b.str("x");
  expect_error(b.bytes(), at("element 1 of 'tokenizer.ggml.tokens'", e) +
                              "length 18446744073709551615 runs past the end of the file");
}

TEST(GgufMetadata, UnknownValueType) {
  Bytes b;
  b.header(0, 1);
  b.str("general.foo");
  uint64_t t = b.u32(13);
  b.u32(0);
  expect_error(b.bytes(), at("value type of 'general.foo'", t) + "unknown value type 13");
  Bytes big;
  big.header(0, 1);
  big.str("k");
  t = big.u32(0xFFFFFFFF);
  big.u64(0);
  expect_error(big.bytes(), at("value type of 'k'", t) + "unknown value type 4294967295");
}

TEST(GgufMetadata, UnknownArrayElementType) {
  Bytes b;
  b.header(0, 1);
  uint64_t t = b.key("a", ValueType::ARRAY);
  b.u32(99);
  b.u64(0);
  expect_error(b.bytes(), at("array type of 'a'", t) + "unknown value type 99");
}

TEST(GgufMetadata, NestedArrayElementErrorsNameThePath) {
  Bytes b;
  b.header(0, 1);
  b.key("a", ValueType::ARRAY);
  b.u32(static_cast<uint32_t>(ValueType::ARRAY));
  b.u64(2);
  b.u32(static_cast<uint32_t>(ValueType::U8));  // a[0]: 1 element
  b.u64(1);
  b.u8(7);
  uint64_t t = b.u32(42);  // a[1]: bad element type
  b.u64(0);
  expect_error(b.bytes(), at("array type of 'a'[1]", t) + "unknown value type 42");
}

TEST(GgufMetadata, ArraysNestedTooDeep) {
  Bytes b;
  b.header(0, 1);
  b.key("a", ValueType::ARRAY);
  uint64_t t = 0;
  for (int depth = 0; depth < kMaxArrayNesting; ++depth) {
    t = b.u32(static_cast<uint32_t>(ValueType::ARRAY));
    b.u64(1);
  }
  b.u32(static_cast<uint32_t>(ValueType::U8));
  b.u64(0);
  expect_error(b.bytes(), at("array type of 'a'[0][0][0]", t) +
                              "arrays nested deeper than 4 levels are not supported");
}

TEST(GgufMetadata, NestedArrayItemsAreBudgeted) {
  // 2^20 + 1 empty inner arrays: 12 bytes each in the file, a Value each in memory.
  Bytes b;
  b.header(0, 1);
  b.key("a", ValueType::ARRAY);
  b.u32(static_cast<uint32_t>(ValueType::ARRAY));
  uint64_t n = b.u64(kMaxNestedArrayItems + 1);
  for (uint64_t i = 0; i <= kMaxNestedArrayItems; ++i) {
    b.u32(static_cast<uint32_t>(ValueType::U8));
    b.u64(0);
  }
  Parsed p(b.bytes());
  ASSERT_FALSE(p.file.ok());
  EXPECT_NE(p.file.error().find(at("array length of 'a'", n) +
                                "length 1048577 takes the nested-array items past the limit"),
            std::string::npos)
      << p.file.error();
}

TEST(GgufMetadata, BoolOutOfRange) {
  Bytes b;
  b.header(0, 1);
  uint64_t v = b.key("flag", ValueType::BOOL);
  b.u8(2);
  expect_error(b.bytes(), at("value of 'flag'", v) + "bool has value 2 (not 0 or 1)");
  Bytes arr;
  arr.header(0, 1);
  arr.key("flags", ValueType::ARRAY);
  arr.u32(static_cast<uint32_t>(ValueType::BOOL));
  arr.u64(3);
  arr.u8(1);
  arr.u8(0);
  uint64_t e = arr.u8(255);
  expect_error(arr.bytes(), at("element 2 of 'flags'", e) + "bool has value 255");
}

TEST(GgufMetadata, DuplicateKey) {
  Bytes b;
  b.header(0, 3);
  uint64_t first = b.size();
  b.key("general.name", ValueType::STRING);
  b.str("a");
  b.key("general.x", ValueType::U8);
  b.u8(1);
  uint64_t second = b.size();
  b.key("general.name", ValueType::U32);
  b.u32(5);
  expect_error(b.bytes(), at("key of metadata entry 2", second) +
                              "duplicate key 'general.name' (first at offset " +
                              std::to_string(first) + ")");
}

TEST(GgufMetadata, NonPrintableKeyIsEscaped) {
  Bytes b;
  b.header(0, 1);
  uint64_t t = b.key(std::string("a\nb\xff", 4), static_cast<ValueType>(77));
  expect_error(b.bytes(), at("value type of 'a\\x0ab\\xff'", t - 4) + "unknown value type 77");
}

// ---------------------------------------------------------------------------------------------
// general.alignment

std::vector<uint8_t> alignment_file(ValueType type, uint64_t value, uint64_t* value_at) {
  Bytes b;
  b.header(0, 1);
  *value_at = b.key("general.alignment", type);
  if (value_type_size(type) == 8) {
    b.u64(value);
  } else if (type == ValueType::STRING) {
    b.str("32");
  } else {
    b.u32(static_cast<uint32_t>(value));
  }
  return b.bytes();
}

TEST(GgufAlignment, Zero) {
  uint64_t v = 0;
  auto b = alignment_file(ValueType::U32, 0, &v);
  expect_error(b, at("value of 'general.alignment'", v) + "alignment is 0");
}

TEST(GgufAlignment, NotPowerOfTwo) {
  uint64_t v = 0;
  auto b = alignment_file(ValueType::U32, 48, &v);
  expect_error(b, at("value of 'general.alignment'", v) + "alignment 48 is not a power of two");
  b = alignment_file(ValueType::U32, 0xFFFFFFFF, &v);
  expect_error(b, at("value of 'general.alignment'", v) + "alignment 4294967295 is not a power");
}

TEST(GgufAlignment, Huge) {
  uint64_t v = 0;
  auto b = alignment_file(ValueType::U32, 0x80000000u, &v);
  expect_error(b, at("value of 'general.alignment'", v) +
                      "alignment 2147483648 exceeds the limit of 1048576");
}

TEST(GgufAlignment, NotU32) {
  uint64_t v = 0;
  auto b = alignment_file(ValueType::U64, 32, &v);
  expect_error(b, at("value of 'general.alignment'", v) + "alignment has type u64, expected u32");
  b = alignment_file(ValueType::I32, 32, &v);
  expect_error(b, at("value of 'general.alignment'", v) + "alignment has type i32, expected u32");
  b = alignment_file(ValueType::STRING, 0, &v);
  expect_error(b, at("value of 'general.alignment'", v) + "alignment has type string");
}

// ---------------------------------------------------------------------------------------------
// Tensor infos and data

// A file with tensors "a" and "b" (F32 [8] each, 32 bytes) at the given offsets, with
// `data_bytes` of data after the aligned end of the infos. Returns the info offsets.
std::vector<uint8_t> two_tensors(uint64_t off_a, uint64_t off_b, uint64_t data_bytes,
                                 Bytes::Info* a = nullptr, Bytes::Info* b = nullptr) {
  Bytes f;
  f.header(2, 0);
  Bytes::Info ia = f.tensor("a", {8}, TensorType::F32, off_a);
  Bytes::Info ib = f.tensor("b", {8}, TensorType::F32, off_b);
  f.pad(kDefaultAlignment);
  f.fill(data_bytes);
  if (a) *a = ia;
  if (b) *b = ib;
  return f.bytes();
}

TEST(GgufTensors, HandBuiltReferenceFileParses) {
  Parsed p(two_tensors(0, 32, 64));
  ASSERT_TRUE(p.file.ok()) << p.file.error();
  EXPECT_EQ(p->tensors().size(), 2u);
  EXPECT_EQ(p->data_offset(), 96u);  // 24 header + 2 * 33 infos = 90, aligned to 32
  EXPECT_EQ(p->find_tensor("b")->data, p.bytes.data() + 96 + 32);
}

TEST(GgufTensors, NameLengthBeyondFile) {
  Bytes f;
  f.header(1, 0);
  uint64_t n = f.u64(0xFFFFFFFFFFFFFFFFull);
  f.fill(40);
  expect_error(f.bytes(), at("name of tensor 0", n) + "length 18446744073709551615 runs past");
}

TEST(GgufTensors, EmptyName) {
  Bytes f;
  f.header(1, 0);
  Bytes::Info i = f.tensor("", {8}, TensorType::F32, 0);
  f.pad(32);
  f.fill(32);
  expect_error(f.bytes(), at("name of tensor 0", i.start) + "name is empty");
}

TEST(GgufTensors, DuplicateName) {
  Bytes f;
  f.header(2, 0);
  Bytes::Info a = f.tensor("blk.0.attn_q.weight", {8}, TensorType::F32, 0);
  Bytes::Info b = f.tensor("blk.0.attn_q.weight", {8}, TensorType::F32, 32);
  f.pad(32);
  f.fill(64);
  expect_error(f.bytes(), at("name of tensor 1", b.start) +
                              "duplicate tensor name 'blk.0.attn_q.weight' (first at offset " +
                              std::to_string(a.start) + ")");
}

TEST(GgufTensors, TooManyDims) {
  Bytes f;
  f.header(1, 0);
  Bytes::Info i = f.tensor("w", {2, 2, 2, 2, 2}, TensorType::F32, 0);
  f.pad(32);
  f.fill(128);
  expect_error(f.bytes(), at("n_dims of tensor 'w'", i.n_dims) + "n_dims is 5, must be 1..4");
  Bytes huge;
  huge.header(1, 0);
  i = huge.tensor("w", {}, TensorType::F32, 0);
  huge.set_u32(i.n_dims, 0xFFFFFFFF);
  huge.fill(64);
  expect_error(huge.bytes(), at("n_dims of tensor 'w'", i.n_dims) + "n_dims is 4294967295");
}

TEST(GgufTensors, ZeroDims) {
  Bytes f;
  f.header(1, 0);
  Bytes::Info i = f.tensor("w", {}, TensorType::F32, 0);
  f.fill(64);
  expect_error(f.bytes(), at("n_dims of tensor 'w'", i.n_dims) + "n_dims is 0, must be 1..4");
}

TEST(GgufTensors, DimensionZero) {
  Bytes f;
  f.header(1, 0);
  Bytes::Info i = f.tensor("w", {8, 0, 3}, TensorType::F32, 0);
  f.pad(32);
  f.fill(64);
  expect_error(f.bytes(), at("dimension 1 of tensor 'w'", i.dims + 8) + "dimension is 0");
}

TEST(GgufTensors, DimensionProductOverflows) {
  Bytes f;
  f.header(1, 0);
  Bytes::Info i = f.tensor("w", {1ull << 32, 1ull << 31, 2}, TensorType::F32, 0);
  f.pad(32);
  f.fill(64);
  expect_error(f.bytes(), at("dimension 1 of tensor 'w'", i.dims + 8) +
                              "element count 4294967296 x 2147483648 overflows 63 bits");
  Bytes wrap;  // wraps to exactly 0 in 64-bit arithmetic
  wrap.header(1, 0);
  i = wrap.tensor("w", {1ull << 32, 1ull << 32}, TensorType::F32, 0);
  wrap.pad(32);
  wrap.fill(64);
  expect_error(wrap.bytes(), at("dimension 1 of tensor 'w'", i.dims + 8) + "element count");
  Bytes single;
  single.header(1, 0);
  i = single.tensor("w", {0xFFFFFFFFFFFFFFFFull}, TensorType::F32, 0);
  single.pad(32);
  single.fill(64);
  expect_error(single.bytes(), at("dimension 0 of tensor 'w'", i.dims) +
                                   "element count 18446744073709551615 overflows 63 bits");
}

TEST(GgufTensors, ByteSizeOverflows) {
  // 2^62 elements fit in 63 bits, 2^62 F64 values of 8 bytes do not.
  Bytes f;
  f.header(1, 0);
  Bytes::Info i = f.tensor("w", {1ull << 31, 1ull << 31}, TensorType::F64, 0);
  f.pad(32);
  f.fill(64);
  expect_error(f.bytes(), at("dimensions of tensor 'w'", i.dims) +
                              "byte size of 4611686018427387904 F64 elements overflows 63 bits");
}

TEST(GgufTensors, UnknownType) {
  for (uint32_t raw : {4u, 5u, 31u, 36u, 40u, 1000u, 0xFFFFFFFFu}) {
    Bytes f;
    f.header(1, 0);
    Bytes::Info i = f.tensor("w", {32}, TensorType::F32, 0);
    f.set_u32(i.type, raw);
    f.pad(32);
    f.fill(128);
    expect_error(f.bytes(),
                 at("type of tensor 'w'", i.type) + "unknown tensor type " + std::to_string(raw));
  }
}

TEST(GgufTensors, RowNotWholeBlocks) {
  Bytes f;
  f.header(1, 0);
  Bytes::Info i = f.tensor("w", {40, 2}, TensorType::Q4_0, 0);
  f.pad(32);
  f.fill(64);
  expect_error(f.bytes(), at("dimension 0 of tensor 'w'", i.dims) +
                              "row of 40 elements is not a multiple of the Q4_0 block size 32");
}

TEST(GgufTensors, DataBeyondFile) {
  Bytes::Info a, b;
  auto bytes = two_tensors(0, 32, 63, &a, &b);  // b's last byte is missing
  expect_error(bytes, at("data offset of tensor 'b'", b.offset) +
                          "data [32, +32) lies outside the 63-byte data section");
  bytes = two_tensors(0, 1ull << 40, 64, &a, &b);
  expect_error(bytes, at("data offset of tensor 'b'", b.offset) + "data [1099511627776, +32)");
}

TEST(GgufTensors, DataOffsetWrapsAround) {
  Bytes::Info a, b;
  auto bytes = two_tensors(0, 0xFFFFFFFFFFFFFFE0ull, 64, &a, &b);  // aligned, but + 32 wraps
  expect_error(bytes, at("data offset of tensor 'b'", b.offset) +
                          "data [18446744073709551584, +32) lies outside");
}

TEST(GgufTensors, DataSectionStartsPastEnd) {
  Bytes f;
  f.header(1, 0);
  f.tensor("w", {8}, TensorType::F32, 0);
  uint64_t end = f.size();  // 24 + 8 + 1 + 4 + 8 + 4 + 8 = 57, data would start at 64
  expect_error(f.bytes(), at("tensor data", end) +
                              "data section would start at offset 64, past the end of the file "
                              "(57 bytes)");
}

TEST(GgufTensors, MisalignedOffset) {
  Bytes::Info a, b;
  auto bytes = two_tensors(0, 48, 96, &a, &b);
  expect_error(bytes, at("data offset of tensor 'b'", b.offset) +
                          "offset 48 is not a multiple of the alignment 32");
  // The alignment comes from general.alignment when present.
  Bytes f;
  f.header(1, 1);
  f.key("general.alignment", ValueType::U32);
  f.u32(64);
  Bytes::Info i = f.tensor("w", {8}, TensorType::F32, 32);
  f.pad(64);
  f.fill(128);
  expect_error(f.bytes(), at("data offset of tensor 'w'", i.offset) +
                              "offset 32 is not a multiple of the alignment 64");
}

TEST(GgufTensors, OverlappingData) {
  Bytes f;
  f.header(2, 0);
  f.tensor("a", {16}, TensorType::F32, 0);  // [0, 64)
  Bytes::Info b = f.tensor("b", {8}, TensorType::F32, 32);
  f.pad(32);
  f.fill(128);
  expect_error(f.bytes(), at("data offset of tensor 'b'", b.offset) +
                              "data [32, +32) overlaps tensor 'a' [0, +64)");
  // Same offset, listed in reverse order of offset.
  Bytes g;
  g.header(3, 0);
  g.tensor("x", {8}, TensorType::F32, 64);
  g.tensor("y", {8}, TensorType::F32, 0);
  Bytes::Info z = g.tensor("z", {8}, TensorType::F32, 64);
  g.pad(32);
  g.fill(96);
  expect_error(g.bytes(), at("data offset of tensor 'z'", z.offset) +
                              "data [64, +32) overlaps tensor 'x' [64, +32)");
}

// ---------------------------------------------------------------------------------------------
// Valid files written by the Writer

Writer every_type_writer(uint32_t alignment) {
  Writer w(alignment);
  w.add_string("general.architecture", "llama");
  w.add_u8("t.u8", 200);
  w.add_i8("t.i8", -100);
  w.add_u16("t.u16", 60000);
  w.add_i16("t.i16", -30000);
  w.add_u32("t.u32", 4000000000u);
  w.add_i32("t.i32", -2000000000);
  w.add_u64("t.u64", 0xFFFFFFFFFFFFFFFFull);
  w.add_i64("t.i64", std::numeric_limits<int64_t>::min());
  w.add_f32("t.f32", 0.15625f);
  w.add_f64("t.f64", -1e300);
  w.add_bool("t.true", true);
  w.add_bool("t.false", false);
  w.add_string("t.string", "h\xc3\xa9llo, \"world\"\n");
  w.add_string("t.empty_string", "");
  w.add_string_array("t.strings", {"<s>", "", "\xe2\x96\x81the", std::string(300, 'z')});
  w.add_f32_array("t.f32s", {1.5f, -2.25f, 1e-30f});
  w.add_i32_array("t.i32s", {-1, 0, 2147483647});
  w.add_u32_array("t.u32s", {});
  static const uint8_t u8s[] = {0, 1, 255};
  w.add_array_raw("t.u8s", ValueType::U8, 3, u8s);
  static const int8_t i8s[] = {-128, 127};
  w.add_array_raw("t.i8s", ValueType::I8, 2, i8s);
  static const uint16_t u16s[] = {65535, 1};
  w.add_array_raw("t.u16s", ValueType::U16, 2, u16s);
  static const int16_t i16s[] = {-32768};
  w.add_array_raw("t.i16s", ValueType::I16, 1, i16s);
  static const uint64_t u64s[] = {1ull << 63, 3};
  w.add_array_raw("t.u64s", ValueType::U64, 2, u64s);
  static const int64_t i64s[] = {-5, 1ll << 62};
  w.add_array_raw("t.i64s", ValueType::I64, 2, i64s);
  static const double f64s[] = {0.1, -0.0};
  w.add_array_raw("t.f64s", ValueType::F64, 2, f64s);
  static const uint8_t bools[] = {1, 0, 1};
  w.add_array_raw("t.bools", ValueType::BOOL, 3, bools);
  static const int32_t row0[] = {1, 2, 3};
  w.add_value("t.nested",
              array_of_arrays({numeric_array(ValueType::I32, 3, row0), string_array({"x", "yz"}),
                               array_of_arrays({numeric_array(ValueType::U8, 0, nullptr)})}));
  return w;
}

void add_tensors(Writer& w) {
  auto f32 = iota_bytes(4 * 6 * 2);  // F32 [6, 2]
  ASSERT_TRUE(w.add_tensor("a.f32", TensorType::F32, {6, 2}, f32.data(), f32.size()).ok());
  auto q8 = iota_bytes(34 * 3, 9);  // Q8_0 [32, 3]: 3 blocks of 34 bytes
  ASSERT_TRUE(w.add_tensor("b.q8_0", TensorType::Q8_0, {32, 3}, q8.data(), q8.size()).ok());
  auto q4k = iota_bytes(144 * 2, 3);  // Q4_K [256, 1, 2, 1]
  ASSERT_TRUE(
      w.add_tensor("c.q4_k", TensorType::Q4_K, {256, 1, 2, 1}, q4k.data(), q4k.size()).ok());
  auto f16 = iota_bytes(2 * 3, 5);  // F16 [3]: 6 bytes, so the next tensor needs padding
  ASSERT_TRUE(w.add_tensor("d.f16", TensorType::F16, {3}, f16.data(), f16.size()).ok());
}

TEST(GgufWriter, EveryValueTypeRoundTrips) {
  Writer w = every_type_writer(kDefaultAlignment);
  add_tensors(w);
  ASSERT_TRUE(w.validate().ok()) << w.validate().message();
  auto bytes = w.to_bytes();
  save_seed(bytes, "valid");
  Parsed p(bytes);
  ASSERT_TRUE(p.file.ok()) << p.file.error();
  const File& f = *p;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 28u);
  EXPECT_EQ(f.metadata()[0].key, "general.architecture");  // order preserved
  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.find("t.u8")->u64, 200u);
  EXPECT_EQ(f.find("t.i8")->i64, -100);
  EXPECT_EQ(f.find("t.u16")->u64, 60000u);
  EXPECT_EQ(f.find("t.i16")->i64, -30000);
  EXPECT_EQ(*f.get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(*f.get_i32("t.i32"), -2000000000);
  EXPECT_EQ(*f.get_u64("t.u64"), 0xFFFFFFFFFFFFFFFFull);
  EXPECT_EQ(*f.get_i64("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*f.get_f32("t.f32"), 0.15625f);
  EXPECT_EQ(*f.get_f64("t.f64"), -1e300);
  EXPECT_TRUE(*f.get_bool("t.true"));
  EXPECT_FALSE(*f.get_bool("t.false"));
  EXPECT_EQ(*f.get_string("t.string"), "h\xc3\xa9llo, \"world\"\n");
  EXPECT_EQ(*f.get_string("t.empty_string"), "");

  const Value* s = *f.get_array("t.strings", ValueType::STRING);
  ASSERT_EQ(s->count, 4u);
  ASSERT_EQ(s->strings.size(), 4u);
  EXPECT_EQ(s->strings[0], "<s>");
  EXPECT_EQ(s->strings[1], "");
  EXPECT_EQ(s->strings[2], "\xe2\x96\x81the");
  EXPECT_EQ(s->strings[3], std::string(300, 'z'));

  const Value* f32s = *f.get_array("t.f32s", ValueType::F32);
  ASSERT_EQ(f32s->count, 3u);
  EXPECT_EQ(f32s->elem_f64(0), 1.5);
  EXPECT_EQ(f32s->elem_f64(1), -2.25);
  EXPECT_EQ(static_cast<float>(f32s->elem_f64(2)), 1e-30f);
  const Value* i32s = *f.get_array("t.i32s", ValueType::I32);
  EXPECT_EQ(i32s->elem_i64(0), -1);
  EXPECT_EQ(i32s->elem_i64(2), 2147483647);
  EXPECT_EQ((*f.get_array("t.u32s", ValueType::U32))->count, 0u);
  EXPECT_EQ((*f.get_array("t.u8s", ValueType::U8))->elem_i64(2), 255);
  EXPECT_EQ((*f.get_array("t.i8s", ValueType::I8))->elem_i64(0), -128);
  EXPECT_EQ((*f.get_array("t.u16s", ValueType::U16))->elem_i64(0), 65535);
  EXPECT_EQ((*f.get_array("t.i16s", ValueType::I16))->elem_i64(0), -32768);
  EXPECT_EQ((*f.get_array("t.u64s", ValueType::U64))->elem_f64(0), 9223372036854775808.0);
  EXPECT_EQ((*f.get_array("t.i64s", ValueType::I64))->elem_i64(1), 1ll << 62);
  EXPECT_EQ((*f.get_array("t.f64s", ValueType::F64))->elem_f64(0), 0.1);
  EXPECT_TRUE(std::signbit((*f.get_array("t.f64s", ValueType::F64))->elem_f64(1)));
  const Value* bools = *f.get_array("t.bools", ValueType::BOOL);
  EXPECT_EQ(bools->elem_i64(0), 1);
  EXPECT_EQ(bools->elem_i64(1), 0);

  const Value* nested = *f.get_array("t.nested", ValueType::ARRAY);
  ASSERT_EQ(nested->items.size(), 3u);
  EXPECT_EQ(nested->items[0].elem_type, ValueType::I32);
  ASSERT_EQ(nested->items[0].count, 3u);
  EXPECT_EQ(nested->items[0].elem_i64(2), 3);
  EXPECT_EQ(nested->items[1].elem_type, ValueType::STRING);
  ASSERT_EQ(nested->items[1].strings.size(), 2u);
  EXPECT_EQ(nested->items[1].strings[1], "yz");
  EXPECT_EQ(nested->items[2].elem_type, ValueType::ARRAY);
  ASSERT_EQ(nested->items[2].items.size(), 1u);
  EXPECT_EQ(nested->items[2].items[0].elem_type, ValueType::U8);
  EXPECT_EQ(nested->items[2].items[0].count, 0u);

  ASSERT_EQ(f.tensors().size(), 4u);
  const TensorInfo* q4k = f.find_tensor("c.q4_k");
  ASSERT_NE(q4k, nullptr);
  EXPECT_EQ(q4k->type, TensorType::Q4_K);
  EXPECT_EQ(q4k->n_dims, 4u);
  EXPECT_EQ(q4k->shape_string(), "[256, 1, 2, 1]");
  EXPECT_EQ(q4k->n_elements, 512u);
  EXPECT_EQ(q4k->rows(), 2u);
  EXPECT_EQ(q4k->n_bytes, 288u);
  EXPECT_EQ(f.total_tensor_bytes(), 48u + 102 + 288 + 6);
  auto q4k_bytes = iota_bytes(288, 3);
  EXPECT_EQ(std::memcmp(q4k->data, q4k_bytes.data(), 288), 0);
}

TEST(GgufWriter, Version2ReadsLikeVersion3) {
  Writer w3 = every_type_writer(kDefaultAlignment);
  add_tensors(w3);
  Writer w2 = every_type_writer(kDefaultAlignment);
  add_tensors(w2);
  w2.set_version(2);
  auto b2 = w2.to_bytes();
  save_seed(b2, "valid");
  auto b3 = w3.to_bytes();
  ASSERT_EQ(b2.size(), b3.size());
  EXPECT_EQ(b2[4], 2);
  EXPECT_TRUE(std::equal(b2.begin() + 8, b2.end(), b3.begin() + 8));  // only the version differs
  Parsed p2(b2);
  ASSERT_TRUE(p2.file.ok()) << p2.file.error();
  EXPECT_EQ(p2->version(), 2u);
  EXPECT_EQ(*p2->get_u64("t.u64"), 0xFFFFFFFFFFFFFFFFull);
  EXPECT_EQ((*p2->get_array("t.strings", ValueType::STRING))->strings[2], "\xe2\x96\x81the");
  EXPECT_EQ(p2->tensors().size(), 4u);
}

TEST(GgufWriter, AlignmentRoundTrips) {
  for (uint32_t alignment : {1u, 8u, 32u, 64u, 4096u}) {
    SCOPED_TRACE("alignment " + std::to_string(alignment));
    Writer w(alignment);
    w.add_string("general.architecture", "llama");
    add_tensors(w);
    auto bytes = w.to_bytes();
    if (alignment != 4096) save_seed(bytes, "valid");
    Parsed p(bytes);
    ASSERT_TRUE(p.file.ok()) << p.file.error();
    EXPECT_EQ(p->alignment(), alignment);
    EXPECT_EQ(p->has("general.alignment"), alignment != kDefaultAlignment);
    if (alignment != kDefaultAlignment) {
      EXPECT_EQ(*p->get_u32("general.alignment"), alignment);
    }
    EXPECT_EQ(p->data_offset() % alignment, 0u);
    for (const TensorInfo& t : p->tensors()) {
      EXPECT_EQ((p->data_offset() + t.offset) % alignment, 0u) << t.name;
      EXPECT_EQ(t.data, p.bytes.data() + p->data_offset() + t.offset);
    }
    auto d = iota_bytes(6, 5);
    EXPECT_EQ(std::memcmp(p->find_tensor("d.f16")->data, d.data(), 6), 0);
  }
}

TEST(GgufWriter, WriteRefusesInvalidFilesButToBytesBuildsThem) {
  Writer zero(0);
  EXPECT_FALSE(zero.validate().ok());
  EXPECT_NE(zero.write(::testing::TempDir() + "/never.gguf").message().find("alignment 0"),
            std::string::npos);
  uint64_t v = 24 + 8 + 17 + 4;
  expect_error(zero.to_bytes(), at("value of 'general.alignment'", v) + "alignment is 0");

  Writer dup;
  dup.add_u8("k", 1);
  dup.add_u8("k", 2);
  EXPECT_NE(dup.validate().message().find("duplicate metadata key 'k'"), std::string::npos);
  expect_error(dup.to_bytes(), at("key of metadata entry 1", 24 + 14) + "duplicate key 'k'");

  Writer manual;
  manual.add_u32("general.alignment", 64);
  EXPECT_NE(manual.validate().message().find("differs from the writer's alignment 32"),
            std::string::npos);
  Writer strings;
  strings.add_array_raw("s", ValueType::STRING, 2, nullptr);
  EXPECT_NE(strings.validate().message().find("needs a fixed-size element type"),
            std::string::npos);
  Writer no_elems;
  no_elems.add_array_raw("f", ValueType::F32, 2, nullptr);
  EXPECT_FALSE(no_elems.validate().ok());
  Writer bad_type;
  bad_type.add_value("v", numeric_array(static_cast<ValueType>(13), 0, nullptr));
  EXPECT_NE(bad_type.validate().message().find("array element type 13"), std::string::npos);
  Writer empty_ok;
  empty_ok.add_array_raw("e", ValueType::F32, 0, nullptr);
  EXPECT_TRUE(empty_ok.validate().ok()) << empty_ok.validate().message();
}

TEST(GgufWriter, AddTensorChecksItsArguments) {
  Writer w;
  std::vector<uint8_t> d(64);
  EXPECT_FALSE(w.add_tensor("", TensorType::F32, {16}, d.data(), 64).ok());
  EXPECT_FALSE(w.add_tensor("w", TensorType::F32, {}, d.data(), 0).ok());
  EXPECT_FALSE(w.add_tensor("w", TensorType::F32, {1, 1, 1, 1, 1}, d.data(), 4).ok());
  EXPECT_FALSE(w.add_tensor("w", TensorType::F32, {16, 0}, d.data(), 0).ok());
  EXPECT_FALSE(w.add_tensor("w", TensorType::F32, {1ull << 40, 1ull << 40}, d.data(), 64).ok());
  EXPECT_FALSE(w.add_tensor("w", TensorType::F32, {15}, d.data(), 64).ok());
  EXPECT_FALSE(w.add_tensor("w", TensorType::Q4_0, {16}, d.data(), 64).ok());
  EXPECT_FALSE(w.add_tensor("w", static_cast<TensorType>(4), {16}, d.data(), 64).ok());
  ASSERT_TRUE(w.add_tensor("w", TensorType::F32, {16}, d.data(), 64).ok());
  auto s = w.add_tensor("w", TensorType::F32, {16}, d.data(), 64);
  EXPECT_NE(s.message().find("duplicate tensor name 'w'"), std::string::npos);
}

TEST(GgufWriter, WriteAndOpen) {
  std::string path = ::testing::TempDir() + "/gguf_reader_test_write.gguf";
  Writer w = every_type_writer(64);
  add_tensors(w);
  ASSERT_TRUE(w.write(path).ok());
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->path(), path);
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->file_size(), w.to_bytes().size());
  EXPECT_EQ(std::memcmp((*f)->bytes(), w.to_bytes().data(), w.to_bytes().size()), 0);
  EXPECT_EQ((*f)->find_tensor("b.q8_0")->data[0], iota_bytes(1, 9)[0]);
  std::filesystem::remove(path);
}

TEST(GgufFile, OpenErrorsNameThePath) {
  std::string dir = ::testing::TempDir();
  auto missing = File::open(dir + "/does-not-exist.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("does-not-exist.gguf: cannot open"), std::string::npos);
  auto directory = File::open(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().find("not a regular file"), std::string::npos);
  std::string empty = dir + "/gguf_reader_test_empty.gguf";
  std::ofstream(empty).close();
  auto e = File::open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().find("gguf_reader_test_empty.gguf: file is empty"), std::string::npos);
  std::filesystem::remove(empty);
  EXPECT_FALSE(File::parse("null", nullptr, 100).ok());
}

// ---------------------------------------------------------------------------------------------
// Truncation at every byte

TEST(GgufTruncation, EveryPrefixFailsCleanlyOrIsComplete) {
  Writer w = every_type_writer(64);
  add_tensors(w);
  const std::vector<uint8_t> full = w.to_bytes();
  Parsed whole(full);
  ASSERT_TRUE(whole.file.ok()) << whole.file.error();
  // The shortest complete file ends with the last tensor's data; padding after it is optional.
  uint64_t complete = 0;
  for (const TensorInfo& t : whole->tensors()) {
    complete = std::max(complete, whole->data_offset() + t.offset + t.n_bytes);
  }
  ASSERT_LT(complete, full.size());  // the file ends in padding, so some prefixes are complete
  size_t failures = 0;
  for (size_t len = 0; len <= full.size(); ++len) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<ptrdiff_t>(len));
    Parsed p(prefix);
    if (len >= complete) {
      ASSERT_TRUE(p.file.ok()) << "prefix of " << len << " bytes: " << p.file.error();
      EXPECT_EQ(p->metadata().size(), whole->metadata().size());
      continue;
    }
    ASSERT_FALSE(p.file.ok()) << "prefix of " << len << " bytes parsed";
    ++failures;
    const std::string& msg = p.file.error();
    // "t.gguf: <field> at offset <N>: <problem>", with N inside the prefix.
    ASSERT_EQ(msg.rfind("t.gguf: ", 0), 0u) << msg;
    size_t o = msg.find(" at offset ");
    ASSERT_NE(o, std::string::npos) << msg;
    uint64_t offset = std::strtoull(msg.c_str() + o + 11, nullptr, 10);
    EXPECT_LE(offset, len) << msg;
    if (len > 24 && len < whole->data_offset() - 64) {
      // Inside the metadata or the tensor infos the cause is named as such.
      EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                  msg.find("runs past the end") != std::string::npos ||
                  msg.find("cannot fit") != std::string::npos)
          << "prefix of " << len << ": " << msg;
    }
    if (len % 97 == 0) save_seed(prefix, "bad");
  }
  EXPECT_EQ(failures, complete);
}

// ---------------------------------------------------------------------------------------------
// Real models: every metadata value survives a copy through Writer::add_value

std::string model_file(const char* name) {
  const char* cache = std::getenv("MINNOW_CACHE");
  const char* home = std::getenv("HOME");
  std::string dir =
      cache && *cache ? cache : std::string(home ? home : "") + "/.cache/minnow/models";
  return dir + "/" + name;
}

// `v` with every array cut to at most `max` elements (0 keeps them whole).
Value cut(const Value& v, uint64_t max) {
  Value c = v;
  if (v.type != ValueType::ARRAY || max == 0 || v.count <= max) return c;
  c.count = max;
  if (c.elem_type == ValueType::STRING) c.strings.resize(max);
  if (c.elem_type == ValueType::ARRAY) c.items.resize(max);
  return c;
}

// A copy of f's metadata (arrays cut to `max_elems`) and tensor infos (names, types and ranks
// kept, each dimension shrunk to one block or 1, so the data stays tiny).
Writer copy_of(const File& f, uint64_t max_elems) {
  Writer w(f.alignment());
  for (const KeyValue& kv : f.metadata()) {
    if (kv.key == kAlignmentKey) continue;  // the constructor writes it
    w.add_value(kv.key, cut(kv.value, max_elems));
  }
  for (const TensorInfo& t : f.tensors()) {
    const TensorTypeTraits& tt = traits(t.type);
    std::vector<uint64_t> ne(t.n_dims, 1);
    ne[0] = tt.block_elems;
    std::vector<uint8_t> data = iota_bytes(tt.block_bytes, static_cast<uint8_t>(t.info_offset));
    Status s = w.add_tensor(t.name, t.type, ne, data.data(), data.size());
    EXPECT_TRUE(s.ok()) << s.message();
  }
  return w;
}

void check_real_model(const char* file, const char* arch) {
  std::string path = model_file(file);
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << path << " absent (set MINNOW_CACHE or run scripts/quickstart.sh)";
  }
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  const File& model = **f;
  EXPECT_EQ(*model.get_string("general.architecture"), arch);
  EXPECT_GT(model.tensors().size(), 100u);
  EXPECT_GT((*model.get_array("tokenizer.ggml.tokens", ValueType::STRING))->count, 40000u);

  // Whole metadata through the writer and back: every value identical, in the same order.
  std::vector<uint8_t> bytes = copy_of(model, 0).to_bytes();
  Parsed copy(bytes);
  ASSERT_TRUE(copy.file.ok()) << copy.file.error();
  ASSERT_EQ(copy->metadata().size(), model.metadata().size());
  for (size_t i = 0; i < model.metadata().size(); ++i) {
    EXPECT_EQ(copy->metadata()[i].key, model.metadata()[i].key);
    EXPECT_TRUE(gguf_fuzz::same_value(copy->metadata()[i].value, model.metadata()[i].value))
        << model.metadata()[i].key;
  }
  ASSERT_EQ(copy->tensors().size(), model.tensors().size());
  for (size_t i = 0; i < model.tensors().size(); ++i) {
    EXPECT_EQ(copy->tensors()[i].name, model.tensors()[i].name);
    EXPECT_EQ(copy->tensors()[i].type, model.tensors()[i].type);
    EXPECT_EQ(copy->tensors()[i].n_dims, model.tensors()[i].n_dims);
  }

  // The same with the vocabulary cut short: a small seed with the model's real header shape.
  std::vector<uint8_t> header = copy_of(model, 40).to_bytes();
  Parsed small(header);
  ASSERT_TRUE(small.file.ok()) << small.file.error();
  EXPECT_EQ((*small->get_array("tokenizer.ggml.tokens", ValueType::STRING))->count, 40u);
  EXPECT_LE(header.size(), 64u * 1024);
  save_seed(header, "valid");
}

TEST(GgufRealModels, SmolLM2) { check_real_model("SmolLM2-135M-Instruct.Q4_1.gguf", "llama"); }
TEST(GgufRealModels, Gemma3) { check_real_model("gemma-3-270m-q4_k_m.gguf", "gemma3"); }

// ---------------------------------------------------------------------------------------------
// Typed accessors

TEST(GgufAccessors, MissingKeyAndWrongType) {
  Writer w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 30);
  w.add_i32("llama.negative", -3);
  w.add_u64("llama.context_length", 8192);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  Parsed p(w.to_bytes());
  ASSERT_TRUE(p.file.ok()) << p.file.error();
  const File& f = *p;
  EXPECT_EQ(*f.get_u32("llama.block_count"), 30u);

  auto missing = f.get_u32("llama.embedding_length");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), "t.gguf: metadata key 'llama.embedding_length' is missing");
  EXPECT_FALSE(f.has("llama.embedding_length"));
  EXPECT_EQ(f.find("llama.embedding_length"), nullptr);

  // general.architecture: key at 24 (8 + 20 bytes), type at 52, value at 56.
  auto wrong = f.get_u32("general.architecture");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error(),
            "t.gguf: value of 'general.architecture' at offset 56: has type string, expected u32");
  uint64_t bc = f.find("llama.block_count")->file_offset;
  EXPECT_EQ(f.get_string("llama.block_count").error(),
            "t.gguf: value of 'llama.block_count' at offset " + std::to_string(bc) +
                ": has type u32, expected string");
  EXPECT_NE(f.get_u64("llama.block_count").error().find("has type u32, expected u64"),
            std::string::npos);
  EXPECT_NE(f.get_i32("llama.block_count").error().find("expected i32"), std::string::npos);
  EXPECT_NE(f.get_i64("llama.block_count").error().find("expected i64"), std::string::npos);
  EXPECT_NE(f.get_f32("llama.block_count").error().find("expected f32"), std::string::npos);
  EXPECT_NE(f.get_f64("llama.block_count").error().find("expected f64"), std::string::npos);
  EXPECT_NE(f.get_bool("llama.block_count").error().find("expected bool"), std::string::npos);

  EXPECT_EQ(*f.get_uint("llama.block_count"), 30u);
  EXPECT_EQ(*f.get_uint("llama.context_length"), 8192u);
  EXPECT_NE(f.get_uint("llama.negative").error().find("is negative (-3)"), std::string::npos);
  EXPECT_NE(f.get_uint("general.architecture").error().find("has type string, expected an integer"),
            std::string::npos);
  EXPECT_NE(f.get_uint("nope").error().find("'nope' is missing"), std::string::npos);

  EXPECT_TRUE(f.get_array("tokenizer.ggml.tokens", ValueType::STRING).ok());
  EXPECT_NE(f.get_array("tokenizer.ggml.tokens", ValueType::F32)
                .error()
                .find("is an array of string, expected an array of f32"),
            std::string::npos);
  EXPECT_NE(f.get_array("llama.block_count", ValueType::U32)
                .error()
                .find("has type u32, expected "
                      "array"),
            std::string::npos);
}

TEST(GgufAccessors, FloatElementsSaturateWhenReadAsIntegers) {
  static const float f[] = {1e30f, -1e30f, std::numeric_limits<float>::quiet_NaN(), -2.5f};
  Value v = numeric_array(ValueType::F32, 4, f);
  EXPECT_EQ(v.elem_i64(0), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(v.elem_i64(1), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v.elem_i64(2), 0);
  EXPECT_EQ(v.elem_i64(3), -2);
}

}  // namespace
}  // namespace minnow::gguf
