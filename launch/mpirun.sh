#!/bin/bash
# Data-parallel training on one machine (or an MPI hostfile) with mpirun.
#
#   launch/mpirun.sh NP RECIPE [section.key=value ...]
#   HOSTFILE=hosts launch/mpirun.sh 16 recipes/x.yaml model.shard=node
#
# One rank per GPU (or per CPU socket on CPU). Global batch = micro_batch ×
# grad_accum × NP: lower train.micro_batch by NP to keep the batch of a
# single-process run. Only rank 0 prints and writes the run directory.
# Environment:
#   PTUNE             the ptune binary (default: build/launch/ptune)
#   HOSTFILE          an Open MPI hostfile for several machines (optional)
#   OMP_NUM_THREADS   CPU threads per rank (default: cores / NP)
#   MPIRUN_ARGS       extra mpirun arguments (e.g. "--mca btl_tcp_if_include eth0")
# A failing rank prints "ptune: rank R: error: ..." and aborts the job; kill
# -USR1 (or -TERM) of the ranks checkpoints at the next step and exits 0.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
NP=$1
shift
PTUNE=${PTUNE:-$(dirname "$0")/../build/launch/ptune}
CORES=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( CORES / NP > 0 ? CORES / NP : 1 ))}
ARGS=(-np "$NP" --bind-to none -x OMP_NUM_THREADS -x OPENBLAS_CORETYPE)
[ -n "${HOSTFILE:-}" ] && ARGS+=(--hostfile "$HOSTFILE")
# Running as root in a container: Open MPI refuses without this.
[ "$(id -u)" = 0 ] && ARGS+=(--allow-run-as-root)
# More ranks than cores (testing on a laptop): let ranks share cores.
[ "$NP" -gt "$CORES" ] && ARGS+=(--oversubscribe)
# shellcheck disable=SC2086
exec mpirun "${ARGS[@]}" ${MPIRUN_ARGS:-} "$PTUNE" train "$@"
