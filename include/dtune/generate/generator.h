// The generation loop: prefill the prompt(s) into a preallocated KV cache in one forward, then
// decode one token per forward until EOS or max_new_tokens; greedy or sampled (sampling.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dtune/generate/generate_options.h"  // GenerateOptions
#include "dtune/generate/sampling.h"

namespace at {
class Tensor;
}

namespace dtune {

class Decoder;
class Tokenizer;

// Wall time and token counts of one generate_ids() call.
struct GenerateStats {
  int64_t prompt_tokens = 0;    // real prompt tokens, all rows (padding excluded)
  int64_t new_tokens = 0;       // generated tokens, all rows (EOS included)
  int64_t decode_tokens = 0;    // generated tokens after each row's first (the decode steps' output)
  int64_t decode_steps = 0;     // forwards after the prefill
  double prefill_seconds = 0;   // the prompt forward + the first token's selection
  double decode_seconds = 0;    // every later step
  double decode_tokens_per_second() const;  // decode_tokens / decode_seconds
};

// Called after every step with the step index (0 = the token chosen after the prefill) and
// each row's new token; rows that had already finished get -1.
using StepCallback = std::function<void(int64_t step, const std::vector<int32_t>& tokens)>;

// Batch generation on token ids. prompts: one non-empty id list per row; rows are left-padded
// to a common length and masked, so each row's output equals what it would get alone (up to
// floating-point reduction order). Returns each row's new ids, its EOS id included when it
// stopped there. Throws dtune::Error when a prompt + max_new_tokens exceeds the model's
// max_position_embeddings or an id is outside the vocabulary.
std::vector<std::vector<int32_t>> generate_ids(Decoder& decoder,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               const GenerateOptions& options,
                                               GenerateStats* stats = nullptr,
                                               const StepCallback& on_step = {});

// Turns a growing id list into text pieces that never split a UTF-8 character: each push()
// decodes the ids so far and returns the new complete suffix (a trailing U+FFFD, which stands
// for an incomplete byte sequence, is held back until a later token completes it or finish()).
class TextStreamer {
 public:
  TextStreamer(const Tokenizer& tokenizer, bool skip_special_tokens = true);
  std::string push(int32_t id);
  std::string finish();  // whatever was held back
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  std::string emitted_;
};

// One prompt -> generated text (special tokens and the EOS skipped). on_text receives the text
// as it is produced, in pieces of whole UTF-8 characters; their concatenation is the result.
std::string generate_text(Decoder& decoder, const Tokenizer& tokenizer, const std::string& prompt,
                          const GenerateOptions& options,
                          const std::function<void(std::string_view)>& on_text = {},
                          GenerateStats* stats = nullptr);

// Loads a PEFT adapter folder onto decoder (load_peft_adapter, the one loader): each saved module
// gets its adapter with its rank and scale; the other projections stay plain.
// Throws dtune::Error naming the adapter folder when its shapes or targets do not fit the model.
void load_adapter_into(Decoder& decoder, const std::string& adapter_dir);

}  // namespace dtune
