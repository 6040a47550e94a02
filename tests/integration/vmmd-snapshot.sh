#!/bin/sh
# Snapshot and restore through vmmd (needs KVM: kvm-suite.sh runs it in the
# lab with `--share /usr/bin/curl`): the tiny guest snapshotted through REST
# and vmmctl, restored into new VMs (RAM copied, and mapped lazily) that
# carry on where it was (no second boot, the heartbeat counter continues,
# the memory pattern verifies), the operation's result, the spec file, and
# the refusals: a bad path, a directory that holds a snapshot, a taken name,
# a corrupt snapshot (the operation and the VM say "checksum mismatch").
. "$(dirname "$0")/lib.sh"
VMMD="$VMMD_BUILDDIR/daemon/vmmd"
VMMCTL="$VMMD_BUILDDIR/cli/vmmctl"
if ! command -v curl >/dev/null 2>&1 || [ ! -e /dev/kvm ]; then
	echo "1..0 # SKIP needs curl and /dev/kvm"
	exit 0
fi
cd "$WORK" || exit 1
S=$WORK/run/vmmd.sock
cp "$TINY" "$WORK/tiny.elf"
unset VMMD_SOCKET

# err_is STATUS CODE FIELD: the last reply is that error, naming that field.
err_is() {
	[ "$CODE" = "$1" ] && has_r "\"code\":\"$2\"" && has_r "\"field\":\"$3\""
}
# continues VM SAVED: the restored VM's console: no boot, beats above SAVED.
continues() {
	# 60 s: in a loaded lab (two lanes on one L1) 30 s was once too few.
	wait_console "$1" "tiny: heartbeat" 60
	_first=$(first_beat "$WORK/$1.con")
	diag "$1: heartbeat $2 before the snapshot, first after the restore: ${_first:-none}"
	[ "${_first:-0}" -gt "$2" ] && ! grep -q 'tiny: hello' "$WORK/$1.con"
}
vmmctl() {
	timeout -s KILL 120 "$VMMCTL" "$@" >"$WORK/c.out" 2>"$WORK/c.err"
	RC=$?
}
c_has() { cat "$WORK/c.out" "$WORK/c.err" | grep -q -E -- "$1"; }

VMMD_VMM="$VMM" "$VMMD" --stop-timeout 2 >>"$WORK/vmmd.log" 2>&1 &
VPID=$!
api_wait "$S"
"$VMMCTL" events >"$WORK/events.out" 2>&1 &
EVENTS_PID=$!

# 1. The original VM: a pattern in RAM, a heartbeat every 2^14 ticks, its
# RAM prefaulted (vmmd must leave --prefault out of a lazy restore, which
# vmm refuses with it).
api POST /v1/vms "{\"spec\":{\"name\":\"hb\",\"memory_mib\":\"128\",\"memory_prefault\":true,\"kernel\":\"$WORK/tiny.elf\",\"cmdline\":\"heartbeat=14 pattern=77 dirty_size=32\"},\"start\":true}"
wait_op "$(op_id)" 60
# 120 s: prefaulting its RAM in a loaded lab (two lanes on one L1 each) once
# took it past 60 s to its first heartbeat.
wait_console hb "tiny: pattern 77 sum" 120
wait_console hb "tiny: heartbeat" 60
check "a tiny guest runs through vmmd, pattern written ($(state_of hb))" \
	grep -q "tiny: pattern 77 sum" "$WORK/hb.con"

# 2. SnapshotVm through REST: the VM runs on; the result says what was written.
saved1=$(last_beat "$WORK/hb.con")
api POST /v1/vms/hb:snapshot "{\"path\":\"$WORK/snap1\"}"
check "SnapshotVm returns a snapshot operation ($CODE)" has_r '"kind":"OPERATION_KIND_SNAPSHOT"'
wait_op "$(op_id)" 120
diag "snapshot operation: $R"
check "the snapshot operation succeeded" has_r OPERATION_STATE_SUCCEEDED
check "its result names the directory and counts RAM pages and state bytes" \
	sh -c "printf '%s' '$R' | grep -q '\"snapshot\":{\"path\":\"$WORK/snap1\",\"memory_pages\":\"[1-9]' &&
		printf '%s' '$R' | grep -q '\"state_bytes\":\"[1-9]'"
