#!/bin/sh
# Restarting a dead paravisor (on a real KVM: natively or inside the nested
# lab).  A Linux guest on a `backend=paravisor` disk runs an O_DIRECT write /
# read-back / compare loop while the host kills its paravisor with SIGKILL
# several times mid-I/O, and once through the sandbox's test hook (a
# forbidden syscall: SIGSYS): each time vmm restarts it from the rings in
# guest RAM and the inflight region (a new pid, the death's reason logged and
# in {"cmd":"paravisor-status"}), the guest's loop sees no I/O error and
# keeps counting, its boot_id does not change, and after poweroff the image
# holds what it wrote last.  A paravisor that keeps dying (six deaths within
# a minute) fails the disk for good, with the reason; so does the first death
# with restart=off; the guest then gets I/O errors and the VM runs on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/disk_loop.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
CMDLINE_BASE="console=ttyS0 panic=-1 quiet"
KILLS=4
says() { printf '%s' "$1" | grep -q -- "$2"; }
num() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
type_in() { printf '%s\n' "$1" >&8; }
field() { sed -n "s/.*$2 \([^ ]*\).*/\1/p" "$1" | tr -d '\r' | tail -n 1; }
loops() { grep -c "LOOPOK" "$1"; }
status() { ctl '{"cmd":"paravisor-status"}'; }
cur_pid() { num "$(status)" pid; }
# Waits up to 30 s for the disk's paravisor to be another pid than $1.
wait_new_pid() {
	_i=0
	while [ $_i -lt 300 ]; do
		says "$(status)" '"failed":"its' && return 1
		_p=$(cur_pid)
		[ -n "$_p" ] && [ "$_p" != "$1" ] && [ "$_p" -gt 0 ] && { echo "$_p"; return 0; }
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ] || [ ! -x "$PARAVISOR" ]; then
	not_ok "the Linux guest and paravisor/paravisor exist (tests/guest/linux/build; make)"
	tap_plan
	exit 1
fi

# The paravisor with its test hook armed: SIGUSR1 makes it call socket(),
# which its seccomp filter kills it for.  Restarted ones are armed too, but
# nothing sends them SIGUSR1.
hooked=$WORK/pv-hooked
printf '#!/bin/sh\nexec %s --test-forbidden-syscall "$@"\n' "$PARAVISOR" >"$hooked"
chmod +x "$hooked"

# --- 1. restart=on (the default): deaths mid-I/O cost the guest nothing.
img=$WORK/disk.img
truncate -s 16M "$img"
vmm_start "$WORK/run" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--stop-timeout 0 --cmdline "$CMDLINE_BASE" --paravisor "$hooked" \
	--disk "path=$img,backend=paravisor,id=data"
wait_for "$WORK/run" "VMMD-GUEST-READY" 300
sleep 1
type_in 'echo "BOOT""ID $(cat /proc/sys/kernel/random/boot_id)"'
disk_loop_start
wait_for "$WORK/run" "LOOPOK 3" 120
boot_id=$(field "$WORK/run" BOOTID)
pv=$(cur_pid)
check "the guest's write/verify loop runs on the paravisor's disk (pid ${pv:-?})" \
	sh -c "[ -n '$pv' ] && kill -0 '$pv'"

n=0
good=0
while [ $n -lt $KILLS ]; do
	n=$((n + 1))
	b=$(loops "$WORK/run")
	kill -KILL "$pv"
	new=$(wait_new_pid "$pv")
	wait_for "$WORK/run" "LOOPOK $(($(field "$WORK/run" LOOPOK) + 2))" 60
	a=$(loops "$WORK/run")
	s=$(status)
	if [ -n "$new" ] && kill -0 "$new" 2>/dev/null && [ "$a" -gt "$b" ] &&
		says "$s" "\"restarts\":$n,\"last_death\":\"(pid $pv) killed by signal 9 (Killed)\",\"failed\":\"\""; then
		good=$((good + 1))
	else
		diag "kill $n: unexpected: new pid '${new:-none}', passes $b then $a, $s"
	fi
	diag "kill $n: pid $pv -> ${new:-none}, guest passes $b -> $a"
	pv=$new
done
check "$KILLS kills -9 mid-I/O: each restarted with a new pid, the reason reported, the guest's loop going on ($good/$KILLS)" \
	[ "$good" -eq "$KILLS" ]

