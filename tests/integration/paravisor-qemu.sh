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

# --- 1. QEMU boots Linux on the paravisor's disk; reads and writes land.
img=$WORK/disk.img
sock=$WORK/pv.sock
truncate -s 64M "$img"
yes vmmd-host-pattern | head -c 1048576 | dd of="$img" conv=notrunc 2>/dev/null
host_md5=$(yes vmmd-host-pattern | head -c 1048576 | md5)
guest_md5=$(yes vmmd-guest-pattern | head -c 4194304 | md5)
g='echo VMMD-DISK $(cat /sys/block/vda/size);
echo VMMD-HOST-MD5 $(head -c 1048576 /dev/vda | md5sum | cut -d" " -f1);
yes vmmd-guest-pattern | head -c 4194304 | dd of=/dev/vda bs=1M seek=8 iflag=fullblock 2>/dev/null;
sync; echo 3 > /proc/sys/vm/drop_caches;
echo VMMD-GUEST-MD5 $(dd if=/dev/vda bs=1M skip=8 count=4 2>/dev/null | md5sum | cut -d" " -f1)'

pv_start "$WORK/pv" "$sock" --disk "path=$img"
check "the paravisor listens on its vhost-user socket" [ -S "$sock" ]
start=$(date +%s)
# shellcheck disable=SC2086
timeout -s KILL 300 qemu-system-x86_64 -accel "$ACCEL" $cpu -M pc -L /usr/share/seabios \
	-m 512 -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev socket,id=c,path="$sock" -device vhost-user-blk-pci,chardev=c,num-queues=1 \
	-kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
	-append "console=ttyS0 panic=-1 quiet vmmd.run64=$(b64 "$g")" </dev/null >"$WORK/qemu" 2>&1
RC=$?
diag "QEMU ($ACCEL) from start to poweroff: $(($(date +%s) - start)) s"
result "QEMU's vhost-user-blk-pci boots Linux with the paravisor's disk as /dev/vda" qemu 0 \
	"VMMD-DISK 131072" "VMMD-GUEST-EXIT rc=0"
result "the guest reads the host's 1 MiB pattern through the paravisor" qemu 0 \
	"VMMD-HOST-MD5 $host_md5"
result "the guest reads its 4 MiB back after dropping its page cache" qemu 0 \
	"VMMD-GUEST-MD5 $guest_md5"

pv_wait 30
result "the paravisor exits 0 when QEMU closes the connection" pv 0 \
	"the front-end closed the connection"
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

tap_plan
