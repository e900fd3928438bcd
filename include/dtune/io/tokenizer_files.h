// The tokenizer files of a Hugging Face folder, copied beside what dtune writes (adapter folders,
// checkpoints, merged models) so that AutoTokenizer.from_pretrained(that folder) works, as
// transformers' Trainer.save_model leaves them.
#pragma once

#include <string>

namespace dtune {

// Copies whichever of tokenizer.json, tokenizer_config.json (with its chat template),
// special_tokens_map.json, tokenizer.model, vocab.json, merges.txt, added_tokens.json,
// chat_template.jinja and chat_template.json exist in source into dir (an existing folder).
// source is a model folder or a tokenizer.json file (the others are then taken from its folder;
// the file is copied as tokenizer.json). Returns the number of files copied. Throws dtune::Error
// naming the file on a copy failure.
int copy_tokenizer_files(const std::string& source, const std::string& dir);

}  // namespace dtune
