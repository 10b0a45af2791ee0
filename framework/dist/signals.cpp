#include "framework/dist/signals.h"

#include <atomic>
#include <csignal>

#include "framework/core/error.h"

namespace ptune::dist {

namespace {

// A signal handler can only reach state with static storage: this flag is
// the one such state, and only StopSignals reads or sets it.
std::atomic<int> g_signal{0};
struct sigaction g_old_term, g_old_usr1;

extern "C" void on_stop_signal(int sig) { g_signal.store(sig, std::memory_order_relaxed); }

}  // namespace

StopSignals::StopSignals() {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  PTUNE_CHECK(sigaction(SIGTERM, &sa, &g_old_term) == 0 && sigaction(SIGUSR1, &sa, &g_old_usr1) == 0,
              "cannot install the SIGTERM/SIGUSR1 handlers");
}

StopSignals::~StopSignals() {
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGUSR1, &g_old_usr1, nullptr);
}

bool StopSignals::requested() const { return g_signal.load(std::memory_order_relaxed) != 0; }
int StopSignals::signal() const { return g_signal.load(std::memory_order_relaxed); }

}  // namespace ptune::dist
