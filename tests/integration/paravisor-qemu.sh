#!/bin/sh
# The paravisor behind a standard vhost-user front-end: QEMU's
# vhost-user-blk-pci boots the Linux test guest (on a real KVM: natively or
# inside the nested lab) with its disk served by paravisor/paravisor.  The
# guest reads what the host wrote into the image, writes its own pattern and
# reads it back; after poweroff the image holds it byte for byte, the
# paravisor's log names what the front-end negotiated, and the paravisor
# exits 0 when QEMU goes.  A front-end that sends garbage is disconnected
# with the reason logged (exit 1); a bad --disk ends it with exit 2.
#
# All of that runs sandboxed (the default): while it serves, the host sees
# the paravisor with no new privileges, a seccomp filter, no capabilities,
# an empty root in its own mount namespace, uid nobody (when root started
# it) and without the fd the shell leaked to it.  A paravisor whose test
# hook makes a forbidden syscall mid-I/O dies by SIGSYS (exit 159) and the
# test records what QEMU and the guest saw; --no-sandbox runs unfiltered.
#
# VMMD_PARAVISOR_QEMU_ACCEL=tcg runs QEMU without KVM (a quick check on a
# machine whose KVM only emulates; the suite always uses kvm).
. "$(dirname "$0")/lib.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
UXSEND="$VMMD_BUILDDIR/tests/tools/uxsend"
ACCEL=${VMMD_PARAVISOR_QEMU_ACCEL:-kvm}
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
md5() { md5sum | cut -d' ' -f1; }

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ] || [ ! -x "$PARAVISOR" ] ||
	! command -v qemu-system-x86_64 >/dev/null; then
	not_ok "the Linux guest, paravisor/paravisor and qemu-system-x86_64 exist" \
		"(tests/guest/linux/build; make)"
	tap_plan
	exit 1
fi
cpu=
[ "$ACCEL" = kvm ] && cpu="-cpu host"

