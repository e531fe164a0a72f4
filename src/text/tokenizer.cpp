#include "text/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "text/bpe.h"
#include "text/special_tokens.h"
#include "text/spm.h"
#include "text/unicode.h"
#include "text/vocab.h"

namespace minnow::text {
namespace {

// GGUF keys, in one place.
constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyPre = "tokenizer.ggml.pre";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyScores = "tokenizer.ggml.scores";
constexpr std::string_view kKeyTokenType = "tokenizer.ggml.token_type";
constexpr std::string_view kKeyMerges = "tokenizer.ggml.merges";
constexpr std::string_view kKeyAddBos = "tokenizer.ggml.add_bos_token";
constexpr std::string_view kKeyAddEos = "tokenizer.ggml.add_eos_token";
constexpr std::string_view kKeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr std::string_view kKeyName = "general.name";
constexpr std::string_view kKeyArch = "general.architecture";

// tokenizer.ggml.token_type values.
enum TokenType : int64_t {
  kTypeUndefined = 0,
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6,
};

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581

// Special tokens that conversions often leave without an id or type; found by their text as
// llama.cpp does, so that end-of-generation and rendering agree with it.
const std::vector<std::string_view> kEotTexts = {
    "<|eot_id|>",        "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>",   "<EOT>",      "_<EOT>",  "[EOT]",         "<｜end▁of▁sentence｜>",
    "<end_of_utterance>"};
const std::vector<std::string_view> kEomTexts = {"<|eom_id|>"};
const std::vector<std::string_view> kFimPreTexts = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",    "<｜fim▁begin｜>",
    "<PRE>",          "▁<PRE>",       "<|code_prefix|>", "<|prefix|>"};
const std::vector<std::string_view> kFimSufTexts = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",    "<｜fim▁hole｜>",
    "<SUF>",          "▁<SUF>",       "<|code_suffix|>", "<|suffix|>"};
const std::vector<std::string_view> kFimMidTexts = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>",    "<｜fim▁end｜>",
    "<MID>",          "▁<MID>",       "<|code_middle|>", "<|middle|>"};
const std::vector<std::string_view> kFimPadTexts = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                                    "<PAD>", "[PAD]"};
const std::vector<std::string_view> kFimRepTexts = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                                    "<REPO>", "<reponame>"};
const std::vector<std::string_view> kFimSepTexts = {"<|file_sep|>"};
const std::vector<std::string_view> kEogTexts = {"<|eot_id|>",
                                                 "<|im_end|>",
                                                 "<|end|>",
                                                 "<|return|>",
                                                 "<|call|>",
                                                 "<|flush|>",
                                                 "<|calls|>",
                                                 "<end_of_turn>",
                                                 "<|endoftext|>",
                                                 "</s>",
                                                 "<|eom_id|>",
                                                 "<EOT>",
                                                 "_<EOT>",
                                                 "[EOT]",
                                                 "[EOS]",
                                                 "<|end_of_text|>",
                                                 "<end_of_utterance>",
                                                 "<eos>",
                                                 "<turn|>",
                                                 "<|tool_response>",
                                                 "<｜end▁of▁sentence｜>",
                                                 "[e~["};
// gpt-oss: structural tokens that must always be printed.
const std::vector<std::string_view> kAlwaysRendered = {"<|channel|>", "<|message|>", "<|start|>",
                                                       "<|constrain|>"};

bool contains_any(std::string_view s, std::initializer_list<std::string_view> subs) {
  for (std::string_view sub : subs) {
    if (s.find(sub) != std::string_view::npos) return true;
  }
  return false;
}

Status key_error(const gguf::File& f, std::string_view key, const std::string& what) {
  return Status::error(f.path() + ": " + std::string(key) + ": " + what);
}

// Optional bool key: absent -> unchanged; present with another type -> error.
Status read_bool(const gguf::File& f, std::string_view key, bool& v) {
  if (!f.has(key)) return {};
  auto r = f.get_bool(key);
  if (!r) return r.status();
  v = *r;
  return {};
}

