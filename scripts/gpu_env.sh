# Sourced by the scripts that build ptune on a lent GPU machine (no network,
# no apt): unpacks the carried Debian packages (scripts/fetch_gpu_deps.sh)
# into .deps/ once and points the compilers, CMake and the loader at them.
# Sets CMAKE_DEPS (extra cmake arguments, an array; empty without .deps).
# Expects ROOT (the checkout).
ARCH=$(uname -m)-linux-gnu
if [ ! -d "$ROOT/.deps/usr" ] && [ -f "$ROOT/.deps.tar.xz" ]; then
  mkdir -p "$ROOT/.deps" && tar xJf "$ROOT/.deps.tar.xz" -C "$ROOT/.deps"
fi
CMAKE_DEPS=()
if [ -d "$ROOT/.deps/usr" ]; then
  D=$ROOT/.deps/usr
  export CMAKE_PREFIX_PATH="$D:$D/lib/$ARCH/cmake:${CMAKE_PREFIX_PATH:-}"
  export LD_LIBRARY_PATH="$D/lib/$ARCH:$D/lib/$ARCH/openblas-openmp:$D/lib/$ARCH/openmpi/lib:${LD_LIBRARY_PATH:-}"
  export CPATH="$D/include:$D/include/$ARCH:$D/include/$ARCH/openblas-openmp:${CPATH:-}"
  export LIBRARY_PATH="$D/lib/$ARCH:$D/lib/$ARCH/openblas-openmp:${LIBRARY_PATH:-}"
  export PATH="$D/bin:$PATH"
  export OPAL_PREFIX=$D MPI_HOME=$D/lib/$ARCH/openmpi
  CMAKE_DEPS=(-DOPENBLAS_LIB="$D/lib/$ARCH/openblas-openmp/libopenblas.so.0"
              -DOPENBLAS_INCLUDE="$D/include/$ARCH/openblas-openmp" -DMPI_CXX_COMPILER="$D/bin/mpicxx.openmpi"
              -DGTest_DIR="$D/lib/$ARCH/cmake/GTest")
fi
export PATH=/usr/local/cuda/bin:$PATH
