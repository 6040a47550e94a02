#!/bin/sh
# Restarting a dead paravisor under the tiny guest (any KVM, the host's
# emulating one included): the guest's virtio-blk driver starts the ring
# on a paravisor disk, the host kills the paravisor with SIGKILL as soon as
# the ring runs, and the guest's write / read-back / flush then go to the
# restarted one and succeed; with restart=off they fail with the reason
# logged (the guest's serial line and vmm's log may interleave), and the
# guest still powers off.  paravisor-restart.sh does the
# same under Linux in the lab, with deaths in the middle of its I/O.
. "$(dirname "$0")/lib.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
pv_pid() { sed -n 's/.*served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$1" | head -n 1; }

if [ ! -x "$PARAVISOR" ] || [ ! -r "$TINY" ]; then
	not_ok "paravisor/paravisor and the tiny guest exist (make)"
	tap_plan
	exit 1
fi

# kill_at_ring_start OUT DISK-OPTIONS: the tiny guest's blk test on a
# paravisor disk whose paravisor is killed once its ring started.  vmm is
# stopped (SIGSTOP: vCPUs and event loop alike) for the kill, so the guest
# cannot finish its requests first; the kill lands after the guest's I/O
# anyway if the guest outran the polling, so up to 4 tries, until vmm saw
# the death before the guest powered off.
kill_at_ring_start() {
	_try=0
	while [ $_try -lt 4 ]; do
		_try=$((_try + 1))
		truncate -s 8M "$WORK/$1.img"
		vmm_start "$WORK/$1" --kernel "$TINY" --memory 64M --cmdline "virtio=blk" \
			--disk "path=$WORK/$1.img,backend=paravisor,id=data$2"
		_i=0
		while ! grep -q "queue 0 started" "$WORK/$1" && [ $_i -lt 6000 ]; do
			sleep 0.01
			_i=$((_i + 1))
		done
		kill -STOP $pid
		kill -KILL "$(pv_pid "$WORK/$1")"
		sleep 0.2
		kill -CONT $pid
		wait_for "$WORK/$1" "tiny: poweroff" 60
		wait $pid
		RC=$?
		exec 8>&-
		sed -n '/its paravisor/,$p' "$WORK/$1" | grep -q "tiny: virtio-blk capacity" && break
		diag "try $_try: the guest's I/O was done before the kill; again"
	done
}

kill_at_ring_start on ""
result "restart=on: the guest's I/O after the kill goes to a restarted paravisor and succeeds" \
	on 0 "disk \"data\": its paravisor (pid [0-9]*) killed by signal 9 (Killed); restarted it (pid [0-9]*, restart 1)" \
	"tiny: virtio-blk capacity 16384 write ok read ok match" "tiny: virtio-blk flush status 0"
grep -E 'restarted|tiny: virtio-blk|queue 0' "$WORK/on" | while IFS= read -r l; do diag "$l"; done

kill_at_ring_start off ",restart=off"
result "restart=off: the disk fails with the reason, the guest's I/O gets errors, the VM runs to its poweroff" \
	off 0 "its paravisor (pid [0-9]*) died: killed by signal 9 (Killed); not restarted: restart=off" \
	" write status 1" "tiny: poweroff"
grep -E 'not restarted|tiny: virtio-blk' "$WORK/off" | while IFS= read -r l; do diag "$l"; done

tap_plan
