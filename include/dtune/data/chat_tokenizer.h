// Token ids and loss mask of a rendered conversation: the ids transformers'
// apply_chat_template(messages, tokenize=True) returns, and which of them take the loss.
#pragma once

#include <cstdint>
#include <vector>

#include "dtune/data/chat_template.h"

namespace dtune {

class Tokenizer;

// ids = tokenizer.encode(chat.text, add_special_tokens=false) (the template writes BOS itself;
// apply_chat_template encodes without the post-processor the same way). loss_mask[i] = 1 when
// the bytes of ids[i] overlap one of chat.loss_spans, as transformers' assistant mask marks
// every token from the one holding a span's first character to the one holding its last.
// Byte offsets come from Tokenizer::token_bytes; throws dtune::Error when they do not add up
// to the text (a tokenizer whose normalizer rewrites the text), as the mask could not be placed.
void tokenize_chat(const Tokenizer& tokenizer, const RenderedChat& chat, std::vector<int32_t>& ids,
                   std::vector<int8_t>& loss_mask);

}  // namespace dtune
