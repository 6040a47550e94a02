#!/bin/sh
# vmmd's core through its REST socket, no KVM needed: create, list, get,
# errors (409 on a taken name, 400 naming a path outside --allow-dir, 409 on
# an action in the wrong state), a worker that fails to start, metrics,
# persistence across a SIGKILL and a corrupt state file left out.
. "$(dirname "$0")/lib.sh"
VMMD="$VMMD_BUILDDIR/daemon/vmmd"
if ! command -v curl >/dev/null 2>&1; then
	echo "1..0 # SKIP curl is not installed"
	exit 0
fi
cd "$WORK" || exit 1
S=$WORK/run/vmmd.sock
touch "$WORK/kernel"
printf '#!/bin/sh\necho "vmm: cannot boot: bad kernel" >&2\nexit 2\n' >"$WORK/badvmm"
chmod +x "$WORK/badvmm"

start_vmmd() {
	VMMD_VMM="$WORK/badvmm" "$VMMD" --stop-timeout 2 >>"$WORK/vmmd.log" 2>&1 &
	VPID=$!
	api_wait "$S"
}
spec() { echo "{\"spec\":{\"name\":\"$1\",\"memory_mib\":\"64\",\"kernel\":\"$2\"}}"; }

start_vmmd
api GET /v1/version
check "vmmd serves REST on ./run/vmmd.sock ($CODE $R)" has_r '"api":"vmmd.v1"'

api POST /v1/vms "$(spec web "$WORK/kernel")"
check "CreateVm returns an operation ($CODE)" has_r '"kind":"OPERATION_KIND_CREATE"'
sleep 0.3
api GET /v1/vms/web
check "the VM is stopped after creation, found by name ($R)" has_r '"state":"VM_STATE_STOPPED"'
ID=$(printf '%s' "$R" | sed 's/^{"id":"\([^"]*\)".*/\1/')

api POST /v1/vms "$(spec web "$WORK/kernel")"
check "a taken name is 409 ALREADY_EXISTS ($CODE $R)" sh -c "[ $CODE = 409 ] && echo '$R' | grep -q ALREADY_EXISTS"
api POST /v1/vms "$(spec evil /etc/passwd)"
check "a kernel outside --allow-dir is refused naming it ($CODE $R)" \
	sh -c "[ $CODE = 400 ] && echo '$R' | grep -q '\"field\":\"spec.kernel\"' && echo '$R' | grep -q /etc/passwd"
api POST /v1/vms '{"spec":{"name":"Bad_Name","memory_mib":"64"}}'
check "a bad name is INVALID_ARGUMENT on spec.name ($CODE)" sh -c "[ $CODE = 400 ] && echo '$R' | grep -q spec.name"
api POST /v1/vms "{\"spec\":{\"name\":\"tiny\",\"memory_mib\":\"8\",\"kernel\":\"$WORK/kernel\"}}"
check "memory below 16 MiB is refused ($CODE)" sh -c "[ $CODE = 400 ] && echo '$R' | grep -q spec.memory_mib"
api POST /v1/vms/web:stop
check "stopping a stopped VM is 409 naming its state ($CODE $R)" \
	sh -c "[ $CODE = 409 ] && echo '$R' | grep -q 'vm \\\\\"web\\\\\" is stopped'"
api GET /v1/vms/nope
check "an unknown VM is 404 ($CODE)" [ "$CODE" = 404 ]

api POST /v1/vms/web:start
sleep 1
api GET /v1/vms/web
check "a worker that exits at once leaves the VM failed with its message ($R)" \
	sh -c "echo '$R' | grep -q VM_STATE_FAILED && echo '$R' | grep -q 'cannot boot: bad kernel'"
api GET "/v1/operations?vm_id=web"
check "the start operation failed with the reason ($R)" has_r 'OPERATION_STATE_FAILED'

api GET /metrics
check "metrics show the VM's state" has_r 'vmmd_vm_state{vm="web",state="failed"} 1'
check "metrics show memory and build info" sh -c "grep -q 'vmmd_vm_memory_bytes{vm=\"web\"} 67108864' '$WORK/resp' && grep -q vmmd_build_info '$WORK/resp'"

check "the VM is persisted atomically as var/vms/ID.json" [ -f "$WORK/var/vms/$ID.json" ]
kill -9 $VPID
wait $VPID 2>/dev/null
echo '{"id": "broken' >"$WORK/var/vms/0000.json"
start_vmmd
api GET /v1/vms/web
check "after SIGKILL and restart the VM is still known and failed" has_r VM_STATE_FAILED
check "a corrupt state file is logged and left out" grep -q 'vms/0000.json: corrupt' "$WORK/vmmd.log"
api GET /v1/vms
check "...and only the good VM is listed" sh -c "[ \$(echo '$R' | grep -o '\"name\"' | wc -l) = 1 ]"

api DELETE /v1/vms/web
sleep 0.5
api GET /v1/vms/web
check "DeleteVm removes the VM and its file ($CODE)" sh -c "[ $CODE = 404 ] && [ ! -f '$WORK/var/vms/$ID.json' ]"

kill -TERM $VPID
wait $VPID
RC=$?
check "SIGTERM ends vmmd with status 0 ($RC)" [ "$RC" -eq 0 ]
check "no sanitizer report" sanitizer_clean "$WORK/vmmd.log"
[ "$TAP_FAILED" -eq 0 ] || tail -n 30 "$WORK/vmmd.log" | sed 's/^/# /'
tap_plan