# pv_start OUT SOCKET ARGS...: the paravisor in the background ($pv), waits
# up to 10 s for its socket.
pv_start() {
	_out=$1
	_sock=$2
	shift 2
	"$PARAVISOR" --socket "$_sock" "$@" </dev/null >"$_out" 2>&1 &
	pv=$!
	_i=0
	while [ ! -S "$_sock" ] && [ $_i -lt 100 ] && kill -0 $pv 2>/dev/null; do
		sleep 0.1
		_i=$((_i + 1))
	done
}
# pv_wait SECS: waits for $pv to exit (killing it after SECS); its code in $RC.
pv_wait() {
	_i=0
	while kill -0 $pv 2>/dev/null && [ $_i -lt $(($1 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	kill -9 $pv 2>/dev/null
	wait $pv
	RC=$?
}

# qemu_start OUT SOCKET GUEST-SCRIPT: QEMU with the Linux guest in the
# background ($qemu), its disk the paravisor's on SOCKET.
qemu_start() {
	# shellcheck disable=SC2086
	timeout -s KILL 300 qemu-system-x86_64 -accel "$ACCEL" $cpu -M pc -L /usr/share/seabios \
		-m 512 -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot \
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
		-chardev socket,id=c,path="$2" -device vhost-user-blk-pci,chardev=c,num-queues=1 \
		-kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
		-append "console=ttyS0 panic=-1 quiet vmmd.run64=$(b64 "$3")" </dev/null >"$1" 2>&1 &
	qemu=$!
}
# not_holding PID FILE: true when no fd of PID is FILE.
not_holding() {
	for _f in /proc/"$1"/fd/*; do
		[ "$(readlink "$_f")" != "$2" ] || return 1
	done
}
# field PID KEY: the value of KEY in /proc/PID/status.
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null; }

# --- 1. QEMU boots Linux on the paravisor's disk; reads and writes land.
img=$WORK/disk.img
sock=$WORK/pv.sock
disk_rw_setup "$img"
g=$DISK_RW

# fd 7 is a leftover the shell hands down; the sandbox must close it.
: >"$WORK/leaked"
exec 7<"$WORK/leaked"
pv_start "$WORK/pv" "$sock" --disk "path=$img" -v
exec 7<&-
check "the paravisor listens on its vhost-user socket" [ -S "$sock" ]
start=$(date +%s)
qemu_start "$WORK/qemu" "$sock" "$g"
# --- 1a. While it serves, the sandbox as the host sees it.
if wait_for "$WORK/pv" "sandbox entered" 60; then
	check "the serving paravisor has no new privileges (NoNewPrivs: 1)" \
		[ "$(field $pv NoNewPrivs)" = 1 ]
	check "the serving paravisor runs under a seccomp filter (Seccomp: 2)" \
		[ "$(field $pv Seccomp)" = 2 ]
	check "the serving paravisor has no capabilities (CapEff, CapPrm: 0)" \
		[ "$(field $pv CapEff) $(field $pv CapPrm)" = "0000000000000000 0000000000000000" ]
	check "the paravisor closed the fd the shell leaked to it" not_holding $pv "$WORK/leaked"
	if [ "$(id -u)" = 0 ]; then
		check "as root: its mount namespace is its own" \
			[ "$(readlink /proc/$pv/ns/mnt)" != "$(readlink /proc/$$/ns/mnt)" ]
		check "as root: its root directory is empty" [ -z "$(ls -A /proc/$pv/root/)" ]
		check "as root: it runs as nobody (uid 65534)" \
			[ "$(field $pv Uid | tr -s '[:space:]' ' ')" = "65534 65534 65534 65534 " ]
		check "as root: its capability bounding set is empty" \
			[ "$(field $pv CapBnd)" = 0000000000000000 ]
	else
		skip "namespace, uid and bounding set checks (need root)"
	fi
	diag "paravisor $(grep -E '^(Uid|NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/$pv/status |
		tr -s '[:space:]' ' ')"
	diag "its fds: $(ls -l /proc/$pv/fd/ 2>/dev/null | sed -n 's/.* \([0-9]*\) -> /\1:/p' |
		tr '\n' ' ')"
else
	not_ok "the paravisor enters its sandbox when the front-end connects"
fi
wait $qemu
RC=$?
diag "QEMU ($ACCEL) from start to poweroff: $(($(date +%s) - start)) s"
result "QEMU's vhost-user-blk-pci boots Linux with the paravisor's disk as /dev/vda" qemu 0 \
	"VMMD-DISK 131072" "VMMD-GUEST-EXIT rc=0"
result "the guest reads the host's 1 MiB pattern through the paravisor" qemu 0 \
	"VMMD-HOST-MD5 $host_md5"
result "the guest reads its 4 MiB back after dropping its page cache" qemu 0 \
	"VMMD-GUEST-MD5 $guest_md5"

pv_wait 30
result "the sandboxed paravisor exits 0 when QEMU closes the connection" pv 0 \
	"sandbox entered" "the front-end closed the connection"
check "after poweroff the image holds the guest's 4 MiB byte for byte" \
	[ "$(dd if="$img" bs=1M skip=8 count=4 2>/dev/null | md5)" = "$guest_md5" ]
check "the host's pattern is intact" [ "$(head -c 1048576 "$img" | md5)" = "$host_md5" ]
result "the paravisor's log names the negotiated features and the queue it ran" pv 0 \
	"front-end acked features .*VERSION_1" "acked protocol features .*REPLY_ACK" \
	"queue 0 started: size [0-9]*"
grep -E 'acked|queue 0 started' "$WORK/pv" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done

# --- 2. A front-end that is not speaking vhost-user: disconnected, exit 1.
if [ -x "$UXSEND" ]; then
	pv_start "$WORK/pv-bad" "$WORK/bad.sock" --disk "path=$img"
	"$UXSEND" "$WORK/bad.sock" '{"cmd":"status"}' >/dev/null 2>&1
	pv_wait 10
	result "garbage from a front-end closes the connection with a reason, exit 1" pv-bad 1 \
		"malformed message from the front-end" "closing the connection"
else
	skip "garbage from a front-end (tests/tools/uxsend is not built)"
fi

# --- 3. Bad --disk options: one line naming the file or key, exit 2.
"$PARAVISOR" --socket "$WORK/x.sock" --disk "path=$WORK/no-such.img" >"$WORK/nofile" 2>&1
RC=$?
result "a missing image ends the paravisor with exit 2 naming the file" nofile 2 "no-such.img"
"$PARAVISOR" --socket "$WORK/x.sock" --disk "path=$img,colour=blue" >"$WORK/badkey" 2>&1
RC=$?
result "an unknown --disk key ends the paravisor with exit 2 naming it" badkey 2 "colour"

# --- 4. The test hook: a forbidden syscall (socket) mid-I/O kills the
# paravisor by SIGSYS; record what QEMU and the guest see then.
g='echo VMMD-IO-LOOP; i=0; while :; do i=$((i + 1));
dd if=/dev/urandom of=/dev/vda bs=64k count=16 seek=$((i % 64)) conv=fsync 2>/dev/null;
echo VMMD-IO $i; done'
pv_start "$WORK/pv-hook" "$WORK/hook.sock" --disk "path=$img" --test-forbidden-syscall
qemu_start "$WORK/qemu-hook" "$WORK/hook.sock" "$g"
if wait_for "$WORK/qemu-hook" "VMMD-IO 5" 120; then
	kill -USR1 $pv
	pv_wait 20
	done_before=$(grep -c '^VMMD-IO [0-9]' "$WORK/qemu-hook")
	diag "the guest had finished $done_before writes when the hook fired"
	# 128 + SIGSYS (31); result() would take any death by a signal for a failure.
	check "a forbidden syscall mid-I/O kills the paravisor by SIGSYS (exit $RC, want 159)" \
		[ "$RC" = 159 -a -n "$(grep "sandbox entered" "$WORK/pv-hook")" -a \
		-z "$(grep -E 'AddressSanitizer|runtime error:' "$WORK/pv-hook")" ]
	sleep 5
	done_after=$(grep -c '^VMMD-IO [0-9]' "$WORK/qemu-hook")
	if kill -0 $qemu 2>/dev/null; then
		diag "QEMU is still running 5 s later; the guest finished $((done_after - done_before)) more writes"
		kill $qemu 2>/dev/null
	else
		diag "QEMU exited by itself"
	fi
	wait $qemu
	diag "QEMU's own lines:"
	grep -v -e '^VMMD-IO' -e '^\[' "$WORK/qemu-hook" | tail -5 | while IFS= read -r l; do diag "  $l"; done
	check "the guest's I/O stops with the paravisor gone" [ $((done_after - done_before)) -le 1 ]
	audit=$(dmesg 2>/dev/null | grep 'type=1326.*comm="paravisor"' | tail -1)
	[ -n "$audit" ] && diag "kernel: $audit"
else
	not_ok "the guest's write loop runs on the paravisor with the test hook"
	kill $pv $qemu 2>/dev/null
	wait $qemu
	show "$WORK/qemu-hook"
fi

# --- 5. --no-sandbox: the same guest, no filter.
pv_start "$WORK/pv-off" "$WORK/off.sock" --disk "path=$img" --no-sandbox
qemu_start "$WORK/qemu-off" "$WORK/off.sock" 'echo VMMD-OFF $(head -c 4096 /dev/vda | md5sum); sleep 2'
if wait_for "$WORK/qemu-off" "VMMD-OFF" 120; then
	check "with --no-sandbox the serving paravisor has no seccomp filter (Seccomp: 0)" \
		[ "$(field $pv Seccomp)" = 0 ]
else
	not_ok "with --no-sandbox QEMU's guest reads the disk"
fi
wait $qemu
pv_wait 30
result "with --no-sandbox the paravisor serves and exits 0" pv-off 0 "sandbox off"

tap_plan