check "the directory holds state, memory and vm.json (hb's spec, as CreateVm takes it)" \
	sh -c "[ -s '$WORK/snap1/state' ] && [ -s '$WORK/snap1/memory' ] &&
		grep -q '\"name\": \"hb\"' '$WORK/snap1/vm.json' &&
		grep -q '\"cmdline\": \"heartbeat=14 pattern=77 dirty_size=32\"' '$WORK/snap1/vm.json' &&
		grep -q '\"memory_prefault\": true' '$WORK/snap1/vm.json'"
check "the VM is running after the snapshot" [ "$(state_of hb)" = VM_STATE_RUNNING ]
b1=$(beats "$WORK/hb.con")
wait_console hb "tiny: heartbeat $((saved1 + 4 * 16384))" 30
check "...and its heartbeat goes on ($b1 -> $(beats "$WORK/hb.con") lines)" \
	[ "$(beats "$WORK/hb.con")" -gt "$b1" ]

# 3. SnapshotVm's refusals: the field at fault named.
api POST /v1/vms/hb:snapshot '{"path":"snap-relative"}'
check "a relative path is 400 INVALID_ARGUMENT on path ($R)" err_is 400 INVALID_ARGUMENT path
api POST /v1/vms/hb:snapshot '{}'
check "no path is 400 INVALID_ARGUMENT on path ($R)" err_is 400 INVALID_ARGUMENT path
api POST /v1/vms/hb:snapshot "{\"path\":\"$WORK/no/such/dir\"}"
check "a path whose parent is missing is 400 on path ($R)" err_is 400 INVALID_ARGUMENT path
api POST /v1/vms/hb:snapshot "{\"path\":\"$WORK/snap1\"}"
check "a directory that holds a snapshot is 409 ALREADY_EXISTS on path ($R)" \
	err_is 409 ALREADY_EXISTS path
api POST /v1/vms/hb:snapshot '{"path":"/etc/vmmd-snap"}'
check "a path outside --allow-dir is refused ($R)" err_is 400 INVALID_ARGUMENT path

# 4. vmmctl snapshot --paused: the VM is left paused, then resumed.
wait_console hb "tiny: heartbeat" 5
saved2=$(last_beat "$WORK/hb.con")
vmmctl snapshot hb snap2 --paused --wait
check "vmmctl snapshot --paused --wait (relative DIR) reports the result ($(cat "$WORK/c.out" "$WORK/c.err"))" \
	sh -c "[ $RC -eq 0 ] && grep -q 'succeeded: $WORK/snap2 ([0-9]* pages of RAM' '$WORK/c.out'"
check "the VM is paused after snapshot --paused" [ "$(state_of hb)" = VM_STATE_PAUSED ]
vmmctl snapshot hb snap2
check "vmmctl snapshot into a used directory: exit 1 naming path ($(cat "$WORK/c.err"))" \
	sh -c "[ $RC -eq 1 ] && grep -q 'snapshot: path: .*already holds a snapshot' '$WORK/c.err'"
vmmctl resume hb --wait
check "the paused VM resumes" [ "$(state_of hb)" = VM_STATE_RUNNING ]

