// parse_device_request: the one parser of train.device and generate --device. Every accepted
// spelling, and the message for the rest (names the option, the accepted values, the value).
#include "dtune/core/device_request.h"

#include <string>

#include <boost/test/unit_test.hpp>

#include "dtune/core/error.h"

namespace dtune {
namespace {

void expect_refused(const std::string& value, const std::string& option, bool allow_index, const std::string& message) {
  try {
    parse_device_request(value, option, allow_index);
    BOOST_FAIL("no error for " << option << " = " << value);
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()) == message);
  }
}

BOOST_AUTO_TEST_CASE(accepted_values) {
  BOOST_TEST((parse_device_request("auto", "train.device", false).kind == DeviceRequest::Kind::kAuto));
  BOOST_TEST((parse_device_request("cpu", "train.device", false).kind == DeviceRequest::Kind::kCpu));
  const DeviceRequest cuda = parse_device_request("cuda", "train.device", false);
  BOOST_TEST((cuda.kind == DeviceRequest::Kind::kCuda));
  BOOST_TEST(cuda.index == -1);
  const DeviceRequest cuda3 = parse_device_request("cuda:3", "--device", true);
  BOOST_TEST((cuda3.kind == DeviceRequest::Kind::kCuda));
  BOOST_TEST(cuda3.index == 3);
}

BOOST_AUTO_TEST_CASE(refused_values_name_the_option) {
  expect_refused("tpu", "train.device", false, "option train.device must be one of auto | cpu | cuda, got 'tpu'");
  expect_refused("cuda:1", "train.device", false, "option train.device must be one of auto | cpu | cuda, got 'cuda:1'");
  expect_refused("cuda:", "--device", true, "option --device must be one of auto | cpu | cuda[:N], got 'cuda:'");
  expect_refused("cuda:-1", "--device", true, "option --device must be one of auto | cpu | cuda[:N], got 'cuda:-1'");
  expect_refused("CPU", "--device", true, "option --device must be one of auto | cpu | cuda[:N], got 'CPU'");
}

}  // namespace
}  // namespace dtune
