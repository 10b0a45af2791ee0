// The ptune command line: one subcommand per job. Errors from the library
// are printed with their context and turn into a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <vector>

#include <unistd.h>

#include <cstdlib>

#include "commands.h"
#include "framework/dist/mpi_communicator.h"
#include "framework/ops/cpu/cpu_runtime.h"

int main(int argc, char** argv) {
  // OpenBLAS and libgomp read their settings when they load: restart once
  // with the ones ptune wants (kernels, spinning; see cpu_runtime.h).
  const auto overrides = ptune::ops::runtime_env_overrides();
  if (!overrides.empty()) {
    for (const auto& [name, value] : overrides) setenv(name.c_str(), value.c_str(), 1);
    execv("/proc/self/exe", argv);  // returns only on failure: carry on as we are
  }
  // Under mpirun/srun: MPI for the whole process (finalised at exit), and
  // each rank its share of the node's CPUs.
  ptune::dist::MpiSession mpi(&argc, &argv);
  ptune::ops::configure_cpu_threads(ptune::dist::launch_env().local_size);
  CLI::App app{"ptune: prompt tuning for frozen transformers"};
  app.require_subcommand(1);
  std::vector<ptune::launch::Command> commands = {
      ptune::launch::add_inspect(app),
      ptune::launch::add_init_model(app),
      ptune::launch::add_train(app),
      ptune::launch::add_eval(app),
      ptune::launch::add_predict(app),
      ptune::launch::add_export(app),
      ptune::launch::add_bench(app),
      ptune::launch::add_generate(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& run : commands) {
      const int rc = run();
      if (rc >= 0) return rc;
    }
  } catch (const std::exception& e) {
    if (!mpi.active()) {
      fmt::print(stderr, "ptune: error: {}\n", e.what());
      return 1;
    }
    // One rank failed: say which and why, then bring every rank down now
    // rather than leave the others waiting in a collective.
    fmt::print(stderr, "ptune: rank {}: error: {}\n", mpi.communicator().rank(), e.what());
    std::fflush(stderr);
    mpi.abort(1);
  }
  return 0;
}
