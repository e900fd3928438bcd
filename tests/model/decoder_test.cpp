// Decoder parity with transformers (logits, completion-only loss) and self-consistency:
// padded and packed rows, KV-cache decoding, activation checkpointing, the fused CPU attention
// and (on a GPU) flash varlen attention against SDPA, weight shape errors.
#include "dtune/model/decoder.h"

#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"
#include "oracle_fixture.h"

namespace dtune {
namespace {

using test::oracle_tensor;
using test::scaled_max_diff;

// fp32 on both sides; the differences come from summation order (BLAS blocking, SDPA kernels)
// accumulated over the layers: ~1e-6 of the logit scale for the tiny models and a few 1e-6 for
// SmolLM2's 30 layers. 1e-4 leaves room for other BLAS builds and still catches any semantic
// error (a wrong RoPE band, bias or norm moves logits by > 1e-2 of their scale).
constexpr double kLogitTol = 1e-4;

at::Tensor positions(int64_t B, int64_t T) {
  return at::arange(T, at::kLong).unsqueeze(0).expand({B, T}).contiguous();
}

at::Tensor full_logits(Decoder& d, const at::Tensor& ids) {
  at::NoGradGuard no_grad;
  const at::Tensor h = d.forward_hidden(ids, positions(ids.size(0), ids.size(1)), AttentionMask::causal());
  return d.logits(h);
}

BOOST_AUTO_TEST_CASE(logits_and_loss_match_transformers) {
  for (const auto& [name, dir] : test::test_models()) {
    Decoder d = Decoder::load(dir);
    const at::Tensor ids = oracle_tensor(name, "input_ids");
    const at::Tensor labels = oracle_tensor(name, "labels");
    at::NoGradGuard no_grad;
    const at::Tensor h = d.forward_hidden(ids, positions(ids.size(0), ids.size(1)), AttentionMask::causal());
    const double diff = scaled_max_diff(d.logits(h), oracle_tensor(name, "logits"));
    BOOST_TEST_MESSAGE(name << ": logits scaled max diff " << diff);
    BOOST_TEST(diff <= kLogitTol, name << ": logits differ by " << diff);

    // Completion-only loss: HF's mean over the shifted labels = our sum / count.
    const LossSum loss = d.loss(h, labels);
    BOOST_TEST(loss.num_tokens == oracle_tensor(name, "loss_tokens").item<int64_t>(), name);
    const double ours = loss.sum.item<double>() / static_cast<double>(loss.num_tokens);
    const double ref = oracle_tensor(name, "loss").item<double>();
    BOOST_TEST_MESSAGE(name << ": loss " << ours << " vs transformers " << ref);
    BOOST_TEST(std::abs(ours - ref) <= 1e-5 * std::abs(ref), name << ": loss " << ours << " vs " << ref);
  }
}

BOOST_AUTO_TEST_CASE(shifted_labels_give_the_same_loss) {
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_qwen2");
  const at::Tensor ids = at::randint(3, 320, {2, 12}, at::kLong);
  at::Tensor labels = ids.clone();
  labels.slice(1, 0, 4).fill_(kIgnoreIndex);
  at::NoGradGuard no_grad;
  const at::Tensor h = d.forward_hidden(ids, positions(2, 12), AttentionMask::causal());
  const at::Tensor shifted = at::cat({labels.slice(1, 1), at::full({2, 1}, kIgnoreIndex, at::kLong)}, 1);
  const LossSum a = d.loss(h, labels), b = d.loss(h, shifted, /*labels_shifted=*/true);
  BOOST_TEST(a.num_tokens == 2 * 8);
  BOOST_TEST(a.num_tokens == b.num_tokens);
  BOOST_TEST(a.sum.item<double>() == b.sum.item<double>());
}

// Rows padded on the left and on the right give, at their real tokens, the logits of the
// unpadded rows run alone (fp32; only summation order differs, 1e-5 of the scale).
BOOST_AUTO_TEST_CASE(padded_rows_match_rows_run_alone) {
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_llama3");
  at::manual_seed(1);
  const at::Tensor a = at::randint(3, 320, {1, 9}, at::kLong);
  const at::Tensor b = at::randint(3, 320, {1, 14}, at::kLong);
  const at::Tensor pad = at::zeros({1, 5}, at::kLong);
  for (bool left : {true, false}) {
    const at::Tensor row_a = left ? at::cat({pad, a}, 1) : at::cat({a, pad}, 1);
    const at::Tensor ids = at::cat({row_a, b}, 0);  // (2, 14)
    at::Tensor valid = at::ones({2, 14}, at::kLong);
    if (left) valid[0].slice(0, 0, 5).fill_(0); else valid[0].slice(0, 9).fill_(0);
    at::NoGradGuard no_grad;
    const at::Tensor h = d.forward_hidden(ids, position_ids_from_padding(valid), AttentionMask::padding(valid));
    const at::Tensor logits = d.logits(h);
    const at::Tensor la = left ? logits[0].slice(0, 5) : logits[0].slice(0, 0, 9);
    BOOST_TEST(scaled_max_diff(la, full_logits(d, a)[0]) <= 1e-5, "left=" << left);
    BOOST_TEST(scaled_max_diff(logits[1], full_logits(d, b)[0]) <= 1e-5, "left=" << left);
    BOOST_TEST(std::isfinite(logits.abs().max().item<double>()), "no NaN from padding queries");
    if (!left) {
      // Right padding under plain causal attention (what training batches use): real tokens
      // only see earlier, real positions, so their logits are the same.
      const at::Tensor causal = d.logits(d.forward_hidden(ids, position_ids_from_padding(valid), AttentionMask::causal()));
      BOOST_TEST(scaled_max_diff(causal[0].slice(0, 0, 9), full_logits(d, a)[0]) <= 1e-5);
      BOOST_TEST(scaled_max_diff(causal[1], full_logits(d, b)[0]) <= 1e-5);
    }
  }
}

// A packed row (block-diagonal causal mask from sequence ids, positions restarting per
// sequence) gives each sequence's logits as if it ran alone.
BOOST_AUTO_TEST_CASE(packed_row_matches_sequences_run_alone) {
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_qwen2_tied");
  at::manual_seed(2);
  const at::Tensor s1 = at::randint(3, 320, {1, 6}, at::kLong);
  const at::Tensor s2 = at::randint(3, 320, {1, 7}, at::kLong);
  const at::Tensor s3 = at::randint(3, 320, {1, 3}, at::kLong);
  const at::Tensor ids = at::cat({s1, s2, s3}, 1);  // (1, 16)
  const at::Tensor seq = at::cat({at::full({1, 6}, 0, at::kLong), at::full({1, 7}, 1, at::kLong),
                                  at::full({1, 3}, 2, at::kLong)}, 1);
  const at::Tensor pos = position_ids_from_sequence_ids(seq);
  BOOST_TEST(pos[0][6].item<int64_t>() == 0);
  BOOST_TEST(pos[0][12].item<int64_t>() == 6);
  at::NoGradGuard no_grad;
  const at::Tensor logits = d.logits(d.forward_hidden(ids, pos, AttentionMask::packed(seq)))[0];
  BOOST_TEST(scaled_max_diff(logits.slice(0, 0, 6), full_logits(d, s1)[0]) <= 1e-5);
  BOOST_TEST(scaled_max_diff(logits.slice(0, 6, 13), full_logits(d, s2)[0]) <= 1e-5);
  BOOST_TEST(scaled_max_diff(logits.slice(0, 13), full_logits(d, s3)[0]) <= 1e-5);
}

// Prefill + one token at a time through the KV cache equals the full forward, for a batch of
// left-padded prompts of different lengths (positions per row).
BOOST_AUTO_TEST_CASE(kv_cache_decoding_matches_full_forward) {
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_llama");
  at::manual_seed(3);
  const at::Tensor a = at::randint(3, 320, {1, 12}, at::kLong);  // prompt 5 + 7 decoded
  const at::Tensor b = at::randint(3, 320, {1, 15}, at::kLong);  // prompt 8 + 7 decoded
  const at::Tensor ref_a = full_logits(d, a)[0], ref_b = full_logits(d, b)[0];
  at::NoGradGuard no_grad;
  KVCache cache = d.make_kv_cache(2, 32);
  // Prefill: a's 5 prompt tokens left-padded to b's 8.
  const at::Tensor prompt = at::cat({at::cat({at::zeros({1, 3}, at::kLong), a.slice(1, 0, 5)}, 1),
                                     b.slice(1, 0, 8)}, 0);
  at::Tensor valid = at::ones({2, 8}, at::kLong);
  valid[0].slice(0, 0, 3).fill_(0);
  at::Tensor pos = position_ids_from_padding(valid);
  at::Tensor logits = d.logits(d.forward_hidden(prompt, pos, AttentionMask::padding(valid), &cache));
  BOOST_TEST(scaled_max_diff(logits[0].slice(0, 3), ref_a.slice(0, 0, 5)) <= 1e-5);
  BOOST_TEST(scaled_max_diff(logits[1], ref_b.slice(0, 0, 8)) <= 1e-5);
  at::Tensor next_pos = pos.slice(1, 7) + 1;  // (2, 1)
  for (int64_t step = 0; step < 7; ++step) {
    const at::Tensor tok = at::cat({a.slice(1, 5 + step, 6 + step), b.slice(1, 8 + step, 9 + step)}, 0);
    logits = d.logits(d.forward_hidden(tok, next_pos, AttentionMask::causal(), &cache));  // (2, 1, V)
    BOOST_TEST(scaled_max_diff(logits[0][0], ref_a[5 + step]) <= 1e-5, "step " << step);
    BOOST_TEST(scaled_max_diff(logits[1][0], ref_b[8 + step]) <= 1e-5, "step " << step);
    next_pos = next_pos + 1;
  }
  BOOST_TEST(cache.length() == 15);
  BOOST_CHECK_THROW(d.forward_hidden(at::zeros({2, 20}, at::kLong), positions(2, 20),
                                     AttentionMask::causal(), &cache),
                    Error);
}

std::vector<at::Tensor> lora_grads_of_step(Decoder& d, const at::Tensor& ids, const at::Tensor& labels) {
  for (auto& [key, p] : d.lora_parameters()) p.mutable_grad() = at::Tensor();
  at::manual_seed(7);  // the dropout stream
  const at::Tensor h = d.forward_hidden(ids, positions(ids.size(0), ids.size(1)), AttentionMask::causal());
  d.loss(h, labels).sum.backward();
  std::vector<at::Tensor> grads;
  for (auto& [key, p] : d.lora_parameters()) grads.push_back(p.grad().clone());
  return grads;
}

// Recomputing every layer, or every other one (the rest keep their activations), in backward,
// with dropout 0.1 active (the RNG state is replayed), gives exactly the gradients of the plain
// run: with an adapter on down_proj (the whole layer is recomputed) and without one (down_proj
// runs outside the checkpoint and is not recomputed).
BOOST_AUTO_TEST_CASE(activation_checkpointing_gives_identical_grads) {
  const std::vector<std::vector<std::string>> target_sets = {
      {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
      {"q_proj", "v_proj", "up_proj"}};
  for (const auto& targets : target_sets) {
    Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_qwen2");
    LoraOptions lora;
    lora.r = 4;
    lora.alpha = 8;
    lora.dropout = 0.1;
    lora.target_modules = targets;
    d.add_lora(lora, /*seed=*/5);
    {  // non-zero B so every gradient is non-trivial
      at::NoGradGuard no_grad;
      for (auto& [key, p] : d.lora_parameters()) {
        if (key.find("lora_B") != std::string::npos) p.normal_(0, 0.1);
      }
    }
    d.set_training(true);
    at::manual_seed(4);
    const at::Tensor ids = at::randint(3, 320, {2, 16}, at::kLong);
    at::Tensor labels = ids.clone();
    labels.slice(1, 0, 5).fill_(kIgnoreIndex);
    const auto plain = lora_grads_of_step(d, ids, labels);
    const std::string set = std::to_string(targets.size()) + " targets";
    for (int64_t every : {1, 2}) {  // the model has 2 layers: both, or only layer 0 recomputed
      d.set_activation_checkpointing(true, every);
      const auto ckpt = lora_grads_of_step(d, ids, labels);
      // Same ops on the same inputs and dropout masks: bitwise equal.
      BOOST_TEST_REQUIRE(plain.size() == ckpt.size());
      for (size_t i = 0; i < plain.size(); ++i) {
        BOOST_TEST(plain[i].abs().max().item<double>() > 0.0, set << ": grad " << i << " is zero");
        BOOST_TEST(at::equal(plain[i], ckpt[i]), set << ", every " << every << ": grad " << i << " differs");
      }
    }
    // Dropout is really active: another dropout stream changes the gradients.
    d.set_activation_checkpointing(false);
    for (auto& [key, p] : d.lora_parameters()) p.mutable_grad() = at::Tensor();
    at::manual_seed(8);
    d.loss(d.forward_hidden(ids, positions(2, 16), AttentionMask::causal()), labels).sum.backward();
    BOOST_TEST(!at::equal(d.lora_parameters()[0].second.grad(), plain[0]), set);
  }
}

// One packed LoRA training step of tiny_qwen2 (r = 4 on q, k, v, o; no dropout; B drawn
// N(0, 0.1) so every gradient is non-zero) on opts.device: the loss sum and every LoRA gradient
// (on the CPU). With rows, the mask carries packed_rows(seq) for flash varlen.
struct PackedStep {
  double loss = 0;
  std::vector<at::Tensor> grads;
};

PackedStep packed_lora_step(const DecoderOptions& opts, const at::Tensor& ids, const at::Tensor& seq,
                            const at::Tensor& labels, bool with_rows) {
  const c10::Device dev = opts.device;
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_qwen2", opts);
  LoraOptions lora;
  lora.r = 4;
  lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
  d.add_lora(lora, /*seed=*/3);
  {
    at::NoGradGuard no_grad;
    at::manual_seed(13);  // the same non-zero B on every call
    for (auto& [key, p] : d.lora_parameters())
      if (key.find("lora_B") != std::string::npos) p.copy_(at::randn(p.sizes()) * 0.1);
  }
  AttentionMask mask = AttentionMask::packed(seq.to(dev));
  if (with_rows) {
    AttentionMask::Rows rows = packed_rows(seq);
    rows.cu_seqlens = rows.cu_seqlens.to(dev);
    mask = AttentionMask::packed(seq.to(dev), std::move(rows));
  }
  const LossSum loss =
      d.loss(d.forward_hidden(ids.to(dev), position_ids_from_sequence_ids(seq).to(dev), mask), labels.to(dev));
  loss.sum.backward();
  PackedStep out;
  out.loss = loss.sum.item<double>();
  for (auto& [key, p] : d.lora_parameters()) out.grads.push_back(p.grad().cpu());
  return out;
}

// a and b agree: loss within loss_tol relative, every gradient within grad_tol of its scale (and
// none is all zeros).
void expect_same_step(const PackedStep& a, const PackedStep& b, double loss_tol, double grad_tol) {
  BOOST_TEST(std::abs(a.loss - b.loss) <= loss_tol * std::abs(b.loss));
  BOOST_TEST_REQUIRE(a.grads.size() == b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) {
    BOOST_TEST(b.grads[i].abs().max().item<double>() > 0.0);
    BOOST_TEST(scaled_max_diff(a.grads[i], b.grads[i]) <= grad_tol, "grad " << i);
  }
}

// The fused CPU attention kernel (the default on x86-64 CPUs with AVX-512) and libtorch's SDPA
// give the same packed training step: loss and every LoRA gradient, fp32. Summation orders
// differ, so 1e-5 of each gradient's scale.
BOOST_AUTO_TEST_CASE(fused_cpu_attention_and_sdpa_give_the_same_packed_step) {
  at::manual_seed(12);
  const at::Tensor ids = at::randint(3, 320, {2, 20}, at::kLong);
  const at::Tensor seq = at::cat({at::full({2, 7}, 0, at::kLong), at::full({2, 9}, 1, at::kLong),
                                  at::full({2, 4}, -1, at::kLong)}, 1);  // two sequences, then pads
  at::Tensor labels = ids.clone();
  labels.slice(1, 0, 3).fill_(kIgnoreIndex);
  labels.slice(1, 7, 10).fill_(kIgnoreIndex);
  labels.slice(1, 16).fill_(kIgnoreIndex);
  std::vector<PackedStep> steps;
  for (bool fused : {true, false}) {
    DecoderOptions opts;
    opts.kernels = fused ? KernelPolicy::kDtune : KernelPolicy::kReference;
    steps.push_back(packed_lora_step(opts, ids, seq, labels, /*with_rows=*/false));
  }
  expect_same_step(steps[0], steps[1], /*loss_tol=*/1e-5, /*grad_tol=*/1e-5);
}

// packed_rows: every run of one id within a batch row is a row, runs never continue across
// batch rows, and the offsets index the flattened (B * T) tokens. Against a hand-written case and
// against position_ids_from_sequence_ids (a row starts where the position restarts at 0) on
// random packings.
BOOST_AUTO_TEST_CASE(packed_rows_are_the_runs_of_each_batch_row) {
  const at::Tensor seq = at::tensor({0, 0, 0, 1, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 2, 2}, at::kLong).view({2, 8});
  const AttentionMask::Rows rows = packed_rows(seq);
  BOOST_TEST(rows.cu_seqlens.scalar_type() == at::kInt);
  BOOST_TEST(at::equal(rows.cu_seqlens, at::tensor({0, 3, 5, 8, 14, 16}, at::kInt)), rows.cu_seqlens);
  BOOST_TEST(rows.max_len == 6);

  at::manual_seed(14);
  for (int trial = 0; trial < 20; ++trial) {
    // Ids that change at random places, with repeats of the same id across batch rows.
    const at::Tensor ids = at::randint(0, 3, {3, 33}, at::kLong).cumsum(1) % 4;
    const AttentionMask::Rows r = packed_rows(ids);
    const at::Tensor pos = position_ids_from_sequence_ids(ids).reshape({-1});
    const at::Tensor starts = at::nonzero(pos == 0).reshape({-1}).to(at::kInt);
    const at::Tensor expect = at::cat({starts, at::full({1}, ids.numel(), at::kInt)});
    BOOST_TEST(at::equal(r.cu_seqlens, expect), "trial " << trial);
    BOOST_TEST(r.max_len == pos.max().item<int64_t>() + 1, "trial " << trial);
  }
}

// On CUDA, packed rows run through flash attention's varlen kernel; libtorch's SDPA with the
// (B, 1, T, T) mask is the reference. Same bf16 training step with checkpointing: loss within
// 1e-2 relative, every LoRA gradient within 5e-2 of its scale (bf16 has 8 mantissa bits and the
// two kernels round in different places). Skipped without a GPU.
bool has_cuda() { return at::globalContext().hasCUDA(); }

BOOST_AUTO_TEST_CASE(flash_varlen_and_sdpa_give_the_same_packed_step_on_cuda,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) { return has_cuda(); })) {
  at::manual_seed(15);
  const at::Tensor ids = at::randint(3, 320, {2, 24}, at::kLong);
  const at::Tensor seq = at::cat({at::full({2, 7}, 0, at::kLong), at::full({2, 13}, 1, at::kLong),
                                  at::full({2, 4}, -1, at::kLong)}, 1);  // two sequences, then pads
  at::Tensor labels = ids.clone();
  labels.slice(1, 0, 3).fill_(kIgnoreIndex);
  labels.slice(1, 20).fill_(kIgnoreIndex);
  std::vector<PackedStep> steps;
  for (bool varlen : {true, false}) {
    DecoderOptions opts;
    opts.dtype = at::kBFloat16;
    opts.device = c10::Device(c10::kCUDA, 0);
    opts.activation_checkpointing = true;
    opts.kernels = varlen ? KernelPolicy::kDtune : KernelPolicy::kReference;
    steps.push_back(packed_lora_step(opts, ids, seq, labels, /*with_rows=*/true));
  }
  expect_same_step(steps[0], steps[1], /*loss_tol=*/1e-2, /*grad_tol=*/5e-2);
}

BOOST_AUTO_TEST_CASE(wrong_weight_shape_names_the_weight) {
  const std::string dir = std::string(DTUNE_TEST_DATA) + "/model/tiny_llama";
  const ModelConfig config = load_model_config(dir);
  const WeightStore store = WeightStore::open(dir);
  auto loader = [&](const std::string& name, c10::ScalarType dtype, c10::Device device) {
    at::Tensor t = store.load(name, dtype, device);
    return name == "model.layers.1.mlp.up_proj.weight" ? t.slice(0, 1) : t;
  };
  try {
    Decoder d(config, loader, DecoderOptions{});
    BOOST_FAIL("no error for a wrong weight shape");
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("model.layers.1.mlp.up_proj.weight") != std::string::npos, msg);
    BOOST_TEST(msg.find("(127, 64)") != std::string::npos, msg);
    BOOST_TEST(msg.find("(128, 64)") != std::string::npos, msg);
  }
}

// bf16 base weights and activations stay close to fp32 (bf16 has 8 mantissa bits; 2 layers:
// a few % of the logit scale) and parameter counting is exact.
BOOST_AUTO_TEST_CASE(bf16_decoder_is_close_to_fp32_and_counts_parameters) {
  const std::string dir = std::string(DTUNE_TEST_DATA) + "/model/tiny_llama";
  Decoder f32 = Decoder::load(dir);
  DecoderOptions opts;
  opts.dtype = at::kBFloat16;
  Decoder bf16 = Decoder::load(dir, opts);
  const at::Tensor ids = at::randint(3, 320, {1, 10}, at::kLong);
  const at::Tensor lb = full_logits(bf16, ids);
  BOOST_TEST(lb.scalar_type() == at::kBFloat16);
  BOOST_TEST(scaled_max_diff(lb, full_logits(f32, ids)) <= 0.05);
  // embed 320*64 + head 320*64 + norm 64 + 2 layers * (2*64 + q 64*64 + k,v 2*32*64 + o 64*64
  // + 3*128*64)
  const int64_t per_layer = 2 * 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64;
  BOOST_TEST(f32.num_parameters() == 2 * 320 * 64 + 64 + 2 * per_layer);
}

}  // namespace
}  // namespace dtune
