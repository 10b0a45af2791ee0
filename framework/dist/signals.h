// Pre-emption: Slurm sends SIGTERM (or, with --signal=USR1@T, SIGUSR1)
// before it kills a job. StopSignals turns them into a flag that the
// trainer polls at step boundaries (Distributed::stop_requested); the ranks
// agree on it with an all-reduce, save a checkpoint and exit cleanly.
#pragma once

namespace ptune::dist {

// Installs SIGTERM and SIGUSR1 handlers for its lifetime (the previous ones
// come back after). One instance per process.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  bool requested() const;
  int signal() const;  // the signal received, 0 if none
};

}  // namespace ptune::dist
