// From a conversation to prompt tokens: the chat template a model should be prompted with and
// the tokenization of the rendered text.
//
// The template is the GGUF's tokenizer.chat_template. Files that carry none (the Gemma 3 270M
// GGUF we ship is one) get the published turn format of their architecture from a small
// built-in table, as Ollama's Modelfiles give one; other architectures fall back to ChatML
// with the warning text::ChatTemplate gives.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "text/chat_template.h"
#include "util/status.h"

namespace minnow::engine {

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
};

// The template for `model` (see above). warning() is set when it is a guess.
Result<text::ChatTemplate> chat_template_for(const model::Model& model);

// messages -> prompt text, ending with the assistant's turn opening when add_generation_prompt.
Result<std::string> render_chat(const text::ChatTemplate& tmpl,
                                const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

// Prompt text -> ids. Special tokens written in the text are recognized (templates write
// them); BOS is added where the model wants it unless the text already starts with it.
Result<std::vector<int32_t>> tokenize_prompt(const model::Model& model, std::string_view text);

}  // namespace minnow::engine
