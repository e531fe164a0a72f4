#include "text/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstring>

namespace minnow::text {
namespace {

// ---------------------------------------------------------------------------------------------
// Split patterns, one list per kind. They are the published tokenizer.json patterns in the form
// llama.cpp runs them ((?i:...) spelled out as [sS]..., upper/lower-case runs written with
// look-aheads), so that ids match llama.cpp.

constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kPoro =
    R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";
constexpr std::string_view kNewlines = R"([^\n]+|[\n]+)";

struct KindSpec {
  std::string_view name;
  std::vector<std::string_view> patterns;
  bool byte_encode = true;
  bool escape_whitespace = false;
};

const std::vector<KindSpec>& kinds() {
  static const std::vector<KindSpec> k = {
      {"default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"}},
      {"llama3", {kLlama3}},
      {"jais2",
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})"}},
      {"deepseek-llm",
       {R"([\r\n])",
        R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)",
        R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
        R"(\s+$)", R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)", R"(\p{N}+)"}},
      {"deepseek3",
       {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"spark2_5",
       {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+)",
        R"(\p{N})"}},
      {"youtu",
       {R"([\x{AC00}-\x{D7A3}\x{3131}-\x{318E}]+|[\x{FF01}\x{2026}\x{201C}\x{201D}\x{2018}\x{2019}\x{2014}\x{FF1A}\x{FF1B}\x{FF0C}\x{3001}-\x{303F}\x{FE30}-\x{FE4F}]+|[\x{3105}-\x{312F}]+|[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)", R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"deepseek-coder",
       {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)",
        R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)", R"(\p{N})"}},
      {"falcon", {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"}},
      {"starcoder", {R"(\p{N})", kGpt2}},
      {"gpt2", {kGpt2}},
      {"qwen2", {kQwen2}},
      {"qwen35",
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"poro", {kPoro}},
      {"viking", {kPoro, R"(\p{N})"}},
      // Upper-then-lower and all-upper letter runs. llama.cpp writes "a letter that is not a-z"
      // as a look-ahead group; the equivalent single class [^\P{L}a-z] keeps PCRE2 from
      // needing stack per repetition on long words.
      {"tekken",
       {R"([^\r\n\p{L}\p{N}]?[^\P{L}a-z]*[^\P{L}A-Z]+|[^\r\n\p{L}\p{N}]?[^\P{L}a-z]+[^\P{L}A-Z]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"chameleon",
       {R"(<sentinel:[0-9]+>)", R"((IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z)", R"(([\t\n]|    |  ))",
        R"(\p{N})", R"([\p{P}!-/:-@\[-`{-~])", kGpt2}},
      {"gpt4o",
       {R"([^\r\n\p{L}\p{N}]?[^\P{L}a-z]*[^\P{L}A-Z]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[^\P{L}a-z]+[^\P{L}A-Z]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"granite-emb-multi",
       {R"([^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"superbpe", {R"(\p{N}+)", R"((?=(\d{3})+(?!\d)))"}},
      {"bailingmoe",
       {R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"}},
      {"seed-coder",
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"ufakzeka",
       {R"([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"laguna", {kNewlines, kQwen2}},
      {"exaone-moe",
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)"}},
      {"gemma4", {kNewlines}, /*byte_encode=*/false, /*escape_whitespace=*/true},
      {"minicpm5",
       {R"(\p{N}{1,3})",
        R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
  };
  return k;
}

enum Flag : uint8_t {
  kIgnoreMerges = 1,
  kNoClean = 2,
  kAddBos = 4,
  kNoBos = 8,
  kNewlineWords = 16,
};

struct Alias {
  std::string_view name;  // value of tokenizer.ggml.pre
  std::string_view kind;
  uint8_t flags;
};

// tokenizer.ggml.pre values as llama.cpp recognises them, with the flags it sets for each.
constexpr Alias kAliases[] = {
    {"default", "default", 0},
    {"llama3", "llama3", kIgnoreMerges | kAddBos},
    {"llama-v3", "llama3", kIgnoreMerges | kAddBos},
    {"llama-bpe", "llama3", kIgnoreMerges | kAddBos},
    {"falcon3", "llama3", kIgnoreMerges | kAddBos},
    {"falcon-h1", "llama3", kIgnoreMerges | kAddBos},
    {"pixtral", "llama3", kIgnoreMerges | kAddBos},
    {"midm-2.0", "llama3", kIgnoreMerges | kAddBos},
    {"lfm2", "llama3", kIgnoreMerges | kAddBos},
    {"jina-v5-nano", "llama3", kIgnoreMerges | kAddBos},
    {"dbrx", "llama3", 0},
    {"smaug-bpe", "llama3", 0},
    {"minicpm5", "minicpm5", kIgnoreMerges},
    {"deepseek-llm", "deepseek-llm", kNoClean},
    {"deepseek-coder", "deepseek-coder", kNoClean},
    {"deepseek-v3", "deepseek3", kNoClean},
    {"hunyuan-dense", "deepseek3", kNoClean},
    {"hy_v4", "deepseek3", kNoClean},
    {"joyai-llm", "deepseek3", kNoClean},
    {"spark2_5", "spark2_5", kNoClean},
    {"youtu", "youtu", kNoClean | kIgnoreMerges},
    {"falcon", "falcon", 0},
    {"mpt", "gpt2", 0},
    {"starcoder", "starcoder", 0},
    {"gpt-2", "gpt2", 0},
    {"phi-2", "gpt2", 0},
    {"jina-es", "gpt2", 0},
    {"jina-de", "gpt2", 0},
    {"gigachat", "gpt2", 0},
    {"jina-v2-es", "gpt2", 0},
    {"jina-v2-de", "gpt2", 0},
    {"a.x-4.0", "gpt2", 0},
    {"mellum", "gpt2", 0},
    {"modern-bert", "gpt2", 0},
    {"jina-v1-en", "gpt2", 0},
    {"jina-v2-code", "gpt2", 0},
    {"roberta-bpe", "gpt2", 0},
    {"exaone4", "gpt2", 0},
    {"olmo", "gpt2", 0},
    {"jais", "gpt2", 0},
    {"trillion", "gpt2", kNoClean},
    {"granite-docling", "gpt2", kNoClean},
    {"jais-2", "jais2", 0},
    {"gemma4", "gemma4", kNewlineWords},
    {"granite-embed-multi-311m", "gemma4", kNewlineWords},
    {"sarvam-moe", "gemma4", kNoClean},
    {"refact", "starcoder", 0},
    {"command-r", "starcoder", kNoClean},
    {"smollm", "starcoder", kNoClean},
    {"codeshell", "starcoder", 0},
    {"exaone", "starcoder", 0},
    {"minerva-7b", "starcoder", 0},
    {"mellum2", "starcoder", 0},
    {"qwen2", "qwen2", kNoClean},
    {"deepseek-r1-qwen", "qwen2", kNoClean},
    {"kormo", "qwen2", kNoClean},
    {"f2llmv2", "qwen2", kNoClean},
    {"stablelm2", "qwen2", 0},
    {"megrez", "qwen2", 0},
    {"hunyuan", "qwen2", kNoClean},
    {"solar-open", "qwen2", kNoClean},
    {"grok-2", "qwen2", kNoClean},
    {"qwen35", "qwen35", kNoClean},
    {"poro-chat", "poro", kNoClean},
    {"bloom", "poro", 0},
    {"gpt3-finnish", "poro", 0},
    {"chatglm-bpe", "llama3", kNoBos},
    {"glm4", "llama3", kNoBos | kIgnoreMerges},
    {"glm5", "llama3", kNoBos | kIgnoreMerges},
    {"viking", "viking", kNoClean},
    {"tekken", "tekken", kNoClean | kIgnoreMerges | kAddBos},
    {"chameleon", "chameleon", kNoClean | kAddBos},
    {"gpt-4o", "gpt4o", kNoClean},
    {"llama4", "gpt4o", kNoClean},
    {"kanana2", "gpt4o", kNoClean},
    {"talkie", "gpt4o", kNoClean},
    {"minimax-m2", "gpt4o", kNoClean},
    {"granite-embed-multi-97m", "granite-emb-multi", kNoClean | kIgnoreMerges},
    {"superbpe", "superbpe", kNoClean},
    {"bailingmoe", "bailingmoe", kNoClean},
    {"bailingmoe2", "bailingmoe", kNoClean},
    {"llada-moe", "bailingmoe", kNoClean},
    {"seed-coder", "seed-coder", kNoClean},
    {"ufakzeka", "ufakzeka", kNoClean},
    {"laguna", "laguna", kNoClean},
    {"exaone-moe", "exaone-moe", 0},
};

}  // namespace

Result<PreTokenizerInfo> find_pre_tokenizer(std::string_view pre) {
  if (pre.empty()) pre = "default";
  for (const Alias& a : kAliases) {
    if (a.name != pre) continue;
    for (const KindSpec& k : kinds()) {
      if (k.name != a.kind) continue;
      PreTokenizerInfo info;
      info.name = k.name;
      info.patterns = k.patterns;
      info.byte_encode = k.byte_encode;
      info.escape_whitespace = k.escape_whitespace;
      info.ignore_merges = a.flags & kIgnoreMerges;
      info.clean_spaces = !(a.flags & kNoClean);
      info.add_bos = a.flags & kAddBos;
      info.no_bos = a.flags & kNoBos;
      info.newline_words = a.flags & kNewlineWords;
      return info;
    }
  }
  return Status::error("unsupported pre-tokenizer '" + std::string(pre) +
                       "' (tokenizer.ggml.pre); minnow knows the llama.cpp kinds listed in "
                       "src/text/pretokenizer.cpp");
}

// ---------------------------------------------------------------------------------------------
// PCRE2

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

constexpr PCRE2_SIZE kJitStackMax = 64u << 20;  // backtracking space for very long words
constexpr uint32_t kHeapLimitKiB = 256u << 10;  // interpreter fallback

// Per-thread match state: a match data block and a JIT stack, made once per thread so that a
// shared RegexSplitter can be used concurrently without locks or per-call mmaps.
struct ThreadState {
  pcre2_match_data* md = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* mctx = nullptr;
  ThreadState() {
    md = pcre2_match_data_create(1, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32u << 10, kJitStackMax, nullptr);
    if (mctx && jit_stack) pcre2_jit_stack_assign(mctx, nullptr, jit_stack);
    if (mctx) {
      pcre2_set_match_limit(mctx, UINT32_MAX);
      pcre2_set_heap_limit(mctx, kHeapLimitKiB);
    }
  }
  ~ThreadState() {
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(jit_stack);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::string RegexSplitter::rewrite(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 's' || e == 'S') {
        out += e == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
        ++i;
        continue;
      }
      if (e == 'd') {  // ASCII digits only, as in llama.cpp's engines
        out += in_class ? "0-9" : "[0-9]";
        ++i;
        continue;
      }
      if ((e == 'p' || e == 'P') && i + 2 < p.size() && p[i + 2] == '{') {
        const size_t close = p.find('}', i + 3);
        if (close != std::string_view::npos) {
          std::string_view prop = p.substr(i + 3, close - i - 3);
          if (prop == "Lu" || prop == "Ll" || prop == "Lt" || prop == "Lm" || prop == "Lo") {
            prop = "L";
          }
          out += '\\';
          out += e;
          out += '{';
          out += prop;
          out += '}';
          i = close;
          continue;
        }
      }
      out += c;
      out += e;
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' or '^]' right after '[' is literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Result<std::unique_ptr<RegexSplitter>> RegexSplitter::create(
    const std::vector<std::string_view>& patterns) {
  std::unique_ptr<RegexSplitter> s(new RegexSplitter());
  for (std::string_view pattern : patterns) {
    const std::string rewritten = rewrite(pattern);
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_off, nullptr);
    if (!code) {
      return Status::error("split pattern '" + std::string(pattern) + "': " + pcre2_message(err) +
                           " at offset " + std::to_string(err_off));
    }
    auto* c = new Compiled();
    c->code = code;
    c->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    s->compiled_.push_back(c);
  }
  return s;
}

RegexSplitter::~RegexSplitter() {
  for (Compiled* c : compiled_) delete c;
}

Status RegexSplitter::split(std::string_view text, std::vector<Piece>& out) const {
  out.clear();
  if (text.empty()) return {};
  out.push_back({0, static_cast<uint32_t>(text.size())});
  ThreadState& ts = thread_state();
  if (!ts.md || !ts.mctx) return Status::error("pre-tokenizer: out of memory for PCRE2 state");
  std::vector<Piece> next;
  const auto* base = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (const Compiled* c : compiled_) {
    next.clear();
    next.reserve(out.size() * 2);
    for (const Piece& piece : out) {
      const PCRE2_SPTR subject = base + piece.offset;
      const PCRE2_SIZE len = piece.length;
      PCRE2_SIZE start = 0;    // where the next search begins
      PCRE2_SIZE emitted = 0;  // end of the last piece emitted
      uint32_t options = PCRE2_NO_UTF_CHECK;
      while (start <= len) {
        const int rc = c->jit
                           ? pcre2_jit_match(c->code, subject, len, start, options, ts.md, ts.mctx)
                           : pcre2_match(c->code, subject, len, start, options, ts.md, ts.mctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
          if (!(options & PCRE2_ANCHORED)) break;
          // No non-empty match right after an empty one: step one character and search again.
          if (start >= len) break;
          ++start;
          while (start < len && (subject[start] & 0xC0) == 0x80) ++start;
          options = PCRE2_NO_UTF_CHECK;
          continue;
        }
        if (rc < 0) {
          return Status::error("pre-tokenizer: PCRE2 failed on a piece of " + std::to_string(len) +
                               " bytes: " + pcre2_message(rc));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.md);
        const PCRE2_SIZE ms = ov[0], me = ov[1];
        if (ms > emitted) {
          next.push_back(
              {piece.offset + static_cast<uint32_t>(emitted), static_cast<uint32_t>(ms - emitted)});
        }
        if (me > ms) {
          next.push_back(
              {piece.offset + static_cast<uint32_t>(ms), static_cast<uint32_t>(me - ms)});
        }
        emitted = me;
        start = me;
        // After an empty match, look for a non-empty one at the same place before moving on.
        options = me == ms ? (PCRE2_NO_UTF_CHECK | PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED)
                           : PCRE2_NO_UTF_CHECK;
      }
      if (emitted < len) {
        next.push_back(
            {piece.offset + static_cast<uint32_t>(emitted), static_cast<uint32_t>(len - emitted)});
      }
    }
    out.swap(next);
  }
  return {};
}

}  // namespace minnow::text
