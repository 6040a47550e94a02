#!/bin/sh
# Live migration vmmd to vmmd (needs KVM: kvm-suite.sh runs it in the lab
# with `--share /usr/bin/curl`).  Two vmmd processes on one machine, each
# with its own state dir and sockets: "a" and "b", each in its own network
# namespace joined by a veth pair (10.99.0.1, 10.99.0.2) where `ip netns`
# works, else both on 127.0.0.1 (the diag line says which).  A third vmmd,
# "evil", listens with a certificate from another CA.
# The tiny guest is created on a through REST, then:
#   - to evil: the operation fails naming TLS/the certificate, the VM runs on;
#   - to b while b has a VM of that name: refused, the VM runs on;
#   - to b at 1 MiB/s, cancelled: the VM runs on a, b keeps nothing;
#   - to b through REST: succeeds with its figures; the VM is RUNNING on b
#     (same id) and gone from a; its heartbeat carries on without a second boot;
#   - back to a with `vmmctl migrate --wait`: the figures printed, same checks.
. "$(dirname "$0")/lib.sh"
VMMD="$VMMD_BUILDDIR/daemon/vmmd"
VMMCTL="$VMMD_BUILDDIR/cli/vmmctl"
if ! command -v curl >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 ||
	[ ! -e /dev/kvm ]; then
	echo "1..0 # SKIP needs curl, openssl and /dev/kvm"
	exit 0
fi
cd "$WORK" || exit 1
cp "$TINY" "$WORK/tiny.elf"
unset VMMD_SOCKET

certs good hosta hostb
certs evil stranger

# Two namespaces and a veth pair if this machine can; else the loopback.
# iproute2's ip (lib.sh's IP2): busybox's has no netns.
ip=$IP2
ip() { "$ip" "$@"; }
NSA="" NSB="" IPA=127.0.0.1 IPB=127.0.0.1
if ip netns add vmmd-mig-a 2>/dev/null; then
	if ip netns add vmmd-mig-b && ip link add vmmd-va type veth peer name vmmd-vb &&
		ip link set vmmd-va netns vmmd-mig-a && ip link set vmmd-vb netns vmmd-mig-b &&
		ip -n vmmd-mig-a addr add 10.99.0.1/24 dev vmmd-va &&
		ip -n vmmd-mig-b addr add 10.99.0.2/24 dev vmmd-vb &&
		ip -n vmmd-mig-a link set vmmd-va up && ip -n vmmd-mig-b link set vmmd-vb up &&
		ip -n vmmd-mig-a link set lo up && ip -n vmmd-mig-b link set lo up; then
		NSA="$ip netns exec vmmd-mig-a" NSB="$ip netns exec vmmd-mig-b"
		IPA=10.99.0.1 IPB=10.99.0.2
	fi
	trap 'ip netns del vmmd-mig-a 2>/dev/null; ip netns del vmmd-mig-b 2>/dev/null; rm -rf "$WORK"' EXIT
fi
diag "vmmd a on $IPA${NSA:+ (netns vmmd-mig-a)}, b on $IPB${NSB:+ (netns vmmd-mig-b)}"
PA=47311 PB=47411 PE=47511
SA=$WORK/a/run/vmmd.sock SB=$WORK/b/run/vmmd.sock SE=$WORK/e/run/vmmd.sock

# vmmd NAME NS LISTEN LEAF CA: a vmmd in $WORK/NAME; its pid in $WORK/NAME.pid.
vmmd() {
	mkdir -p "$WORK/$1"
	VMMD_VMM="$VMM" $2 "$VMMD" --state-dir "$WORK/$1/var" --run-dir "$WORK/$1/run" \
		--allow-dir "$WORK" --stop-timeout 2 --migration-listen "$3" \
		--migration-tls-cert "$WORK/$4.crt" --migration-tls-key "$WORK/$4.key" \
		--migration-tls-ca "$WORK/$5.crt" >>"$WORK/$1.log" 2>&1 &
	echo $! >"$WORK/$1.pid"
	api_wait "$WORK/$1/run/vmmd.sock"
}
vmmd a "$NSA" "$IPA:$PA" hosta good
vmmd b "$NSB" "$IPB:$PB" hostb good
vmmd e "$NSB" "$IPB:$PE" stranger evil

