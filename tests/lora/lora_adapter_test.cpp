// LoRA against peft: logits and the gradient of every lora_A / lora_B with the same random
// adapter loaded on both sides; merge; PEFT key names and order; init; load errors; fp32 masters.
#include "dtune/lora/lora_adapter.h"

#include <cmath>

#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include "dtune/config/config.h"
#include "dtune/core/error.h"
#include "dtune/lora/lora_linear.h"
#include "dtune/model/decoder.h"
#include "../model/oracle_fixture.h"

namespace dtune {
namespace {

using test::oracle_tensor;
using test::scaled_max_diff;

const std::vector<std::string> kAllTargets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};

LoraOptions oracle_lora() {  // what scripts/model_oracle.py configures in peft
  LoraOptions o;
  o.r = 4;
  o.alpha = 8;
  o.dropout = 0.0;
  o.target_modules = kAllTargets;
  return o;
}

at::Tensor positions(int64_t B, int64_t T) {
  return at::arange(T, at::kLong).unsqueeze(0).expand({B, T}).contiguous();
}

// Logits (fp32: tolerance as the base-model test, 1e-4 of the logit scale) and every adapter
// gradient (d sum-of-token-CE / d param; fp32, 1e-4 of each gradient's own max: the backward
// sums over tokens and layers in a different order than PyTorch's autograd).
BOOST_AUTO_TEST_CASE(lora_logits_and_grads_match_peft) {
  for (const auto& [name, dir] : test::test_models()) {
    Decoder d = Decoder::load(dir);
    d.add_lora(oracle_lora(), /*seed=*/0);
    d.load_lora(test::oracle_tensors_with_prefix(name, "adapter."));
    const at::Tensor ids = oracle_tensor(name, "input_ids");
    const at::Tensor labels = oracle_tensor(name, "labels");
    const at::Tensor h = d.forward_hidden(ids, positions(ids.size(0), ids.size(1)), AttentionMask::causal());
    const double diff = scaled_max_diff(d.logits(h).detach(), oracle_tensor(name, "lora_logits"));
    BOOST_TEST_MESSAGE(name << ": LoRA logits scaled max diff " << diff);
    BOOST_TEST(diff <= 1e-4, name << ": LoRA logits differ by " << diff);
    const LossSum loss = d.loss(h, labels);
    const double mean = loss.sum.item<double>() / static_cast<double>(loss.num_tokens);
    const double ref = oracle_tensor(name, "lora_loss").item<double>();
    BOOST_TEST(std::abs(mean - ref) <= 1e-5 * ref, name << ": loss " << mean << " vs " << ref);
    loss.sum.backward();

    const auto ref_grads = test::oracle_tensors_with_prefix(name, "grad.");
    const auto params = d.lora_parameters();
    BOOST_TEST_REQUIRE(params.size() == ref_grads.size(), name);
    std::map<std::string, at::Tensor> by_key(ref_grads.begin(), ref_grads.end());
    double worst = 0.0;
    for (const auto& [key, p] : params) {
      BOOST_TEST_REQUIRE(by_key.count(key), key);
      const at::Tensor& g = by_key.at(key);
      const double rel = (p.grad() - g).abs().max().item<double>() /
                         std::max(1e-12, g.abs().max().item<double>());
      worst = std::max(worst, rel);
      BOOST_TEST(rel <= 1e-4, name << ": grad of " << key << " differs by " << rel);
    }
    BOOST_TEST_MESSAGE(name << ": worst relative LoRA gradient diff " << worst);
  }
}

// Merging W += scale * B @ A gives the adapter model's logits (fp32; merge rounds W once).
BOOST_AUTO_TEST_CASE(merged_base_gives_the_adapter_logits) {
  const std::string name = "tiny_qwen2";
  Decoder d = Decoder::load(test::test_models().at(name));
  d.add_lora(oracle_lora(), 0);
  d.load_lora(test::oracle_tensors_with_prefix(name, "adapter."));
  d.merge_lora();
  BOOST_TEST(d.lora_parameters().empty());
  BOOST_TEST(d.num_lora_parameters() == 0);
  const at::Tensor ids = oracle_tensor(name, "input_ids");
  at::NoGradGuard no_grad;
  const at::Tensor logits = d.logits(d.forward_hidden(ids, positions(2, ids.size(1)), AttentionMask::causal()));
  BOOST_TEST(scaled_max_diff(logits, oracle_tensor(name, "lora_logits")) <= 1e-4);
}

BOOST_AUTO_TEST_CASE(parameters_have_peft_names_in_model_order) {
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_llama");
  LoraOptions o;
  o.target_modules = {"v_proj", "q_proj", "down_proj"};
  d.add_lora(o, 1);
  const auto params = d.lora_parameters();
  BOOST_TEST_REQUIRE(params.size() == 2u * 2u * 3u);
  BOOST_TEST(params[0].first == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  BOOST_TEST(params[1].first == "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  BOOST_TEST(params[2].first == "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight");
  BOOST_TEST(params[5].first == "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
  BOOST_TEST(params[6].first == "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
  BOOST_TEST((params[0].second.sizes() == at::IntArrayRef{4, 64}));   // (r, in)
  BOOST_TEST((params[5].second.sizes() == at::IntArrayRef{64, 4}));   // (out, r)
  BOOST_TEST(d.num_lora_parameters() == 2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4 + 4 * 128 + 64 * 4));
  for (const auto& [key, p] : params) {
    BOOST_TEST(p.requires_grad(), key);
    BOOST_TEST(p.scalar_type() == at::kFloat, key);
  }
}

// A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's kaiming_uniform(a=sqrt(5)), B = 0, reproducible
// by seed; a fresh adapter leaves the logits unchanged.
BOOST_AUTO_TEST_CASE(init_is_peft_like_and_seeded) {
  const std::string dir = std::string(DTUNE_TEST_DATA) + "/model/tiny_llama";
  Decoder d1 = Decoder::load(dir), d2 = Decoder::load(dir), d3 = Decoder::load(dir);
  LoraOptions o;
  o.r = 8;
  o.target_modules = kAllTargets;
  const at::Tensor ids = at::randint(3, 320, {1, 8}, at::kLong);
  at::Tensor before;
  {
    at::NoGradGuard no_grad;
    before = d1.logits(d1.forward_hidden(ids, positions(1, 8), AttentionMask::causal()));
  }
  d1.add_lora(o, 42);
  d2.add_lora(o, 42);
  d3.add_lora(o, 43);
  const auto p1 = d1.lora_parameters(), p2 = d2.lora_parameters(), p3 = d3.lora_parameters();
  for (size_t i = 0; i < p1.size(); ++i) {
    const at::Tensor& t = p1[i].second;
    BOOST_TEST(at::equal(t, p2[i].second), p1[i].first);
    if (i % 2 == 0) {  // lora_A (r, in)
      const double bound = 1.0 / std::sqrt(static_cast<double>(t.size(1)));
      const double max = t.abs().max().item<double>();
      BOOST_TEST(max <= bound, p1[i].first);
      BOOST_TEST(max >= 0.8 * bound, p1[i].first);  // spans the interval (512+ draws)
      BOOST_TEST(!at::equal(t, p3[i].second), p1[i].first);
    } else {
      BOOST_TEST(t.abs().max().item<double>() == 0.0, p1[i].first);
    }
  }
  at::NoGradGuard no_grad;
  const at::Tensor after = d1.logits(d1.forward_hidden(ids, positions(1, 8), AttentionMask::causal()));
  BOOST_TEST(at::equal(before, after));
}

BOOST_AUTO_TEST_CASE(load_and_attach_errors_name_the_problem) {
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_llama");
  LoraOptions bad;
  bad.target_modules = {"qkv_proj"};
  BOOST_CHECK_THROW(d.add_lora(bad, 0), Error);
  LoraOptions o;  // q_proj, v_proj, r = 4
  d.add_lora(o, 0);
  auto tensors = d.lora_parameters();
  std::vector<std::pair<std::string, at::Tensor>> saved;
  for (auto& [k, t] : tensors) saved.emplace_back(k, t.detach().clone());
  saved[1].second = at::zeros({64, 8});  // wrong rank for layers.0 q_proj lora_B
  try {
    d.load_lora(saved);
    BOOST_FAIL("no error for a wrong shape");
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("layers.0.self_attn.q_proj.lora_B.weight") != std::string::npos, msg);
    BOOST_TEST(msg.find("(64, 8)") != std::string::npos, msg);
    BOOST_TEST(msg.find("(64, 4)") != std::string::npos, msg);
  }
  saved.pop_back();
  saved[1].second = at::zeros({64, 4});
  BOOST_CHECK_THROW(d.load_lora(saved), Error);  // missing key
}

BOOST_AUTO_TEST_CASE(options_from_config_and_rslora_scale) {
  LoraSection s;
  s.r = 16;
  s.alpha = 32;
  s.use_rslora = true;
  s.target_modules = {"q_proj"};
  const LoraOptions o = s;  // the [lora] section is LoraOptions (+ init_adapter)
  BOOST_TEST(o.scale() == 32.0 / 4.0);
  s.use_rslora = false;
  BOOST_TEST(LoraOptions(s).scale() == 2.0);
  BOOST_TEST(LoraOptions(s).dropout == 0.1);
}

// bf16 base: adapter masters stay fp32 and receive fp32 gradients through the bf16 LoRA path;
// dropout is on only in training mode.
BOOST_AUTO_TEST_CASE(fp32_masters_on_a_bf16_base_and_dropout_only_in_training) {
  DecoderOptions opts;
  opts.dtype = at::kBFloat16;
  Decoder d = Decoder::load(std::string(DTUNE_TEST_DATA) + "/model/tiny_qwen2_tied", opts);
  LoraOptions o;
  o.dropout = 0.5;
  d.add_lora(o, 3);
  {
    at::NoGradGuard no_grad;
    for (auto& [k, p] : d.lora_parameters()) p.normal_(0, 0.1);
  }
  const at::Tensor ids = at::randint(3, 320, {1, 8}, at::kLong);
  auto run = [&] { return d.logits(d.forward_hidden(ids, positions(1, 8), AttentionMask::causal())); };
  const at::Tensor e1 = run().detach(), e2 = run().detach();
  BOOST_TEST(at::equal(e1, e2));  // eval: no dropout
  d.set_training(true);
  const at::Tensor t1 = run();
  BOOST_TEST(!at::equal(t1.detach(), e1));
  d.loss(d.forward_hidden(ids, positions(1, 8), AttentionMask::causal()), ids).sum.backward();
  for (auto& [k, p] : d.lora_parameters()) {
    BOOST_TEST(p.scalar_type() == at::kFloat, k);
    BOOST_TEST_REQUIRE(p.grad().defined(), k);
    BOOST_TEST(p.grad().scalar_type() == at::kFloat, k);
    BOOST_TEST(p.grad().abs().max().item<double>() > 0.0, k);
  }
}

}  // namespace
}  // namespace dtune
