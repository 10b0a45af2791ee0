# ptune in a container, built from this checkout.
#
# CPU image (Debian 12: OpenBLAS + OpenMP, OpenMPI):
#   docker build -t ptune .
# CUDA image (any CUDA 12.4+ / 13 devel image, which carries cuBLAS and NCCL;
# kernels for sm_80 and sm_90):
#   docker build -t ptune:cuda --build-arg PTUNE_CUDA=ON \
#     --build-arg BASE=nvidia/cuda:13.0.1-devel-ubuntu24.04 .
#
# Run a recipe with the models, the data and the run directory mounted
# (paths inside recipes are relative to /opt/ptune, the working directory):
#   docker run --rm -v /models:/models -v "$PWD/runs:/opt/ptune/runs" ptune \
#     train recipes/sst2_ptuning_v2_minilm.yaml model.path=/models/all-MiniLM-L6-v2
#   docker run --rm --gpus all ... ptune:cuda train my.yaml model.device=cuda
# The image's default command trains the offline quickstart (a random tiny
# BERT, written at build time outside runs/, on the synthetic task), as the
# README's first command does.
# Across nodes, start one container per rank under the cluster's launcher
# (e.g. Slurm with pyxis: srun --container-image=… ptune train my.yaml).
ARG BASE=debian:bookworm
FROM ${BASE}
ARG PTUNE_CUDA=OFF

WORKDIR /opt/ptune
# The dependencies first, in a layer of their own: a code change does not
# reinstall them.
COPY scripts/install_deps.sh scripts/
RUN bash scripts/install_deps.sh && apt-get clean && rm -rf /var/lib/apt/lists/*

COPY . .
RUN cuda_flags="" \
 && if [ "$PTUNE_CUDA" = ON ]; then cuda_flags="-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc"; fi \
 && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPTUNE_TESTS=OFF -DPTUNE_CUDA="$PTUNE_CUDA" $cuda_flags \
 && cmake --build build --target ptune \
 && ln -s /opt/ptune/build/launch/ptune /usr/local/bin/ptune \
 && ptune init-model --arch bert --preset tiny --tokenizer recipes/data/quickstart/tokenizer.json \
      --out /opt/quickstart-model

# A container usually runs as root, which OpenMPI refuses unless told.
ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ENTRYPOINT ["ptune"]
CMD ["train", "recipes/quickstart.yaml", "model.path=/opt/quickstart-model"]