# SnapshotVm through gRPC, where Debian's python3-grpcio is at hand (in the
# lab only if /usr/bin/python3 and its libraries are shared).
PY=/usr/bin/python3
if "$PY" -c 'import grpc, grpc_tools' 2>/dev/null; then
	timeout -s KILL 120 "$PY" "$VMMD_SRCDIR/tests/integration/grpc_client.py" \
		--socket "$WORK/run/vmmd.grpc.sock" --srcdir "$VMMD_SRCDIR" \
		call SnapshotVm "{\"id\": \"hb\", \"path\": \"$WORK/snap-grpc\"}" >"$WORK/g.out" 2>&1
	R=$(sed -n 's/.*"id": "\([^"]*\)".*"kind": "OPERATION_KIND_SNAPSHOT".*/\1/p' "$WORK/g.out")
	wait_op "$R" 120
	check "SnapshotVm through gRPC succeeds ($(cat "$WORK/g.out"))" \
		sh -c "printf '%s' '$R' | grep -q OPERATION_STATE_SUCCEEDED && [ -s '$WORK/snap-grpc/vm.json' ]"
else
	skip "SnapshotVm through gRPC ($PY has no grpc/grpc_tools)"
fi

# 5. RestoreVm through REST, RAM copied: no second boot, the counter
# continues, guest RAM holds the pattern.
api POST /v1/vms:restore "{\"path\":\"$WORK/snap1\",\"name\":\"r1\"}"
check "RestoreVm returns a restore operation ($CODE)" has_r '"kind":"OPERATION_KIND_RESTORE"'
wait_op "$(op_id)" 120
diag "restore operation: $R"
check "the restore operation succeeded" has_r OPERATION_STATE_SUCCEEDED
check "the restored VM r1 is running" [ "$(state_of r1)" = VM_STATE_RUNNING ]
api GET /v1/vms/r1
check "r1 has hb's spec under its own name" \
	sh -c "printf '%s' '$R' | grep -q '\"name\":\"r1\"' && printf '%s' '$R' | grep -q 'pattern=77'"
check "r1 continues from hb's snapshot: no boot, heartbeat above $saved1" continues r1 "$saved1"
curl -s -m 10 --unix-socket "$S" -H 'Content-Type: application/octet-stream' --data-binary v \
	"http://v/v1/vms/r1/console:write" >/dev/null
wait_console r1 "tiny: verify" 60
check "r1's RAM holds the pattern written before the snapshot" grep -q "tiny: verify ok" "$WORK/r1.con"

# 6. vmmctl restore, RAM mapped lazily.
vmmctl restore snap2 --name r2 --memory-mode lazy --wait
check "vmmctl restore --memory-mode lazy --wait ($(cat "$WORK/c.out" "$WORK/c.err"))" \
	sh -c "[ $RC -eq 0 ] && grep -q 'restore r2: operation .* succeeded' '$WORK/c.out'"
check "the restored VM r2 is running (a prefaulted VM's spec, restored lazily)" \
	[ "$(state_of r2)" = VM_STATE_RUNNING ]
check "r2 continues from the second snapshot: no boot, heartbeat above $saved2" \
	continues r2 "$saved2"
