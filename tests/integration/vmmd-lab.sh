#!/bin/sh
# vmmd with real VMs (needs KVM: run in the lab with `--share /usr/bin/curl`):
# five tiny guests created and started through the REST API, vmmd killed
# with SIGKILL while they run and while an operation is in flight, a new
# vmmd re-attaches: every VM still running, the interrupted operation
# reported failed or completed, never running; then all stopped.
. "$(dirname "$0")/lib.sh"
VMMD="$VMMD_BUILDDIR/daemon/vmmd"
if ! command -v curl >/dev/null 2>&1 || [ ! -e /dev/kvm ]; then
	echo "1..0 # SKIP needs curl and /dev/kvm"
	exit 0
fi
cd "$WORK" || exit 1
S=$WORK/run/vmmd.sock
cp "$TINY" "$WORK/tiny.elf"
start_vmmd() {
	VMMD_VMM="$VMM" "$VMMD" --stop-timeout 2 >>"$WORK/vmmd.log" 2>&1 &
	VPID=$!
	api_wait "$S"
}

start_vmmd
for n in 1 2 3 4 5; do
	api POST /v1/vms "{\"spec\":{\"name\":\"vm$n\",\"memory_mib\":\"32\",\"kernel\":\"$WORK/tiny.elf\",\"cmdline\":\"heartbeat=16\"},\"start\":true}"
done
all=0
for n in 1 2 3 4 5; do wait_state vm$n VM_STATE_RUNNING 30 && all=$((all + 1)); done
check "five VMs created and started through the API ($all running)" [ "$all" -eq 5 ]
# The first heartbeat takes ~2 s where the host KVM emulates instructions.
i=0
until console_text vm1 | grep -q 'tiny: heartbeat' || [ $i -ge 200 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "the console log captures the guest's output (a heartbeat line)" sh -c "[ $i -lt 200 ]"
pids=$(for n in 1 2 3 4 5; do api GET /v1/vms/vm$n; printf '%s\n' "$R" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; done | tr '\n' ' ')
diag "worker pids: $pids"
p1=${pids%% *}
check "vmmd hands the spec over a socket: the worker's command line is 'vmm --spec-fd 3'" \
	sh -c "tr '\\0' ' ' </proc/$p1/cmdline | grep -q -- '--spec-fd 3 *\$' && ! grep -q tiny.elf /proc/$p1/cmdline"

kill -9 $VPID
wait $VPID 2>/dev/null
alive=0
for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
check "SIGKILL of vmmd leaves the five workers running ($alive alive)" [ "$alive" -eq 5 ]
start_vmmd
all=0
for n in 1 2 3 4 5; do [ "$(state_of vm$n)" = VM_STATE_RUNNING ] && all=$((all + 1)); done
check "a new vmmd re-attaches: all five reported running ($all)" [ "$all" -eq 5 ]

# An operation in flight when vmmd dies: a graceful stop (tiny ignores the
# power button, so it waits out the timeout) on vm5, killed after 0.5 s.
api POST /v1/vms/vm5:pause
wait_state vm5 VM_STATE_PAUSED 10
check "PauseVm pauses a re-attached VM" [ $? -eq 0 ]
api POST /v1/vms/vm5:resume
wait_state vm5 VM_STATE_RUNNING 10
api POST /v1/vms/vm5:stop '{"timeout_s":20}'
OP=$(printf '%s' "$R" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
sleep 0.5
kill -9 $VPID
wait $VPID 2>/dev/null
start_vmmd
api GET "/v1/operations/$OP"
diag "interrupted operation: $R"
check "the interrupted stop is reported failed or completed, not running" \
	sh -c "echo '$R' | grep -q -E 'OPERATION_STATE_(FAILED|SUCCEEDED)' && ! echo '$R' | grep -q OPERATION_STATE_RUNNING"
st=$(state_of vm5)
check "vm5's state is consistent after the restart ($st)" sh -c "[ '$st' = VM_STATE_RUNNING ] || [ '$st' = VM_STATE_STOPPED ]"

for n in 1 2 3 4 5; do api POST /v1/vms/vm$n:stop '{"force":true}'; done
all=0
for n in 1 2 3 4 5; do wait_state vm$n VM_STATE_STOPPED 15 && all=$((all + 1)); done
check "all five stopped through the API ($all)" [ "$all" -eq 5 ]
# The workers outlived the first vmmd, so init reaps them: a zombie is gone.
running() { [ -e "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }
i=0
while :; do
	alive=0
	for p in $pids; do running "$p" && alive=$((alive + 1)); done
	[ "$alive" -gt 0 ] && [ $i -lt 50 ] || break
	sleep 0.1
	i=$((i + 1))
done
check "no worker process is left ($alive)" [ "$alive" -eq 0 ]
kill -TERM $VPID
wait $VPID
RC=$?
check "vmmd exits 0 on SIGTERM" [ "$RC" -eq 0 ]
check "no sanitizer report" sanitizer_clean "$WORK/vmmd.log"
[ "$TAP_FAILED" -eq 0 ] || tail -n 40 "$WORK/vmmd.log" | sed 's/^/# /'
tap_plan
