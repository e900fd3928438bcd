// Tests src/train/checkpoint.cpp's dropout RNG state: it round-trips with its device kind, a
// state from another device kind (a CPU checkpoint resumed on a GPU or back) re-seeds instead of
// failing inside c10, older checkpoints (a plain hex string) still load, and a malformed state is
// an error naming the checkpoint. (Saving and resuming whole runs: tests/train/train_e2e_test.py.)
#include "dtune/train/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <boost/test/unit_test.hpp>

#include <string>

#include "dtune/core/error.h"

namespace dtune {
namespace {

const c10::Device kCpu(c10::kCPU);

BOOST_AUTO_TEST_CASE(rng_state_round_trips_with_its_device_kind) {
  at::manual_seed(7);
  (void)at::randn({5});
  const nlohmann::json saved = save_rng_state(kCpu);
  BOOST_TEST(saved.at("device").get<std::string>() == "cpu");
  const at::Tensor want = at::randn({8});
  at::manual_seed(123);  // elsewhere in the stream
  BOOST_TEST(restore_rng_state(kCpu, saved, "ck-1", /*reseed=*/99));
  BOOST_TEST(at::equal(at::randn({8}), want));
  // A checkpoint written before the device was stored holds the hex string alone.
  at::manual_seed(123);
  BOOST_TEST(restore_rng_state(kCpu, saved.at("state"), "ck-old", 99));
  BOOST_TEST(at::equal(at::randn({8}), want));
}

// The state of a CUDA generator (Philox: seed and offset, 16 bytes) resumed on the CPU. Before,
// this failed inside c10 with "RNG state is wrong size"; now the CPU stream restarts from reseed.
BOOST_AUTO_TEST_CASE(foreign_device_state_reseeds) {
  const std::string philox(32, 'a');  // 16 bytes of hex
  auto reference = [](uint64_t seed) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randn({8}, g);
  };
  for (const nlohmann::json& saved : {nlohmann::json{{"device", "cuda"}, {"state", philox}}, nlohmann::json(philox)}) {
    at::manual_seed(5);
    BOOST_TEST(!restore_rng_state(kCpu, saved, "ck-gpu", /*reseed=*/1234), saved.dump());
    BOOST_TEST(at::equal(at::randn({8}), reference(1234)), saved.dump());
  }
  // The device field decides even when the size happens to fit.
  const nlohmann::json cpu_sized = {{"device", "cuda"}, {"state", save_rng_state(kCpu).at("state")}};
  BOOST_TEST(!restore_rng_state(kCpu, cpu_sized, "ck-gpu", 77));
  BOOST_TEST(at::equal(at::randn({8}), reference(77)));
}

BOOST_AUTO_TEST_CASE(malformed_state_names_the_checkpoint) {
  auto message = [](const nlohmann::json& saved) {
    try {
      restore_rng_state(kCpu, saved, "out/run/checkpoint-7", 1);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  for (const nlohmann::json& bad : {nlohmann::json("abc"), nlohmann::json("zz"), nlohmann::json{{"device", "cpu"}},
                                    nlohmann::json{{"device", "cpu"}, {"state", std::string(32, '0')}}}) {
    const std::string m = message(bad);
    BOOST_TEST(m.find("checkpoint out/run/checkpoint-7") != std::string::npos, bad.dump() << ": " << m);
  }
}

}  // namespace
}  // namespace dtune
