#!/bin/sh
# Live servicing of the paravisor (on a real KVM: natively or inside the
# nested lab).  A Linux guest on a `backend=paravisor` disk runs a write /
# read-back / compare loop with O_DIRECT (so every pass reaches the
# paravisor) while vmm's control command {"cmd":"service"} replaces the
# paravisor process 20 times in a row: every reply is ok with a new pid and
# a blackout, the guest's loop sees no I/O error and keeps counting, its
# boot_id does not change, and after poweroff the image holds what the
# guest wrote last.  Then servicings that must fail: a binary that exits at
# once, one that rejects its options, one that starts but serves another
# disk (a different config space): each is refused with the reason and
# rolled back, the old paravisor (same pid) serves on and the guest's I/O
# goes on.  A VM without a paravisor disk is refused with a clear error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/disk_loop.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
CMDLINE_BASE="console=ttyS0 panic=-1 quiet"
SERVICES=20
says() { printf '%s' "$1" | grep -q -- "$2"; }
pv_pid() { sed -n 's/.*served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$1" | head -n 1; }
num() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
type_in() { printf '%s\n' "$1" >&8; }
# The last value after KEY: a number or boot_id only (vmm's log lines share
# the output and can land right after a console line's value).
field() { sed -n "s/.*$2 \([0-9a-f-]*\).*/\1/p" "$1" | tr -d '\r' | tail -n 1; }
loops() { grep -c "LOOPOK" "$WORK/run"; }

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ] || [ ! -x "$PARAVISOR" ]; then
	not_ok "the Linux guest and paravisor/paravisor exist (tests/guest/linux/build; make)"
	tap_plan
	exit 1
fi

# --- 1. A VM without a paravisor disk: nothing to service.
vmm_start "$WORK/plain" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 128M \
	--cmdline "$CMDLINE_BASE"
r=$(ctl '{"cmd":"service"}')
check "service of a VM without paravisor disks is refused with the reason" \
	says "$r" '"error":"no device of this VM is served by a paravisor","rolled_back":false'
diag "no paravisor: $r"
vmm_finish

# --- 2. A guest writing and verifying its disk while the paravisor is replaced.
img=$WORK/disk.img
truncate -s 16M "$img"
vmm_start "$WORK/run" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--stop-timeout 0 --cmdline "$CMDLINE_BASE" --disk "path=$img,backend=paravisor,id=data"
wait_for "$WORK/run" "VMMD-GUEST-READY" 300
sleep 1
type_in 'echo "BOOT""ID $(cat /proc/sys/kernel/random/boot_id)"'
disk_loop_start
wait_for "$WORK/run" "LOOPOK 3" 120
boot_id=$(field "$WORK/run" BOOTID)
pv=$(pv_pid "$WORK/run")
check "the guest's write/verify loop runs on the paravisor's disk (pid ${pv:-?})" \
	sh -c "[ -n '$pv' ] && kill -0 '$pv' && grep -q 'LOOPOK 3' '$WORK/run'"

before=$(loops)
prev=$pv
good=0
pids=" $pv "
blackouts=""
n=0
while [ $n -lt $SERVICES ]; do
	n=$((n + 1))
	r=$(ctl '{"cmd":"service"}')
	new=$(num "$r" new_pid)
	old=$(num "$r" old_pid)
	us=$(num "$r" blackout_us)
	if says "$r" '^{"ok":true,"paravisor":"[^"]*","duration_ms":[0-9]*,"devices":\[{"id":"data","blackout_ms":[0-9]*' &&
		[ "$old" = "$prev" ] && [ -n "$new" ] && ! says "$pids" " $new " &&
		kill -0 "$new" 2>/dev/null && ! kill -0 "$old" 2>/dev/null; then
		good=$((good + 1))
	else
		diag "service $n: unexpected: $r"
	fi
	pids="$pids$new "
	prev=$new
	blackouts="$blackouts$us
"
	diag "service $n: pid $old -> $new, blackout $us us"
	# Let the guest do some I/O on each new paravisor.
	sleep 0.3