# The sandbox's verdict on a forbidden syscall, then a restart.
kill -USR1 "$pv"
new=$(wait_new_pid "$pv")
wait_for "$WORK/run" "LOOPOK $(($(field "$WORK/run" LOOPOK) + 2))" 60
s=$(status)
diag "forbidden syscall: $s"
check "a forbidden syscall kills the paravisor (SIGSYS), reported, restarted (pid $pv -> ${new:-none})" \
	sh -c "[ -n '$new' ] && kill -0 '$new' && printf '%s' '$s' | grep -q '\"restarts\":$((KILLS + 1)),\"last_death\":\"(pid $pv) killed by signal 31 (Bad system call)\"'"
check "vmm logged each restart with the reason the paravisor died" \
	sh -c "[ \$(grep -c 'its paravisor (pid [0-9]*) killed by signal .*; restarted it (pid [0-9]*, restart [0-9]*)' '$WORK/run') -eq $((KILLS + 1)) ]"
# Whether a kill lands while a request is taken is chance (unit tests cover
# the re-submission itself); a request lost there would stop the loop above.
diag "restarts that re-submitted requests left in flight: $(grep -c 'left in flight by the previous back-end: re-submitting' "$WORK/run")"
pv=$new

type_in 'touch /tmp/stop'
wait_for "$WORK/run" "LOOPEND" 60
last=$(field "$WORK/run" LOOPEND)
check "the guest's loop saw no I/O error or mismatch in $last passes" \
	sh -c "[ -n '$last' ] && ! grep -q LOOPERR '$WORK/run'"

# --- 2. A paravisor that keeps dying: the sixth death within a minute
# fails the disk for good.
k=0
while [ $k -lt 8 ] && ! says "$(status)" '"failed":"its'; do
	kill -KILL "$pv"
	k=$((k + 1))
	pv=$(wait_new_pid "$pv") || break
done
s=$(status)
diag "after $k quick kills: $s"
check "a paravisor that died six times within a minute is not restarted again: the disk fails with the reason" \
	says "$s" '"failed":"its paravisor (pid [0-9]*) died: killed by signal 9 (Killed); not restarted: it died 6 times within 60 s; not restarting it again; the disk'"'"'s I/O fails'
type_in 'if dd if=/dev/vda of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then echo "READ""OK"; else echo "READ""ERR"; fi'
wait_for "$WORK/run" "READ[OE]" 60
st=$(ctl '{"cmd":"status"}')
check "the guest's I/O on the failed disk gets an error, and the VM runs on" \
	sh -c "grep -q READERR '$WORK/run' && printf '%s' '$st' | grep -q '\"state\":\"running\"'"
type_in 'echo "AFTER""ID $(cat /proc/sys/kernel/random/boot_id)"'
wait_for "$WORK/run" "AFTERID" 30
afterid=$(field "$WORK/run" AFTERID)
check "the same boot throughout (boot_id ${boot_id:-none}, after: ${afterid:-none})" \
	[ -n "$boot_id" -a "$afterid" = "$boot_id" ]
vmm_finish
RC=0
grep -E 'restarted it|not restarted|re-submitting' "$WORK/run" | head -n 8 |
	while IFS= read -r l; do diag "$l"; done

disk_loop_check "$img" "$last"
check "no sanitizer report" sanitizer_clean "$WORK/run"

# --- 3. restart=off: the first death fails the disk, as before restarts.
img2=$WORK/off.img
truncate -s 16M "$img2"
vmm_start "$WORK/off" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--stop-timeout 0 --cmdline "$CMDLINE_BASE" --paravisor "$hooked" \
	--disk "path=$img2,backend=paravisor,id=data,restart=off"
wait_for "$WORK/off" "VMMD-GUEST-READY" 300
sleep 1
disk_loop_start
wait_for "$WORK/off" "LOOPOK 2" 120
pv=$(cur_pid)
kill -USR1 "$pv"
wait_for "$WORK/off" "LOOPERR" 60
s=$(status)
diag "restart=off: $s"
check "restart=off: a forbidden syscall fails the disk with the reason, no restart" \
	says "$s" "\"pid\":-1,\"restart\":false,\"restarts\":0,\"last_death\":\"(pid $pv) killed by signal 31 (Bad system call)\",\"failed\":\"its paravisor (pid $pv) died: killed by signal 31 (Bad system call); not restarted: restart=off"
type_in 'touch /tmp/stop'
wait_for "$WORK/off" "LOOPEND" 60
st=$(ctl '{"cmd":"status"}')
check "restart=off: the guest's I/O gets errors and the VM runs on" \
	sh -c "grep -q LOOPERR '$WORK/off' && grep -q LOOPEND '$WORK/off' && printf '%s' '$st' | grep -q '\"state\":\"running\"'"
vmm_finish
RC=0
check "restart=off: no sanitizer report" sanitizer_clean "$WORK/off"

tap_plan
