// The recipe's small named parts: TrainerState through JSON (as trainer_state.json), gradient
// clipping against torch.nn.utils.clip_grad_norm_'s formula, a checkpoint's AdamW moments by
// name, and training_flops on a batch whose count is worked out by hand.
#include <boost/test/unit_test.hpp>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>

#include "dtune/core/error.h"
#include "dtune/data/batcher.h"
#include "dtune/io/model_config.h"
#include "dtune/train/checkpoint.h"
#include "dtune/train/flops.h"
#include "dtune/train/grad_clip.h"
#include "dtune/train/trainer_state.h"

BOOST_AUTO_TEST_CASE(trainer_state_round_trips_and_names_a_missing_key) {
  dtune::TrainerState s;
  s.step = 7;
  s.epoch = 2;
  s.micro_in_epoch = 3;
  s.optimizer_steps = 6;
  s.total_steps = 40;
  s.loss_scaler = {{"scale", 32768.0}, {"clean_steps", 5}};
  s.world_size = 4;
  s.dtune_version = "0.7.0";
  const nlohmann::json j = s;
  // The keys trainer_state.json has always had, so earlier checkpoints resume.
  for (const char* key : {"step", "epoch", "micro_in_epoch", "optimizer_steps", "total_steps", "loss_scaler",
                          "world_size", "dtune_version"})
    BOOST_TEST(j.contains(key), key);
  const auto back = nlohmann::json::parse(j.dump()).get<dtune::TrainerState>();
  BOOST_TEST(back.step == 7);
  BOOST_TEST(back.epoch == 2);
  BOOST_TEST(back.micro_in_epoch == 3);
  BOOST_TEST(back.optimizer_steps == 6);
  BOOST_TEST(back.total_steps == 40);
  BOOST_TEST(back.loss_scaler == s.loss_scaler);
  BOOST_TEST(back.world_size == 4);
  BOOST_TEST(back.dtune_version == "0.7.0");
  BOOST_TEST(back.data.is_null());  // checkpoints written before dtune recorded the data file
  dtune::TrainerState with_data = s;
  with_data.data = {{"max_length", 160}, {"source_sha256", "ab"}};
  BOOST_TEST(nlohmann::json::parse(nlohmann::json(with_data).dump()).get<dtune::TrainerState>().data == with_data.data);

  nlohmann::json missing = j;
  missing.erase("micro_in_epoch");
  try {
    (void)missing.get<dtune::TrainerState>();
    BOOST_FAIL("a missing key was accepted");
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find("\"micro_in_epoch\" is missing") != std::string::npos, e.what());
  }
  nlohmann::json mistyped = j;
  mistyped["step"] = "seven";
  BOOST_CHECK_THROW((void)mistyped.get<dtune::TrainerState>(), dtune::Error);
}

BOOST_AUTO_TEST_CASE(clip_grad_norm_follows_torch_formula) {
  // torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to 1.
  at::Tensor g = at::tensor({3.0f, 4.0f, 0.0f, -12.0f});  // norm 13
  const double norm = g.norm().item<double>();
  BOOST_TEST(norm == 13.0, boost::test_tools::tolerance(1e-12));
  at::Tensor expect = g * static_cast<float>(0.3 / (13.0 + 1e-6));
  const double coef = dtune::clip_grad_norm(g, norm, 0.3);
  BOOST_TEST(coef == 0.3 / (13.0 + 1e-6), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at::equal(g, expect));
  at::Tensor small = at::tensor({0.1f, 0.2f});  // norm below max_norm: untouched
  const at::Tensor before = small.clone();
  BOOST_TEST(dtune::clip_grad_norm(small, small.norm().item<double>(), 1.0) == 1.0);
  BOOST_TEST(at::equal(small, before));
  BOOST_TEST(dtune::clip_grad_norm(small, 100.0, 0.0) == 1.0);  // max_norm 0: off
  BOOST_TEST(at::equal(small, before));
}

BOOST_AUTO_TEST_CASE(training_flops_counts_rows_not_padding) {
  dtune::ModelConfig c;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 2;
  c.head_dim = 4;
  dtune::Batch b;
  b.batch_size = 2;
  b.seq_len = 6;
  // Sequence 0: a packed row of 3 and one of 2, then padding. Sequence 1: one row of 4.
  b.sequence_ids = {0, 0, 0, 1, 1, -1, /**/ 0, 0, 0, 0, -1, -1};
  // 4N per token: 4 * 100 * (3 + 2 + 4) = 3600; attention 6 * layers * heads * head_dim * n^2:
  // 6 * 3 * 8 * (9 + 4 + 16) = 4176.
  BOOST_TEST(dtune::training_flops(b, c, 100) == 3600.0 + 4176.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(dtune::training_flops(dtune::make_empty_batch(), c, 100) == 0.0);
}

BOOST_AUTO_TEST_CASE(matmul_parameters_leave_out_the_embedding_lookup) {
  // DeepSeek-R1-Distill-Llama-8B: 8,030,261,248 parameters, untied, vocab 128,256 x hidden 4,096.
  dtune::ModelConfig llama;
  llama.vocab_size = 128256;
  llama.hidden_size = 4096;
  BOOST_TEST(dtune::matmul_parameters(llama, 8030261248) == 7504924672);
  // Tied (SmolLM2, Qwen2-1.5B): the one matrix is the LM head's, counted once.
  dtune::ModelConfig tied = llama;
  tied.tie_word_embeddings = true;
  BOOST_TEST(dtune::matmul_parameters(tied, 1000000000) == 1000000000);
}

BOOST_AUTO_TEST_CASE(adamw_moments_refuse_an_unknown_or_missing_tensor) {
  dtune::LoadedCheckpoint ck;
  ck.path = "out/checkpoint-3";
  const at::Tensor m = at::full({4}, 0.5f), v = at::full({4}, 0.25f);
  ck.optimizer = {{"exp_avg_sq", v}, {"exp_avg", m}};  // order does not matter
  const dtune::AdamWMoments got = dtune::adamw_moments(ck);
  BOOST_TEST(at::equal(got.exp_avg, m));
  BOOST_TEST(at::equal(got.exp_avg_sq, v));
  ck.optimizer.emplace_back("momentum_buffer", m);
  try {
    (void)dtune::adamw_moments(ck);
    BOOST_FAIL("an unknown optimizer tensor was accepted");
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find("out/checkpoint-3: optimizer.safetensors holds an unknown tensor "
                                          "'momentum_buffer'") != std::string::npos, e.what());
  }
  ck.optimizer = {{"exp_avg", m}};
  try {
    (void)dtune::adamw_moments(ck);
    BOOST_FAIL("a missing exp_avg_sq was accepted");
  } catch (const dtune::Error& e) {
    BOOST_TEST(std::string(e.what()).find("lacks exp_avg_sq") != std::string::npos, e.what());
  }
}
