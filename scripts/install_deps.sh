#!/usr/bin/env bash
# Installs every build and test dependency of ptune from Debian packages.
# CUDA is optional and not installed here (see README: -DPTUNE_CUDA=ON).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git \
  libopenblas-openmp-dev \
  libopenmpi-dev openmpi-bin \
  libyaml-cpp-dev libfmt-dev nlohmann-json3-dev libcli11-dev \
  libgtest-dev libgmock-dev \
  libicu-dev \
  python3 >/dev/null
