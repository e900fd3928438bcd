// Tests src/generate/sampling.cpp against transformers' logits processors and torch.multinomial
// (fixtures from `scripts/generate_oracle.py processors`).
#include "dtune/generate/sampling.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "dtune/core/error.h"

namespace {

using nlohmann::json;

const json& fixture() {
  static const json j = [] {
    std::ifstream in(std::string(DTUNE_TEST_DATA) + "/generate/processors.json");
    BOOST_REQUIRE(in);
    return json::parse(in);
  }();
  return j;
}

// null = -inf (JSON has no infinities).
at::Tensor to_tensor(const json& rows) {
  std::vector<float> v;
  for (const auto& row : rows)
    for (const auto& x : row) v.push_back(x.is_null() ? -std::numeric_limits<float>::infinity() : x.get<float>());
  return at::tensor(v).reshape({static_cast<int64_t>(rows.size()), -1});
}

at::Tensor to_ids(const json& rows) {
  std::vector<int64_t> v;
  for (const auto& row : rows)
    for (const auto& x : row) v.push_back(x.get<int64_t>());
  return at::tensor(v).reshape({static_cast<int64_t>(rows.size()), -1});
}

// Same -inf pattern exactly; finite values within 1e-6 relative + 1e-6 absolute (fp32 division
// and softmax: dtune runs the same ATen kernels as torch, so any difference is a logic error).
void check_close(const at::Tensor& got, const at::Tensor& want, const std::string& name) {
  BOOST_TEST_INFO(name);
  BOOST_REQUIRE(got.sizes() == want.sizes());
  BOOST_TEST(at::equal(at::isinf(got), at::isinf(want)));
  at::Tensor finite = at::isfinite(want);
  BOOST_TEST(at::allclose(got.masked_select(finite), want.masked_select(finite), 1e-6, 1e-6));
}

at::Tensor input(const json& c) { return to_tensor(fixture()["inputs"][c["logits"].get<std::string>()]); }

dtune::SamplingOptions options_of(const json& c) {
  dtune::SamplingOptions o;
  o.repetition_penalty = c["penalty"];
  o.temperature = c["temperature"];
  o.top_k = c["top_k"];
  o.top_p = c["top_p"];
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_processor_matches_transformers) {
  int checked = 0;
  for (const auto& c : fixture()["cases"]) {
    const std::string kind = c["kind"], name = c["name"];
    at::Tensor logits = input(c), want = to_tensor(c["expected"]);
    at::Tensor got;
    if (kind == "repetition_penalty") got = dtune::apply_repetition_penalty(logits, to_ids(c["seen"]), c["penalty"]);
    else if (kind == "temperature") got = dtune::apply_temperature(logits, c["temperature"]);
    else if (kind == "top_k") got = dtune::apply_top_k(logits, c["top_k"]);
    else if (kind == "top_p") got = dtune::apply_top_p(logits, c["top_p"]);
    else if (kind == "pipeline") got = dtune::process_logits(logits, to_ids(c["seen"]), options_of(c));
    else BOOST_FAIL("unknown case kind " + kind);
    check_close(got, want, name);
    ++checked;
  }
  BOOST_TEST(checked >= 40);
}

BOOST_AUTO_TEST_CASE(seeded_draws_match_torch_multinomial) {
  int checked = 0;
  for (const auto& c : fixture()["cases"]) {
    if (c["kind"] != "pipeline") continue;
    const dtune::SamplingOptions base = options_of(c);
    at::Tensor seen = to_ids(c["seen"]);
    for (const auto& [key, want] : c["draws"].items()) {
      dtune::SamplingOptions o = base;
      if (key != "argmax") o.seed = std::stoull(key);
      at::Generator gen = dtune::make_sampling_generator(o.seed);
      at::Tensor got = dtune::select_next_tokens(input(c), seen, o, gen);
      BOOST_TEST_INFO(c["name"].get<std::string>() + " seed " + key);
      BOOST_TEST(at::equal(got, at::tensor(want.get<std::vector<int64_t>>())));
      ++checked;
    }
  }
  BOOST_TEST(checked >= 10);
}

BOOST_AUTO_TEST_CASE(same_seed_same_samples_other_seed_differs) {
  at::Generator g0 = at::make_generator<at::CPUGeneratorImpl>(3);
  at::Tensor logits = at::randn({2, 1000}, g0) * 0.1;  // nearly flat: draws vary a lot
  at::Tensor seen = at::zeros({2, 0}, at::kLong);
  dtune::SamplingOptions o;
  auto draw = [&](uint64_t seed) {
    o.seed = seed;
    at::Generator gen = dtune::make_sampling_generator(seed);
    std::vector<at::Tensor> steps;
    for (int i = 0; i < 20; ++i) steps.push_back(dtune::select_next_tokens(logits, seen, o, gen));
    return at::stack(steps);
  };
  BOOST_TEST(at::equal(draw(11), draw(11)));
  BOOST_TEST(!at::equal(draw(11), draw(12)));
}

BOOST_AUTO_TEST_CASE(greedy_ignores_warpers_and_takes_first_max) {
  at::Tensor logits = at::tensor({1.0f, 3.0f, 3.0f, -5.0f}).reshape({1, 4});
  at::Tensor seen = at::tensor({int64_t{1}}).reshape({1, 1});
  dtune::SamplingOptions o;
  o.temperature = 0;
  o.repetition_penalty = 1.0;
  at::Generator gen = dtune::make_sampling_generator(0);
  BOOST_TEST(dtune::select_next_tokens(logits, seen, o, gen).item<int64_t>() == 1);
  o.repetition_penalty = 1.5;  // 3/1.5 = 2 < 3: the penalty moves argmax to id 2
  BOOST_TEST(dtune::select_next_tokens(logits, seen, o, gen).item<int64_t>() == 2);
}

BOOST_AUTO_TEST_CASE(validate_names_the_option) {
  dtune::SamplingOptions o;
  BOOST_CHECK_NO_THROW(dtune::validate(o));
  o.top_p = 1.5;
  BOOST_CHECK_EXCEPTION(dtune::validate(o), dtune::Error, [](const dtune::Error& e) {
    return std::string(e.what()).find("--top-p") != std::string::npos;
  });
  o = {};
  o.temperature = -1;
  BOOST_CHECK_THROW(dtune::validate(o), dtune::Error);
  o = {};
  o.repetition_penalty = 0;
  BOOST_CHECK_THROW(dtune::validate(o), dtune::Error);
}
