// The Boost.Test entry point shared by every dtune test executable (one per source file).
#define BOOST_TEST_MODULE dtune
#include <boost/test/included/unit_test.hpp>
