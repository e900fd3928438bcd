// Async-signal-safe preemption flag; see preemption.h.
#include "dtune/train/preemption.h"

#include <cerrno>
#include <csignal>
#include <cstring>

#include "dtune/core/error.h"

namespace dtune {
namespace {
volatile std::sig_atomic_t g_preempted = 0;
extern "C" void on_preemption_signal(int) { g_preempted = 1; }
}  // namespace

void install_preemption_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_preemption_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (const int sig : {SIGTERM, SIGUSR1})
    DTUNE_CHECK(sigaction(sig, &sa, nullptr) == 0, "cannot install the handler for signal ", sig, ": ",
                std::strerror(errno));
}

bool preemption_requested() { return g_preempted != 0; }

}  // namespace dtune
