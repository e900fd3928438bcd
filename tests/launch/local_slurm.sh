#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munged, slurmctld, slurmd on 127.0.0.1), for the
# Slurm test and for trying slurm/*.sh on a workstation. Needs root (slurmd starts jobs as their
# user) and Debian's slurm-wlm and munge packages (scripts/setup.sh installs them).
#
#   tests/launch/local_slurm.sh start DIR [CTLD_PORT SLURMD_PORT]   # prints: export SLURM_CONF=DIR/slurm.conf
#   tests/launch/local_slurm.sh stop DIR
#
# Everything (config, munge key and socket, state, logs) lives in DIR; nothing under /etc changes.
# The node has this machine's CPUs and no GPUs; task/affinity binds each task to its cores.
set -euo pipefail

cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '5,6p' "$0" >&2; exit 2; }

stop() {
  for d in slurmd slurmctld munged; do
    [ -f "$dir/$d.pid" ] || continue
    pid=$(cat "$dir/$d.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$d.pid"
  done
}

case "$cmd" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "local_slurm.sh: unknown command '$cmd' (start or stop)" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "local_slurm.sh: must run as root (slurmd starts jobs as their user)" >&2; exit 2; }
for b in munged slurmctld slurmd sbatch; do
  command -v "$b" >/dev/null || { echo "local_slurm.sh: $b not found; run scripts/setup.sh (it installs slurm-wlm and munge)" >&2; exit 2; }
done
ctld_port=${3:-16817} slurmd_port=${4:-16818}
mkdir -p "$dir/state" "$dir/spool"
dir=$(cd "$dir" && pwd)
host=$(hostname -s)

head -c 1024 /dev/urandom > "$dir/munge.key"
chmod 600 "$dir/munge.key"
munged --force --socket="$dir/munge.sock" --key-file="$dir/munge.key" --log-file="$dir/munged.log" \
  --pid-file="$dir/munged.pid" --seed-file="$dir/munged.seed"

cat > "$dir/slurm.conf" <<EOF
# Written by tests/launch/local_slurm.sh: one node, localhost, no accounting, no cgroups.
ClusterName=dtune-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Seconds between SIGTERM and SIGKILL when a job ends early: time for a checkpoint.
KillWait=30
# Keep finished jobs visible to scontrol for the test's checks.
MinJobAge=3600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
  if sinfo -h -o "%t" 2>/dev/null | grep -q idle; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "local_slurm.sh: the node did not become idle in 20 s; logs in $dir" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
stop
exit 1