on() { # on a|b|e: the REST calls that follow go to that vmmd
	case $1 in a) S=$SA ;; b) S=$SB ;; e) S=$SE ;; esac
}
gone() { # gone VM SECS: until the current vmmd has no such VM (404)
	_i=0
	while [ $_i -lt $(($2 * 10)) ]; do
		api GET "/v1/vms/$1"
		[ "$CODE" = 404 ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}
runs_on() { # runs_on a|b VM: RUNNING there, heartbeat going
	on "$1"
	[ "$(state_of "$2")" = VM_STATE_RUNNING ] || return 1
	wait_console "$2" "tiny: heartbeat" 10 || return 1
	_b=$(last_beat "$WORK/$2.con")
	wait_console "$2" "tiny: heartbeat $((_b + 16384))" 30
}
r_all() { # r_all PATTERN...: the last reply has every one (grep BRE)
	for _p; do printf '%s' "$R" | grep -q -- "$_p" || return 1; done
}
r_none() { # r_none PATTERN: the last reply does not have it
	! printf '%s' "$R" | grep -q -- "$1"
}
migrate() { # migrate VM BODY: MigrateVm on the current vmmd, waited for
	api POST "/v1/vms/$1:migrate" "$2"
	diag "MigrateVm: $CODE $R"
	wait_op "$(op_id)" "${3:-180}"
	diag "operation: $R"
}

# 1. The VM on a: a pattern in RAM and a heartbeat every 2^14 ticks.
on a
api POST /v1/vms "{\"spec\":{\"name\":\"hb\",\"memory_mib\":\"128\",\"kernel\":\"$WORK/tiny.elf\",\"cmdline\":\"heartbeat=14 pattern=77 dirty_size=32\"},\"start\":true}"
wait_op "$(op_id)" 60
wait_console hb "tiny: heartbeat" 60
check "a tiny guest runs on vmmd a ($(state_of hb))" grep -q "tiny: pattern 77 sum" "$WORK/hb.con"
api GET /v1/vms/hb
VMID=$(printf '%s' "$R" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')

# 2. Refusals: an argument, a destination with a certificate from another CA.
api POST /v1/vms/hb:migrate '{"destination":"nowhere"}'
check "a destination that is not host:port is 400 on destination ($R)" \
	r_all '"code":"INVALID_ARGUMENT"' '"field":"destination"'
api POST /v1/vms/hb:migrate "{\"destination\":\"$IPB:$PB\",\"connections\":17}"
check "17 connections is 400 on connections ($R)" \
	r_all '"code":"INVALID_ARGUMENT"' '"field":"connections"' 'at most 16'
api POST /v1/vms/hb:migrate "{\"destination\":\"$IPB:$PB\",\"priority\":\"MIGRATION_PRIORITY_HIGH\"}"
check "an unknown priority is 400 on priority ($R)" \
	r_all '"code":"INVALID_ARGUMENT"' '"field":"priority"'
migrate hb "{\"destination\":\"$IPB:$PE\"}" 60
check "to a vmmd whose certificate comes from another CA: the operation fails naming TLS/the certificate" \
	r_all OPERATION_STATE_FAILED 'TLS handshake: peer certificate refused'
check "...the VM still runs on a" runs_on a hb
on e
api GET /v1/vms
check "...and the other vmmd has no VM ($R)" [ "$R" = "{}" ]
check "...and logged the refused peer" grep -q "migration in from .*refused" "$WORK/e.log"

# 3. The name is taken on b: refused, the VM runs on.
on b
api POST /v1/vms "{\"spec\":{\"name\":\"hb\",\"memory_mib\":\"64\",\"kernel\":\"$WORK/tiny.elf\"}}"
wait_op "$(op_id)" 30
on a
migrate hb "{\"destination\":\"$IPB:$PB\"}" 60
check "to b where the name is taken: the operation fails ALREADY_EXISTS" \
	r_all OPERATION_STATE_FAILED '"code":"ALREADY_EXISTS"' 'vm \\"hb\\" already exists on the destination'
check "...the VM still runs on a" runs_on a hb
on b
api DELETE /v1/vms/hb
wait_op "$(op_id)" 30
gone hb 10

# 4. Cancel a migration held to 1 MiB/s: the VM runs on, b keeps nothing.
on a
api POST /v1/vms/hb:migrate "{\"destination\":\"$IPB:$PB\",\"bandwidth_limit\":\"1048576\"}"
OP=$(op_id)
sleep 4
on b
api GET /v1/vms/hb
check "while it migrates, b has the VM MIGRATING ($R)" has_r VM_STATE_MIGRATING
on a
api POST "/v1/operations/$OP:cancel"
wait_op "$OP" 60
diag "cancelled: $R"
check "CancelOperation: the migration is OPERATION_STATE_CANCELLED" has_r OPERATION_STATE_CANCELLED
check "...the VM still runs on a" runs_on a hb
on b
check "...and b discarded its VM" gone hb 60

# 5. MigrateVm through REST.
on a
wait_console hb "tiny: heartbeat" 10
saved=$(last_beat "$WORK/hb.con")
migrate hb "{\"destination\":\"$IPB:$PB\",\"downtime_limit_ms\":300,\"auto_converge\":true,\"connections\":3,\"priority\":\"MIGRATION_PRIORITY_EQUAL\"}"
check "MigrateVm to b succeeded" has_r OPERATION_STATE_SUCCEEDED
check "...its result has the figures (total, downtime and its parts, bytes, rounds, each round, dirty log, throughput)" \
	r_all "\"migration\":{\"destination\":\"$IPB:$PB\",\"setup_ms\":[1-9]" \
		'"total_ms":[1-9]' '"bytes":"[1-9]' '"pages_normal":"[1-9]' \
		'"rounds":[1-9]' '"round_stats":\[{"pages":"[1-9]' \
		'"dirty_log":"[a-z]' '"throughput_bytes_per_s":"[1-9]' '"connections":3' \
		'"downtime":{"[a-z_]*":'
check "...MIGRATION_PRIORITY_EQUAL: the source's migration threads stayed at nice 0 (no thread_nice in the result)" \
	r_none thread_nice
check "...the VM is gone from a" gone hb 10
on b
api GET /v1/vms/hb
check "...and RUNNING on b with the same id" r_all VM_STATE_RUNNING "\"id\":\"$VMID\""
# The vmm that received it says at what nice value (its log, on b).
received_at() { grep -o 'receiving at nice [-0-9]*' "$WORK/$1/var/vms/$VMID.log" | tail -n 1; }
check "...b received it at the priority asked for ($(received_at b))" \
	[ "$(received_at b)" = "receiving at nice 0" ]
wait_console hb "tiny: heartbeat" 30
first=$(first_beat "$WORK/hb.con")
diag "heartbeat $saved before, first on b ${first:-none}"
check "...its heartbeat carries on (above $saved), no second boot" \
	sh -c "[ '${first:-0}' -gt '$saved' ] && ! grep -q 'tiny: hello' '$WORK/hb.con'"
check "...and keeps going" runs_on b hb

# 6. Back to a with vmmctl migrate --wait.
wait_console hb "tiny: heartbeat" 10
saved=$(last_beat "$WORK/hb.con")
timeout -s KILL 200 "$VMMCTL" --socket "$SB" migrate hb "$IPA:$PA" --downtime-limit 300 --auto-converge --wait \
	>"$WORK/c.out" 2>"$WORK/c.err"
RC=$?
diag "vmmctl: $(cat "$WORK/c.out" "$WORK/c.err")"
check "vmmctl migrate --wait: exit 0, the figures printed" \
	sh -c "[ $RC -eq 0 ] && grep -q 'succeeded: to $IPA:$PA: [0-9]* ms in all.* MB/s, dirty ' '$WORK/c.out' &&
		grep -q 'round 0: [0-9]* pages' '$WORK/c.out' && grep -q 'downtime: pause [0-9]* ms' '$WORK/c.out'"
check "...by default the migration's threads ran at nice -10 (its figures say so)" \
	grep -q 'migration threads at nice -10' "$WORK/c.out"
on b
check "...the VM is gone from b" gone hb 10
on a
check "...and runs on a again" runs_on a hb
check "...received at nice -10 there ($(received_at a))" [ "$(received_at a)" = "receiving at nice -10" ]
first=$(first_beat "$WORK/hb.con")
check "...no second boot there either (first beat ${first:-none} > $saved)" \
	sh -c "[ '${first:-0}' -gt '$saved' ] && ! grep -q 'tiny: hello' '$WORK/hb.con'"

# 7. Metrics and events.
api GET /metrics
check "/metrics counts the migrations (a: one in, one cancelled out)" \
	r_all 'vmmd_migrations_total{direction="in",result="succeeded"} 1' \
		'vmmd_migrations_total{direction="out",result="cancelled"} 1'
on b
api GET /metrics
check "/metrics on b: one out succeeded, one in failed (the cancelled one), its bytes and time" \
	r_all 'vmmd_migrations_total{direction="out",result="succeeded"} 1' \
		'vmmd_migrations_total{direction="in",result="failed"} 1' \
		'vmmd_migration_sent_bytes_total [1-9]' 'vmmd_migration_duration_seconds_count 1'

on a
"$VMMCTL" --socket "$SA" stop hb --force --wait >/dev/null 2>&1
for n in a b e; do
	kill -TERM "$(cat "$WORK/$n.pid")"
	wait "$(cat "$WORK/$n.pid")"
	RC=$?
	check "vmmd $n exits 0 on SIGTERM ($RC)" [ "$RC" -eq 0 ]
	check "vmmd $n: no sanitizer report" sanitizer_clean "$WORK/$n.log"
	[ "$TAP_FAILED" -eq 0 ] || tail -n 30 "$WORK/$n.log" | sed "s/^/# $n: /"
done
tap_plan
