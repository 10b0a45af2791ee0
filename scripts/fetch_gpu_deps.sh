#!/usr/bin/env bash
# Runs HERE (with network): downloads the -dev .debs the build needs and
# unpacks them into .deps/ (git-ignored), so that scripts/gpu_check.sh can
# build on a GPU machine that has neither network nor apt.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(libopenblas-dev libopenblas0-openmp libopenblas-openmp-dev libopenmpi-dev libopenmpi3 openmpi-bin
      openmpi-common libyaml-cpp-dev libyaml-cpp0.7 libfmt-dev libfmt9 nlohmann-json3-dev libcli11-dev
      libgtest-dev googletest libicu-dev libicu72 libgomp1 libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7
      libpmix2 libfabric1 libucx0 libpsm2-2 libibverbs1 librdmacm1 libnl-3-200 libnl-route-3-200 libmunge2 libopenblas0 libgfortran5 libquadmath0
      libhwloc-plugins libpsm-infinipath1)
mkdir -p .deps/debs
cd .deps/debs
for p in "${PKGS[@]}"; do
  apt-get download "$p" 2>/dev/null || echo "fetch_gpu_deps: could not download $p (skipped)" >&2
done
cd ..
for d in debs/*.deb; do dpkg -x "$d" .; done
echo "fetch_gpu_deps: unpacked $(ls debs | wc -l) packages into $(pwd)"
