#!/bin/sh
# Restarting a dead paravisor under the tiny guest (any KVM, the host's
# emulating one included): the guest's virtio-blk driver starts the ring
# on a paravisor disk, the host kills the paravisor with SIGKILL once the
# ring runs (the guest waits before its I/O), and the guest's write /
# read-back / flush then go to the
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
# paravisor disk whose paravisor is killed once its ring started: the guest
# (blk_pause=6) starts the ring, says so and waits 6 s of its RTC before
# its first request, so the kill lands between the ring's start and the
# I/O on any KVM, however fast.
kill_at_ring_start() {
	truncate -s 8M "$WORK/$1.img"
	# The guest's console in a file of its own: vmm's and the paravisors'
	# log lines would otherwise land inside its lines (they share vmm's
	# output) and hide the one waited for.
	vmm_start "$WORK/$1" --kernel "$TINY" --memory 64M --cmdline "virtio=blk blk_pause=6" \
		--disk "path=$WORK/$1.img,backend=paravisor,id=data$2" --serial "file:$WORK/$1.console"
	wait_for "$WORK/$1.console" "tiny: virtio-blk ring up, pausing" 120
	kill -KILL "$(pv_pid "$WORK/$1")"
	wait_for "$WORK/$1.console" "tiny: poweroff" 120
	wait $pid
	RC=$?
	exec 8>&-
	cat "$WORK/$1.console" >>"$WORK/$1"
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
