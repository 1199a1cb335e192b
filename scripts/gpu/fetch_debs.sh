#!/usr/bin/env bash
# Run HERE (a Debian 12 machine with the archive): downloads the Debian packages that the lent GPU
# machine lacks (Open MPI, GoogleTest, nlohmann-json; HDF5 and Boost.Program_options for the full
# build) into .gpu/debs, which is git-ignored and is
# carried to the device by the `carry` argument. scripts/gpu/device.sh unpacks them there.
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
  libboost-program-options1.74-dev libboost-program-options1.74.0 libboost1.74-dev
du -sh .
cd ../..
# The small fixtures the runtime tests read (../shared does not travel to the device).
mkdir -p .gpu/shared/models
cp -r ../shared/models/stories260K .gpu/shared/models/
