// Async-signal-safe preemption flag; see preemption.h.
#include "dtune/train/preemption.h"

#include <csignal>

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
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool preemption_requested() { return g_preempted != 0; }
void reset_preemption_flag() { g_preempted = 0; }

}  // namespace dtune
