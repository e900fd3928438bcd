// Ids and loss mask of a rendered conversation; see include/dtune/data/chat_tokenizer.h.
#include "dtune/data/chat_tokenizer.h"

#include "dtune/core/error.h"
#include "dtune/tokenizer/tokenizer.h"

namespace dtune {

void tokenize_chat(const Tokenizer& tokenizer, const RenderedChat& chat, std::vector<int32_t>& ids,
                   std::vector<int8_t>& loss_mask) {
  ids = tokenizer.encode(chat.text, false);
  loss_mask.assign(ids.size(), 0);
  size_t offset = 0;
  size_t span = 0;  // spans are in text order and disjoint
  for (size_t i = 0; i < ids.size(); ++i) {
    const size_t begin = offset;
    offset += tokenizer.token_bytes(ids[i]).size();
    while (span < chat.loss_spans.size() && chat.loss_spans[span].second <= begin) ++span;
    if (span < chat.loss_spans.size() && chat.loss_spans[span].first < offset &&
        chat.loss_spans[span].second > chat.loss_spans[span].first) {
      loss_mask[i] = 1;
    }
  }
  DTUNE_CHECK(offset == chat.text.size(), tokenizer.path(), ": the tokens of a rendered conversation cover ",
              offset, " bytes of its ", chat.text.size(), " (the tokenizer's normalizer rewrites the text), so ",
              "dtune cannot place the assistant-turn loss mask on them");
}

}  // namespace dtune
