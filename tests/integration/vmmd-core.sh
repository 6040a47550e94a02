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

# Paravisor uids (daemon/pv_uids.c): a VM keeps its uid in its record, so a
# vmmd that restarts never gives it to another VM; two vmmds' ranges never
# overlap.  The worker here only writes down its options (the spec vmmd
# hands it on fd 3, NUL-separated) as a line of pv-args.
P=$WORK/pv S=$WORK/pv/run/vmmd.sock
cat >"$WORK/argvmm" <<EOF
#!/bin/sh
{ tr '\\000' ' ' <&3; echo; } >>"$WORK/pv-args"
echo "vmm: cannot boot: bad kernel" >&2
exit 2
EOF
chmod +x "$WORK/argvmm"
truncate -s 1M "$WORK/pv.img"
mkdir -p "$P" "$WORK/pv2" "$WORK/d1" "$WORK/d2"
start_pv_vmmd() {
	VMMD_VMM="$WORK/argvmm" "$VMMD" --state-dir "$P/var" --run-dir "$P/run" \
		--paravisor-uids 1999990000-1999990001 "$@" >>"$WORK/vmmd.log" 2>&1 &
	VPID=$!
	api_wait "$S"
}
# pv_vm NAME: creates NAME with a paravisor disk and starts it (its worker fails at once).
pv_vm() {
	api POST /v1/vms "{\"spec\":{\"name\":\"$1\",\"memory_mib\":\"16\",\"kernel\":\"$WORK/kernel\",\"disks\":[{\"path\":\"$WORK/pv.img\",\"backend\":\"DISK_BACKEND_PARAVISOR\"}]},\"start\":true}"
	wait_state "$1" VM_STATE_FAILED 10
}
# uid_of VM: status.paravisor_uid, empty if none
uid_of() { api GET "/v1/vms/$1"; printf '%s' "$R" | sed -n 's/.*"paravisor_uid":\([0-9]*\).*/\1/p'; }
last_uid_arg() { tail -n 1 "$WORK/pv-args" | sed -n 's/.*--paravisor-uid \([0-9]*\).*/\1/p'; }
start_pv_vmmd
pv_vm pv1
check "a VM with a paravisor disk gets the range's first uid, in its status ($(uid_of pv1), vmm --paravisor-uid $(last_uid_arg))" \
	[ "$(uid_of pv1).$(last_uid_arg)" = 1999990000.1999990000 ]
kill -9 $VPID
wait $VPID 2>/dev/null
start_pv_vmmd
check "after a SIGKILL and restart the VM still holds its uid ($(uid_of pv1))" \
	[ "$(uid_of pv1)" = 1999990000 ]
pv_vm pv2
check "...and the next VM gets another one ($(uid_of pv2), vmm --paravisor-uid $(last_uid_arg))" \
	[ "$(uid_of pv2).$(last_uid_arg)" = 1999990001.1999990001 ]
pv_vm pv3
check "with every uid held, a VM's paravisors get none, and vmmd says why" \
	sh -c "[ -z '$(uid_of pv3)$(last_uid_arg)' ] && grep -q 'vm \"pv3\": every uid of --paravisor-uids 1999990000-1999990001 is taken' '$WORK/vmmd.log'"
api DELETE /v1/vms/pv1
sleep 0.5
api POST /v1/vms/pv3:start
wait_state pv3 VM_STATE_FAILED 10
check "a deleted VM's uid goes to the next VM that starts ($(uid_of pv3))" [ "$(uid_of pv3)" = 1999990000 ]
# A second vmmd whose range overlaps this one's is refused.
VMMD_VMM="$WORK/argvmm" timeout 10 "$VMMD" --state-dir "$WORK/pv2/var" --run-dir "$WORK/pv2/run" \
	--paravisor-uids 1999990001-1999990009 >"$WORK/pv2.log" 2>&1
rc=$?
check "a second vmmd whose --paravisor-uids overlaps the first's exits 2 naming the range (exit $rc: $(head -c 200 "$WORK/pv2.log"))" \
	sh -c "[ $rc -eq 2 ] && grep -q -- '--paravisor-uids 1999990001-1999990009: another vmmd uses uids of this range' '$WORK/pv2.log'"
# memory_prefault reaches vmm as --prefault, and only when asked for.
api POST /v1/vms "{\"spec\":{\"name\":\"pf\",\"memory_mib\":\"16\",\"kernel\":\"$WORK/kernel\",\"memory_prefault\":true},\"start\":true}"
wait_state pf VM_STATE_FAILED 10
api GET /v1/vms/pf
check "spec.memory_prefault is kept ($(printf '%s' "$R" | grep -o '"memory_prefault":[a-z]*'))" \
	has_r '"memory_prefault":true'
check "...and its vmm gets --prefault ($(tail -n 1 "$WORK/pv-args" | grep -o -- ' --prefault'))" \
	sh -c "tail -n 1 '$WORK/pv-args' | grep -q -- ' --prefault '"
check "the VMs without it did not ($(grep -c -- ' --prefault ' "$WORK/pv-args") lines of $(wc -l <"$WORK/pv-args") have it)" \
	[ "$(grep -c -- ' --prefault ' "$WORK/pv-args")" = 1 ]
kill -TERM $VPID
wait $VPID
if [ "$(id -u)" = 0 ]; then
	# Default ranges: a block per state dir, the next one if another vmmd has it.
	for n in 1 2; do
		"$VMMD" --state-dir "$WORK/d$n/var" --run-dir "$WORK/d$n/run" >"$WORK/d$n.log" 2>&1 &
		eval "dpid$n=\$!"
		S=$WORK/d$n/run/vmmd.sock api_wait "$WORK/d$n/run/vmmd.sock"
	done
	r1=$(sed -n 's/.*paravisor uids \([0-9]*-[0-9]*\) .*/\1/p' "$WORK/d1.log")
	r2=$(sed -n 's/.*paravisor uids \([0-9]*-[0-9]*\) .*/\1/p' "$WORK/d2.log")
	check "two vmmds with the default range (as root) take different blocks ($r1, $r2)" \
		sh -c "[ -n '$r1' ] && [ -n '$r2' ] && [ '$r1' != '$r2' ]"
	# shellcheck disable=SC2154
	kill -TERM "$dpid1" "$dpid2"
	wait "$dpid1" "$dpid2"
else
	skip "two vmmds with the default range take different blocks (not root)"
fi
check "no sanitizer report" sanitizer_clean "$WORK/vmmd.log"
[ "$TAP_FAILED" -eq 0 ] || tail -n 30 "$WORK/vmmd.log" | sed 's/^/# /'
tap_plan