// The byte of a <0xNN> token, read as strtol reads its two hex digits.
uint8_t byte_of_token(std::string_view text) {
  unsigned v = 0;
  for (size_t i = 3; i < 5 && i < text.size(); ++i) {
    const char c = text[i];
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      break;
    v = v * 16 + d;
  }
  return static_cast<uint8_t>(v);
}

// A normal byte-level BPE token's text mapped back through the byte alphabet. Characters
// outside the alphabet are spelled out as llama.cpp does.
std::string decode_byte_level(std::string_view text) {
  const ByteAlphabet& alphabet = ByteAlphabet::get();
  std::string canonical;
  std::string_view t = text;
  if (canonicalize_utf8(text, canonical)) t = canonical;
  std::string out;
  for (size_t i = 0; i < t.size();) {
    const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(t[i])), t.size() - i);
    const int byte = alphabet.byte_of(utf8_bits(t, i, len));
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "[UNK_BYTE_0x";
      for (size_t k = 0; k < len; ++k) {
        const auto b = static_cast<uint8_t>(t[i + k]);
        out += kHex[b >> 4];
        out += kHex[b & 15];
      }
      out.append(text);
      out += ']';
    }
    i += len;
  }
  return out;
}

}  // namespace

struct Tokenizer::Impl {
  Vocab vocab;
  std::string piece_arena;          // piece of every token as rendered with special = true
  std::vector<uint32_t> piece_off;  // (n_tokens + 1)
  std::vector<uint8_t> eog;         // (n_tokens) 1 where the token ends generation
  SpecialMatcher matcher;
  std::unique_ptr<BpeEncoder> bpe;
  SpmEncoder spm;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const gguf::File& file) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  MINNOW_RETURN_IF_ERROR(t->init(file));
  return t;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& path) {
  auto f = gguf::File::open(path);
  if (!f) return f.status();
  return load(**f);
}

