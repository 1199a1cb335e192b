#!/usr/bin/env bash
# Run HERE (a Debian 12 machine with the archive): downloads the Debian packages that the lent GPU
# machine lacks (Open MPI, GoogleTest, nlohmann-json; HDF5, Boost.Program_options, cpp-httplib with
# its headers' dependencies and pkgconf for the full build) into .gpu/debs and packs them as
# .gpu/sysroot.tar.xz; .gpu is git-ignored. Carry .gpu/sysroot.tar.xz and .gpu/shared to the device
# (the `carry` argument); scripts/gpu/device.sh unpacks the sysroot there.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu/debs
cd .gpu/debs
apt-get download \
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libpmix2 libevent-2.1-7 libevent-pthreads-2.1-7 \
  libhwloc15 libhwloc-plugins libfabric1 libucx0 libpsm2-2 libpsm-infinipath1 librdmacm1 libibverbs1 \
  libnl-3-200 libnl-route-3-200 libmunge2 libxnvctrl0 \
  libgtest-dev nlohmann-json3-dev \
  libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libsz2 libaec0 \
  libboost-program-options1.74-dev libboost-program-options1.74.0 libboost1.74-dev \
  libcpp-httplib-dev libcpp-httplib0.11 libbrotli-dev libbrotli1 libssl-dev libssl3 zlib1g-dev pkgconf pkgconf-bin libpkgconf3
du -sh .
cd ../..
# The small fixtures the runtime tests read (../shared does not travel to the device), and what the
# fidelity mode's runs read: glue-lm-8M and GLUE's RTE and SST-2 (33 MB).
rm -rf .gpu/shared && mkdir -p .gpu/shared/models .gpu/shared/data/glue
cp -r ../shared/models/stories260K ../shared/models/glue-lm-8M .gpu/shared/models/
cp -r ../shared/data/glue/RTE ../shared/data/glue/SST-2 .gpu/shared/data/glue/
chmod -R u+w .gpu/shared
# The debs as one pruned sysroot (12 MB): the device tool carries 64 MiB at most.
bash scripts/gpu/pack_sysroot.sh
du -sh .gpu/sysroot.tar.xz .gpu/shared
