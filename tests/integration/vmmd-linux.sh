#!/bin/sh
# A Linux VM through vmmd (needs a KVM that runs Linux: the lab here).
# 1. What ./demo does (scripts/demo-vm): vmmd on its embedded default, the
#    VM created and started through REST by vmmctl, the guest's output read
#    back from vmmd's console log after the guest powered itself off.
# 2. StopVm's graceful path on a real guest: REST :stop presses the ACPI
#    power button, Linux powers off, the operation succeeds and the VM is
#    stopped; the console log shows the guest saw the button.
. "$(dirname "$0")/lib.sh"
VMMD="$VMMD_BUILDDIR/daemon/vmmd"
if ! command -v curl >/dev/null 2>&1 || [ ! -e /dev/kvm ] || [ ! -e "$GUEST_KERNEL" ]; then
	echo "1..0 # SKIP needs curl, /dev/kvm and the Linux test guest"
	exit 0
fi
cd "$WORK" || exit 1
# vmmd accepts kernels from its allowed directories (default: the cwd).
cp "$GUEST_KERNEL" vmlinuz && cp "$GUEST_INITRD" initramfs.img

tour='echo "tour: cpus=$(nproc)"; grep -c processor /proc/cpuinfo'
VMMD_BUILDDIR="$VMMD_BUILDDIR" "$VMMD_SRCDIR/scripts/demo-vm" "$WORK/vmlinuz" "$WORK/initramfs.img" \
	"console=ttyS0 quiet vmmd.run64=$(printf '%s' "$tour" | base64 -w0)" </dev/null >demo.out 2>&1
rc=$?
sed 's/^/# demo: /' demo.out
check "scripts/demo-vm (./demo's VM through vmmd) exits 0 (rc $rc)" [ $rc -eq 0 ]
check "the demo guest booted with 2 vCPUs (its marker is in vmmd's console log)" \
	grep -q 'VMMD-GUEST-READY.*cpus=2' demo.out
check "the demo guest ran its command and powered itself off" \
	sh -c "grep -q 'tour: cpus=2' demo.out && grep -q 'VMMD-GUEST-EXIT rc=0' demo.out"
check "vmmd reports the demo VM stopped after the guest's poweroff" grep -q '^demo  *stopped' demo.out

# 2. Graceful stop through REST.
S=$WORK/run/vmmd.sock
"$VMMD" >>vmmd.log 2>&1 &
VPID=$!
api_wait "$S"
api() { R=$(curl -s -m 10 --unix-socket "$S" -X "$1" ${3:+-d "$3"} "http://v$2"); }
api POST /v1/vms "{\"spec\":{\"name\":\"lin\",\"vcpus\":1,\"memory_mib\":\"256\",\"kernel\":\"$WORK/vmlinuz\",\"initrd\":\"$WORK/initramfs.img\",\"cmdline\":\"console=ttyS0 quiet\"},\"start\":true}"
ready=
i=0
while [ $i -lt 120 ]; do
	api GET /v1/vms/lin/console
	if printf '%s' "$R" | grep -q '"data"'; then
		printf '%s' "$R" | sed -n 's/.*"data":"\([^"]*\)".*/\1/p' | base64 -d 2>/dev/null >console.txt
		grep -q VMMD-GUEST-READY console.txt && { ready=1; break; }
	fi
	sleep 1
	i=$((i + 1))
done
check "a Linux VM created with start=true over REST boots (marker in GetConsoleLog)" [ -n "$ready" ]
api POST /v1/vms/lin:stop '{"timeout_s":60}'
OP=$(printf '%s' "$R" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
state=
i=0
while [ $i -lt 90 ]; do
	api GET "/v1/operations/$OP"
	state=$(printf '%s' "$R" | sed -n 's/.*"state":"\(OPERATION_STATE_[A-Z]*\)".*/\1/p')
	[ "$state" = OPERATION_STATE_RUNNING ] || break
	sleep 1
	i=$((i + 1))
done
diag "stop operation: $R"
check "a graceful StopVm of a Linux guest succeeds ($state)" [ "$state" = OPERATION_STATE_SUCCEEDED ]
api GET /v1/vms/lin
check "the Linux VM is stopped afterwards" sh -c "printf '%s' '$R' | grep -q VM_STATE_STOPPED"
api GET /v1/vms/lin/console
printf '%s' "$R" | sed -n 's/.*"data":"\([^"]*\)".*/\1/p' | base64 -d 2>/dev/null >console.txt
check "the guest powered off because it saw the ACPI power button" grep -q 'guest: power button pressed' console.txt
kill $VPID 2>/dev/null
wait $VPID 2>/dev/null
tap_plan