Status Tokenizer::init(const gguf::File& file) {
  Vocab& vocab = impl_->vocab;

  auto model = file.get_string(kKeyModel);
  if (!model) return model.status();
  model_ = std::string(*model);
  if (file.has(kKeyPre)) {
    auto pre = file.get_string(kKeyPre);
    if (!pre) return pre.status();
    pre_ = std::string(*pre);
  }
  const std::string pre_in_file = pre_;

  // Defaults per model, before the GGUF keys.
  if (model_ == "llama") {
    kind_ = TokenizerKind::kSpm;
    special_.bos = 1;
    special_.eos = 2;
    special_.unk = 0;
  } else if (model_ == "gpt2") {
    kind_ = TokenizerKind::kBpe;
    special_.bos = 11;
    special_.eos = 11;
  } else if (model_ == "gemma4") {
    kind_ = TokenizerKind::kBpe;
    pre_ = "gemma4";
  } else {
    return key_error(file, kKeyModel,
                     "unsupported tokenizer model '" + model_ +
                         "' (minnow supports 'llama', "
                         "'gpt2' and 'gemma4')");
  }

  auto tokens = file.get_array(kKeyTokens, gguf::ValueType::STRING);
  if (!tokens) return tokens.status();
  const size_t n = (*tokens)->strings.size();
  if (n == 0) return key_error(file, kKeyTokens, "empty vocabulary");
  if (n >= static_cast<size_t>(INT32_MAX)) return key_error(file, kKeyTokens, "too many tokens");

  const gguf::Value* scores = file.find(kKeyScores);
  if (scores) {
    if (scores->type != gguf::ValueType::ARRAY ||
        (scores->elem_type != gguf::ValueType::F32 && scores->elem_type != gguf::ValueType::I32)) {
      return key_error(file, kKeyScores, "expected an array of f32 or i32");
    }
    if (scores->count < n) return key_error(file, kKeyScores, "fewer scores than tokens");
  }
  const gguf::Value* types = file.find(kKeyTokenType);
  if (types) {
    if (types->type != gguf::ValueType::ARRAY || types->elem_type != gguf::ValueType::I32) {
      return key_error(file, kKeyTokenType, "expected an array of i32");
    }
    if (types->count < n) return key_error(file, kKeyTokenType, "fewer token types than tokens");
  }

  // Token table. Empty texts get a placeholder, as in llama.cpp, so every text is unique.
  vocab.offsets.reserve(n + 1);
  vocab.offsets.push_back(0);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view text = (*tokens)->strings[i];
    if (text.empty())
      vocab.arena += "[EMPTY_" + std::to_string(i) + "]";
    else
      vocab.arena.append(text);
    vocab.offsets.push_back(static_cast<uint32_t>(vocab.arena.size()));
  }
  vocab.index.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    bool added = false;
    const int32_t first = vocab.index.add(vocab.text(static_cast<TokenId>(i)), &added);
    if (!added) {
      return key_error(
          file, kKeyTokens,
          "token " + std::to_string(i) + " repeats the text of " + std::to_string(first));
    }
  }
  vocab.scores.assign(n, 0.0f);
  vocab.attrs.assign(n, kAttrNormal);
  for (size_t i = 0; i < n; ++i) {
    if (scores) vocab.scores[i] = static_cast<float>(scores->elem_f64(i));
    if (types) {
      switch (types->elem_i64(i)) {
        case kTypeUnknown:
          vocab.attrs[i] = kAttrUnknown;
          break;
        case kTypeUnused:
          vocab.attrs[i] = kAttrUnused;
          break;
        case kTypeNormal:
          vocab.attrs[i] = kAttrNormal;
          break;
        case kTypeControl:
          vocab.attrs[i] = kAttrControl;
          break;
        case kTypeUserDefined:
          vocab.attrs[i] = kAttrUserDefined;
          break;
        case kTypeByte:
          vocab.attrs[i] = kAttrByte;
          break;
        default:
          vocab.attrs[i] = kAttrUndefined;
          break;
      }
    }
  }

  // Flags per model / pre-tokenizer, then the GGUF keys.
  PreTokenizerInfo pre_info;
  if (kind_ == TokenizerKind::kBpe) {
    auto info = find_pre_tokenizer(pre_);
    if (!info) return key_error(file, kKeyPre, info.error());
    pre_info = *info;
    add_space_prefix_ = false;
    escape_whitespace_ = pre_info.escape_whitespace;
    clean_spaces_ = pre_info.clean_spaces;
    add_bos_ = pre_info.add_bos;
    if (pre_info.no_bos) special_.bos = kNoToken;
  } else {
    add_space_prefix_ = true;
    clean_spaces_ = false;
    add_bos_ = true;
    add_eos_ = false;
  }
  MINNOW_RETURN_IF_ERROR(read_bool(file, kKeyAddSpacePrefix, add_space_prefix_));

  // Special token ids: defaults outside the vocabulary are dropped; keys outside it ignored.
  const std::pair<std::string_view, TokenId*> id_keys[] = {
      {"tokenizer.ggml.bos_token_id", &special_.bos},
      {"tokenizer.ggml.eos_token_id", &special_.eos},
      {"tokenizer.ggml.eot_token_id", &special_.eot},
      {"tokenizer.ggml.eom_token_id", &special_.eom},
      {"tokenizer.ggml.unknown_token_id", &special_.unk},
      {"tokenizer.ggml.seperator_token_id", &special_.sep},
      {"tokenizer.ggml.padding_token_id", &special_.pad},
      {"tokenizer.ggml.mask_token_id", &special_.mask},
      {"tokenizer.ggml.fim_pre_token_id", &special_.fim_pre},
      {"tokenizer.ggml.fim_suf_token_id", &special_.fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &special_.fim_mid},
      {"tokenizer.ggml.fim_pad_token_id", &special_.fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &special_.fim_rep},
      {"tokenizer.ggml.fim_sep_token_id", &special_.fim_sep},
      {"tokenizer.ggml.prefix_token_id", &special_.fim_pre},  // older names
      {"tokenizer.ggml.suffix_token_id", &special_.fim_suf},
      {"tokenizer.ggml.middle_token_id", &special_.fim_mid},
  };
  for (const auto& [key, id] : id_keys) {
    if (*id >= 0 && static_cast<size_t>(*id) >= n) *id = kNoToken;
    if (!file.has(key)) continue;
    auto v = file.get_uint(key);
    if (!v) return v.status();
    if (*v < n) *id = static_cast<TokenId>(*v);
  }
  MINNOW_RETURN_IF_ERROR(read_bool(file, kKeyAddBos, add_bos_));
  MINNOW_RETURN_IF_ERROR(read_bool(file, kKeyAddEos, add_eos_));
  if (pre_info.newline_words && !add_bos_) add_bos_ = true;  // Gemma 4 always starts with BOS

  auto force_control = [&](TokenId id) { vocab.attrs[id] |= kAttrControl; };
  auto detect = [&](TokenId& field, const std::vector<std::string_view>& texts) {
    if (field != kNoToken) return;
    // llama.cpp takes the first match in hash-map order; minnow takes the lowest id.
    for (std::string_view text : texts) {
      const TokenId t = vocab.find(text);
      if (t >= 0 && (field == kNoToken || t < field)) field = t;
    }
    if (field != kNoToken) force_control(field);
  };
  detect(special_.eot, kEotTexts);
  detect(special_.eom, kEomTexts);
  detect(special_.fim_pre, kFimPreTexts);
  detect(special_.fim_suf, kFimSufTexts);
  detect(special_.fim_mid, kFimMidTexts);
  detect(special_.fim_pad, kFimPadTexts);
  detect(special_.fim_rep, kFimRepTexts);
  detect(special_.fim_sep, kFimSepTexts);

  for (size_t i = 0; i < n; ++i) {
    if ((vocab.attrs[i] & kAttrControl) &&
        vocab.text(static_cast<TokenId>(i)).find("unused") != std::string_view::npos) {
      vocab.attrs[i] |= kAttrUnused;
    }
  }

  std::set<TokenId> eog;
  for (TokenId id : {special_.fim_pad, special_.fim_rep, special_.fim_sep}) {
    if (id != kNoToken) eog.insert(id);
  }
  for (std::string_view text : kEogTexts) {
    const TokenId t = vocab.find(text);
    if (t < 0) continue;
    eog.insert(t);
    force_control(t);
  }
  for (std::string_view text : kAlwaysRendered) {
    const TokenId t = vocab.find(text);
    if (t >= 0) vocab.attrs[t] = kAttrUserDefined;
  }
  for (TokenId id : {special_.eos, special_.eot, special_.eom}) {
    if (id != kNoToken) eog.insert(id);
  }
  {
    // o200k_harmony and solar-open end turns with <|return|> / <|call|> (<|calls|>, <|flush|>):
    // there <|end|> separates messages and must not stop generation.
    bool has_return = false, has_call = false, has_flush = false;
    TokenId end = kNoToken;
    for (TokenId id : eog) {
      const std::string_view text = vocab.text(id);
      if (text == "<|return|>")
        has_return = true;
      else if (text == "<|call|>" || text == "<|calls|>")
        has_call = true;
      else if (text == "<|flush|>")
        has_flush = true;
      else if (text == "<|end|>")
        end = id;
    }
    if (end != kNoToken && ((has_return && has_call) || (has_call && has_flush))) {
      eog.erase(end);
      vocab.attrs[end] = kAttrUserDefined;
    }
  }
  {
    // Gemma 4 and PLaMo have an ordinary "</s>" token.
    bool has_marker = false;
    TokenId s = kNoToken;
    for (TokenId id : eog) {
      const std::string_view text = vocab.text(id);
      if (text == "<|tool_response>" || text == "<|plamo:eos|>")
        has_marker = true;
      else if (text == "</s>")
        s = id;
    }
    if (has_marker && s != kNoToken) {
      eog.erase(s);
      vocab.attrs[s] = kAttrNormal;
    }
  }
  eog_.assign(eog.begin(), eog.end());
  impl_->eog.assign(n, 0);
  for (TokenId id : eog_) impl_->eog[id] = 1;

  // Pieces as rendered with special = true (the special = false view blanks control tokens).
  impl_->piece_off.reserve(n + 1);
  impl_->piece_off.push_back(0);
  std::string& pieces = impl_->piece_arena;
  pieces.reserve(vocab.arena.size());
  for (size_t i = 0; i < n; ++i) {
    const uint32_t attr = vocab.attrs[i];
    const std::string_view text = vocab.text(static_cast<TokenId>(i));
    if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      pieces.append(text);
    } else if (attr & kAttrNormal) {
      if (kind_ == TokenizerKind::kSpm || escape_whitespace_) {
        size_t k = 0;  // U+2581 -> ' '
        for (size_t hit; (hit = text.find(kSpaceMark, k)) != std::string_view::npos;) {
          pieces.append(text.substr(k, hit - k));
          pieces += ' ';
          k = hit + kSpaceMark.size();
        }
        pieces.append(text.substr(k));
      } else {
        pieces += decode_byte_level(text);
      }
    } else if (attr & kAttrByte) {
      pieces.push_back(static_cast<char>(byte_of_token(text)));
    }
    impl_->piece_off.push_back(static_cast<uint32_t>(pieces.size()));
  }

  // Whitespace stripping around special tokens, set by model name as llama.cpp does.
  {
    std::string name, arch;
    if (file.has(kKeyName)) {
      auto v = file.get_string(kKeyName);
      if (v) name = std::string(*v);
    }
    if (file.has(kKeyArch)) {
      auto v = file.get_string(kKeyArch);
      if (v) arch = std::string(*v);
    }
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto set_attr = [&](std::string_view text, uint32_t bit, bool on) {
      const TokenId t = vocab.find(text);
      if (t < 0) return;
      vocab.attrs[t] = on ? (vocab.attrs[t] | bit) : (vocab.attrs[t] & ~bit);
    };
    if (contains_any(pre_in_file, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
        contains_any(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
      set_attr("<mask>", kAttrLstrip, true);
    } else if (contains_any(name, {"phi-3", "phi3"})) {
      for (size_t i = 0; i < n; ++i) {
        if (vocab.attrs[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
          vocab.attrs[i] |= kAttrRstrip;
        }
      }
      set_attr("</s>", kAttrRstrip, true);
      for (std::string_view text : {"<unk>", "<s>", "<|endoftext|>"}) {
        set_attr(text, kAttrRstrip, false);
      }
    } else if (contains_any(name, {"modern-bert"})) {
      set_attr("[MASK]", kAttrLstrip, true);
    }
  }

  std::vector<TokenId> special_ids;
  for (size_t i = 0; i < n; ++i) {
    if (vocab.attrs[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      special_ids.push_back(static_cast<TokenId>(i));
    }
  }
  impl_->matcher.build(vocab, special_ids);

  if (kind_ == TokenizerKind::kBpe) {
    auto merges = file.get_array(kKeyMerges, gguf::ValueType::STRING);
    if (!merges) return merges.status();
    impl_->bpe = std::make_unique<BpeEncoder>();
    MINNOW_RETURN_IF_ERROR(impl_->bpe->init(vocab, **merges, pre_info));
    auto nl = tokenize("\n", false, false);
    if (!nl) return nl.status();
    special_.newline = nl->empty() ? special_.pad : nl->front();
  } else {
    impl_->spm.init(vocab, special_.unk);
    special_.newline = impl_->spm.byte_token('\n');
    if (special_.newline == kNoToken) special_.newline = special_.pad;
  }
  return {};
}

size_t Tokenizer::n_tokens() const { return impl_->vocab.size(); }

std::string_view Tokenizer::token_text(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < n_tokens() ? impl_->vocab.text(id)
                                                         : std::string_view();
}

float Tokenizer::score(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < n_tokens() ? impl_->vocab.scores[id] : 0.0f;
}

uint32_t Tokenizer::attr(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < n_tokens() ? impl_->vocab.attrs[id] : kAttrUndefined;
}

bool Tokenizer::is_eog(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < n_tokens() && impl_->eog[id];
}

TokenId Tokenizer::find_token(std::string_view text) const { return impl_->vocab.find(text); }

std::string_view Tokenizer::piece(TokenId id, bool special) const {
  if (id < 0 || static_cast<size_t>(id) >= n_tokens()) return {};
  if (!special && (impl_->vocab.attrs[id] & (kAttrUnknown | kAttrControl))) return {};
  const uint32_t begin = impl_->piece_off[id];
  return std::string_view(impl_->piece_arena).substr(begin, impl_->piece_off[id + 1] - begin);
}

Status Tokenizer::encode_text(std::string_view fragment, bool space_prefix,
                              std::vector<TokenId>& out, WordCache* cache) const {
  if (kind_ == TokenizerKind::kBpe) return impl_->bpe->encode(fragment, out, cache);
  std::string text;
  text.reserve(fragment.size() + fragment.size() / 4 + 4);
  if (space_prefix) text += kSpaceMark;
  for (char c : fragment) {
    if (c == ' ')
      text += kSpaceMark;
    else
      text += c;
  }
  impl_->spm.encode(text, out, cache);
  return {};
}

Result<std::vector<TokenId>> Tokenizer::tokenize(std::string_view text, bool add_special,
                                                 bool parse_special) const {
  std::vector<TokenId> out;
  if (add_special && add_bos_) {
    if (special_.bos == kNoToken) return Status::error("tokenize: the model adds BOS but has none");
    out.push_back(special_.bos);
  }
  std::vector<SpecialMatcher::Fragment> fragments;
  impl_->matcher.partition(text, parse_special, fragments);
  // Long texts remember the ids of the words they have already met.
  std::optional<WordCache> cache;
  if (text.size() >= WordCache::kMinBytes) {
    cache.emplace(std::min(text.size() / 8, WordCache::kMaxWords));
  }
  bool prev_special = true;  // SPM prefixes a space to text at the start or after a token
  for (const SpecialMatcher::Fragment& f : fragments) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    MINNOW_RETURN_IF_ERROR(encode_text(text.substr(f.offset, f.length),
                                       add_space_prefix_ && prev_special, out,
                                       cache ? &*cache : nullptr));
    prev_special = false;
  }
  if (add_special && add_eos_) {
    if (special_.eos == kNoToken) return Status::error("tokenize: the model adds EOS but has none");
    out.push_back(special_.eos);
  }
  return out;
}

Result<std::string> Tokenizer::detokenize(std::span<const TokenId> ids, bool remove_special,
                                          bool unparse_special) const {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= n_tokens()) {
      return Status::error("detokenize: id " + std::to_string(ids[i]) + " at position " +
                           std::to_string(i) + " is outside the vocabulary of " +
                           std::to_string(n_tokens()) + " tokens");
    }
  }
  bool remove_space = add_space_prefix_;
  if (remove_special && add_bos_ && !ids.empty() && ids.front() == special_.bos) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (remove_special && add_eos_ && !ids.empty() && ids.back() == special_.eos) {
    ids = ids.first(ids.size() - 1);
  }
  std::string out;
  for (TokenId id : ids) {
    std::string_view p = piece(id, unparse_special);
    if (remove_space && !p.empty() && p.front() == ' ') p.remove_prefix(1);
    remove_space = false;
    out.append(p);
  }
  if (clean_spaces_) clean_up_spaces(out);
  return out;
}

void clean_up_spaces(std::string& t) {
  // Three passes over the text, each compacting it in place (the write index never passes the
  // read index, so every look-behind reads the pass's input).
  size_t n = t.size();
  size_t w = n ? 1 : 0;
  for (size_t i = 1; i < n; ++i) {  // " ?", " !", " .", " ,"
    const char x = t[i];
    if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --w;
    t[w++] = x;
  }
  n = w;
  w = n ? 1 : 0;
  for (size_t i = 1; i < n; ++i) {  // " ' " -> "'"
    const char x = t[i];
    if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
      --w;
      t[++i] = '\0';  // drop the next space; the NUL also keeps it from matching again
    }
    t[w++] = x;
  }
  n = w;
  w = n ? 1 : 0;
  for (size_t i = 1; i < n; ++i) {  // " 's", " 'm", " 're", " 've"
    const char x = t[i];
    if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
      const char x1 = t[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --w;
      } else if (x1 != 't' && x1 != 'd' && i + 2 < n) {
        const char x2 = t[i + 2];
        if ((x1 == 'r' || x1 == 'v') && x2 == 'e') --w;
      }
    }
    t[w++] = x;
  }
  t.resize(w);
}

}  // namespace minnow::text
