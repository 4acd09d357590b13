#!/usr/bin/env bash
# Install the Debian packages that tests/slurm_cluster.py needs (slurm-wlm, munge).
# Idempotent and quiet: does nothing when the programs are already there. Needs root.
# The packages' own services are not used: the tests start private daemons themselves.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
for program in slurmctld slurmd munged mungekey sinfo sbatch squeue scontrol srun; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "slurm-wlm and munge already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm.sh: root needed to install slurm-wlm munge (missing: ${missing[*]})" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# exit 101 from policy-rc.d: the packages must not start the system-wide daemons
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
echo "installed: $(dpkg-query -W -f='${Package} ${Version}  ' slurm-wlm munge)"
