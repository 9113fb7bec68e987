#!/bin/sh
# Installs Dask distributed from Debian's packages, for the side-by-side comparison in
# bench/workflows.bench.ts (which uses /usr/bin/python3 when it can `import distributed`).
# Run as root: sudo sh bench/install-dask.sh
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/install-dask.sh: run as root (apt-get installs system packages): sudo sh bench/install-dask.sh" >&2
  exit 1
fi
apt-get update
apt-get install -y python3-distributed
/usr/bin/python3 -c 'import distributed; print("Dask distributed", distributed.__version__, "for /usr/bin/python3")'
