// The Boost.Test entry point shared by every dtune test executable (one per source file). The
// test framework comes from the shared Boost library (BOOST_TEST_DYN_LINK), not the header-only
// variant: linking both gave two copies of its globals (a double free at exit under ASan).
#define BOOST_TEST_MODULE dtune
#include <boost/test/unit_test.hpp>