# vmm takes its arguments on fd 3, so its RAM tells whether it prefaulted.
shm_kib() {
	api GET "/v1/vms/$1"
	_p=$(printf '%s\n' "$R" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
	awk '/^RssShmem:/ { print $2 }' "/proc/${_p:-0}/status" 2>/dev/null
}
kib=$(shm_kib r1)
check "r1 (RAM copied) is prefaulted as hb was: all 128 MiB resident (${kib:-?} KiB)" \
	[ "${kib:-0}" -ge $((128 * 1024)) ]
vmmctl list
check "vmmctl list shows hb, r1 and r2 running" \
	sh -c "grep -q -E '^hb +running' '$WORK/c.out' && grep -q -E '^r1 +running' '$WORK/c.out' &&
		grep -q -E '^r2 +running' '$WORK/c.out'"

# 7. RestoreVm's refusals.
api POST /v1/vms:restore "{\"path\":\"$WORK/snap1\",\"name\":\"r1\"}"
check "a taken name is 409 ALREADY_EXISTS on name ($R)" err_is 409 ALREADY_EXISTS name
api POST /v1/vms:restore "{\"path\":\"$WORK/snap1\"}"
check "no name: the saved one (hb), taken: 409 on name ($R)" err_is 409 ALREADY_EXISTS name
vmmctl restore snap1 --name r1
check "vmmctl restore with a taken name: exit 1 ($(cat "$WORK/c.err"))" \
	sh -c "[ $RC -eq 1 ] && grep -q 'already exists' '$WORK/c.err'"
api POST /v1/vms:restore "{\"path\":\"$WORK/missing\",\"name\":\"r3\"}"
check "a missing directory is 400 on path ($R)" err_is 400 INVALID_ARGUMENT path
mkdir "$WORK/bare"
cp "$WORK/snap1/state" "$WORK/snap1/memory" "$WORK/bare/"
api POST /v1/vms:restore "{\"path\":\"$WORK/bare\",\"name\":\"r3\"}"
check "a snapshot without vm.json is 400 on path, not a vmmd snapshot ($R)" \
	sh -c "printf '%s' '$R' | grep -q 'not a snapshot taken by vmmd' && [ $CODE = 400 ]"
api POST /v1/vms:restore "{\"path\":\"$WORK/snap1\",\"name\":\"r3\",\"memory_mode\":\"fast\"}"
check "an unknown memory_mode is 400 on memory_mode ($R)" err_is 400 INVALID_ARGUMENT memory_mode

# 8. A corrupt snapshot: vmm refuses it; the operation and the VM say why.
cp -r "$WORK/snap1" "$WORK/bad"
printf '\377' | dd of="$WORK/bad/state" bs=1 seek=40 conv=notrunc 2>/dev/null
api POST /v1/vms:restore "{\"path\":\"$WORK/bad\",\"name\":\"bad1\"}"
wait_op "$(op_id)" 60
diag "restore of a corrupt snapshot: $R"
check "restoring a corrupt snapshot fails with \"checksum mismatch\" on path" \
	sh -c "printf '%s' '$R' | grep -q OPERATION_STATE_FAILED &&
		printf '%s' '$R' | grep -q '\"field\":\"path\"' &&
		printf '%s' '$R' | grep -q 'checksum mismatch'"
api GET /v1/vms/bad1
check "the new VM is left failed, its reason says why ($R)" \
	sh -c "printf '%s' '$R' | grep -q VM_STATE_FAILED && printf '%s' '$R' | grep -q 'reason\":\"[^\"]*checksum mismatch'"
console_text bad1 >"$WORK/bad1.con"
check "the corrupt snapshot's guest never ran" sh -c "! grep -q tiny: '$WORK/bad1.con'"

# 9. Events of both.
sleep 0.5
kill "$EVENTS_PID" 2>/dev/null
wait "$EVENTS_PID" 2>/dev/null
for pat in "hb operation_updated .*snapshot succeeded: snapshot in $WORK/snap1" \
	"r1 vm_created.*created from snapshot $WORK/snap1" "r1 operation_updated .*restore succeeded" \
	"hb vm_state_changed state=paused.*paused after a snapshot" \
	"bad1 vm_state_changed state=failed.*checksum mismatch"; do
	if grep -q -E -- "$pat" "$WORK/events.out"; then
		ok "events: $pat"
	else
		not_ok "events: $pat"
		show "$WORK/events.out"
	fi
done

for vm in hb r1 r2; do "$VMMCTL" stop "$vm" --force --wait >/dev/null 2>&1; done
kill -TERM $VPID
wait $VPID
RC=$?
check "vmmd exits 0 on SIGTERM ($RC)" [ "$RC" -eq 0 ]
check "no sanitizer report" sanitizer_clean "$WORK/vmmd.log"
[ "$TAP_FAILED" -eq 0 ] || tail -n 40 "$WORK/vmmd.log" | sed 's/^/# /'
tap_plan
