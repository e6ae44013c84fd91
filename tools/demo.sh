#!/usr/bin/env bash
# Quick start: set everything up, start vmstackd on its embedded default
# (SQLite state in /var/lib/vmstack), install a guest from the built-in
# template, boot it and show its serial console until its init runs.
# vmstackd keeps running afterwards (log: /var/log/vmstackd.log); try
#   build/bin/xe vm-list        build/bin/xe console vm=demo
set -euo pipefail
cd "$(dirname "$0")/.."
STATE_DIR=${STATE_DIR:-/var/lib/vmstack}
LOG=${LOG:-/var/log/vmstackd.log}
export VMSTACK_SOCKET=$STATE_DIR/xapi.sock
XE=build/bin/xe

tools/setup.sh

if ! $XE host-list --minimal >/dev/null 2>&1; then
  echo "demo: starting vmstackd (state in $STATE_DIR, log in $LOG)"
  mkdir -p "$(dirname "$LOG")"
  setsid build/bin/vmstackd --state-dir "$STATE_DIR" >>"$LOG" 2>&1 < /dev/null &
  for _ in $(seq 100); do
    $XE host-list --minimal >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
$XE host-list params=name-label,software-version

name=${1:-demo}
uuid=$($XE vm-list name-label="$name" --minimal)
if [[ -z $uuid ]]; then
  uuid=$($XE vm-install template="Demo Linux (direct kernel boot)" new-name-label="$name")
  echo "demo: installed VM $name ($uuid)"
fi
if [[ $($XE vm-param-get uuid="$uuid" param-name=power-state) != running ]]; then
  $XE vm-start uuid="$uuid"
fi
echo "demo: VM $name is running; its serial console follows until init is reached"
echo "------------------------------------------------------------------------"
# Show the console until the marker, then stop reading (the guest keeps running).
timeout 120 $XE console vm="$name" </dev/null | sed -u '/vmstack-guest: init reached/q'
echo "------------------------------------------------------------------------"
$XE vm-list name-label="$name"
echo "demo: done. vmstackd keeps running; 'build/bin/xe help' lists the commands."