done
check "$SERVICES servicings in a row: each ok, a new pid, the old one gone ($good/$SERVICES)" \
	[ "$good" -eq "$SERVICES" ]
sorted=$(printf '%s' "$blackouts" | grep . | sort -n)
cnt=$(printf '%s\n' "$sorted" | grep -c .)
bmin=$(printf '%s\n' "$sorted" | head -n 1)
bmed=$(printf '%s\n' "$sorted" | sed -n "$(((cnt + 1) / 2))p")
bmax=$(printf '%s\n' "$sorted" | tail -n 1)
diag "blackout over $cnt servicings: min $bmin us, median $bmed us, max $bmax us"
wait_for "$WORK/run" "LOOPOK $(($(field "$WORK/run" LOOPOK) + 3))" 60
after=$(loops)
check "the guest's loop kept counting through the servicings ($before then $after passes)" \
	[ "$after" -gt "$before" ]
pv=$prev

# --- 3. Servicings that fail roll back to the running paravisor.
rollback() { # NAME PATH WANT-IN-ERROR
	b=$(loops)
	r=$(ctl "{\"cmd\":\"service\",\"paravisor\":\"$2\",\"timeout_ms\":5000}")
	diag "$1: $r"
	check "$1: refused with the reason, rolled back to pid $pv" sh -c \
		"printf '%s' '$r' | grep -q '^{\"ok\":false,\"error\":\"disk data: .*$3.*; rolled back to the running paravisor (pid $pv)\",\"rolled_back\":true}'"
	wait_for "$WORK/run" "LOOPOK $(($(field "$WORK/run" LOOPOK) + 2))" 60
	check "$1: the old paravisor serves on, the guest's I/O goes on ($b then $(loops) passes)" \
		sh -c "kill -0 $pv && [ $(loops) -gt $b ]"
}
rollback "a binary that exits at once" /bin/false "/bin/false (pid [0-9]*) did not start: it exited with status 1"
badopt=$WORK/pv-badopt
printf '#!/bin/sh\nexec %s --no-such-option "$@"\n' "$PARAVISOR" >"$badopt"
chmod +x "$badopt"
rollback "a paravisor that rejects its options" "$badopt" "did not start: it exited with status"
other=$WORK/other.img
truncate -s 8M "$other"
otherdisk=$WORK/pv-otherdisk
# Starts and negotiates, but serves an 8 MiB disk: not what the guest sees.
printf '#!/bin/sh\nexec %s --fd 3 --disk path=%s,id=data\n' "$PARAVISOR" "$other" >"$otherdisk"
chmod +x "$otherdisk"
rollback "a paravisor that starts but serves another disk" "$otherdisk" \
	"did not take over: the new back-end presents a different config space"

# A last good servicing after the failures, then the end of the loop.
r=$(ctl '{"cmd":"service"}')
check "servicing works again after the rollbacks" says "$r" '"ok":true'
type_in 'touch /tmp/stop'
wait_for "$WORK/run" "LOOPEND" 60
type_in 'echo "AFTER""ID $(cat /proc/sys/kernel/random/boot_id)"'
wait_for "$WORK/run" "AFTERID" 30
last=$(field "$WORK/run" LOOPEND)
afterid=$(field "$WORK/run" AFTERID)
check "the guest's loop saw no I/O error or mismatch in $last passes" \
	sh -c "[ -n '$last' ] && ! grep -q LOOPERR '$WORK/run'"
check "the same boot throughout (boot_id ${boot_id:-none}, after: ${afterid:-none})" \
	[ -n "$boot_id" -a "$afterid" = "$boot_id" ]
vmm_finish
RC=0
grep -E 'serviced|service:|rolled|did not' "$WORK/run" | head -n 8 | sed 's/^/  /' |
	while IFS= read -r l; do diag "$l"; done

disk_loop_check "$img" "$last"
check "no sanitizer report" sanitizer_clean "$WORK/run"

tap_plan
