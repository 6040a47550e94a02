#!/bin/sh
# Live migration of the tiny guest between two vmm processes (source driven
# through its control socket, destination `vmm --incoming`): the guest
# carries on at the destination (heartbeat counter continues, no second
# boot, its RAM pattern verifies), idle and while dirtying memory, in plain
# TCP and in mutual TLS; and the faults: a certificate from another CA, the
# destination killed mid-way and in stop-and-copy, a cancel, a peer that
# sends garbage, a destination of another size — the source keeps running
# every time and the destination never runs the guest.
. "$(dirname "$0")/lib.sh"
args="--memory 128M --cpus 2 --stop-timeout 0"
port=47000
says() { printf '%s\n' "$1" | grep -q -- "$2"; }
field() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

if ! command -v openssl >/dev/null; then
	not_ok "openssl is installed (scripts/install-deps)"
	tap_plan
	exit 1
fi

# Two CAs: "good" signs both vmm's certificates, "evil" a stranger's.
certs good src dst
certs evil stranger
tls_json() { # tls_json LEAF CA
	printf '"tls":{"cert":"%s","key":"%s","ca":"%s"}' "$WORK/$1.crt" "$WORK/$1.key" "$WORK/$2.crt"
}

# src OUT CMDLINE: the source VM, started and running its heartbeat.
src() {
	vmm_start "$1" $args --kernel "$TINY" --cmdline "$2"
	wait_for "$1" "tiny: heartbeat 32768" 30
}
# dst OUT ARGS...: vmm --incoming in the background (its pid in $WORK/dst.pid,
# its exit code in $WORK/dst.rc; the lab's busybox has no pkill).
dst() {
	_o=$1
	shift
	port=$((port + 1))
	rm -f "$WORK/dst.pid" "$WORK/dst.rc"
	(
		# shellcheck disable=SC2086
		"$VMM" $args --incoming "127.0.0.1:$port" "$@" <"$WORK/din" >"$_o" 2>&1 &
		echo $! >"$WORK/dst.pid"
		wait $!
		echo $? >"$WORK/dst.rc"
	) &
	dpid=$!
	wait_for "$_o" "waiting for a migration" 10
	sleep 0.2
}
# dst_stop NAME OUT: SIGTERM the destination; it must end within 15 s.
dst_stop() {
	kill -TERM "$(cat "$WORK/dst.pid")" 2>/dev/null
	i=0
	while [ ! -s "$WORK/dst.rc" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	if [ -s "$WORK/dst.rc" ]; then
		ok "$1: the destination stops on SIGTERM"
	else
		not_ok "$1: the destination stops on SIGTERM"
		diag "$(tail -n 8 "$2")"
		kill -KILL "$(cat "$WORK/dst.pid")" 2>/dev/null
	fi
	wait $dpid 2>/dev/null
}
# migrate EXTRA-JSON: to this test's destination, waits for the end ($st).
migrate() { vmm_migrate "127.0.0.1:$port" "$1" 60; }
# nice_of PID: the nice value of the process's main thread; nices PID: the
# distinct nice values of all its threads, lowest first ("-10 0 ").
stat_nice() { sed 's/.*) //' "$1" 2>/dev/null | cut -d' ' -f17; }
nice_of() { stat_nice "/proc/$1/stat"; }
nices() {
	for _t in /proc/"$1"/task/*/stat; do stat_nice "$_t"; done | sort -n | uniq | tr '\n' ' '
}
rm -f "$WORK/din"
mkfifo "$WORK/din"
exec 9<>"$WORK/din"

# 1. Idle guest, plain TCP, RAM spread over four connections (the pattern
# check below fails if a page went missing on one of them).
src "$WORK/s1" "heartbeat=14 pattern=77 dirty_size=32"
rm -f "$WORK/dst.rc"
dst "$WORK/d1"
before=$(last_beat "$WORK/s1")
migrate ',"connections":4'
r=$(ctl '{"cmd":"resume"}')
check "the migrated source refuses to resume ($r)" says "$r" "migrated away"
ctl '{"cmd":"stop"}' >/dev/null
wait $pid 2>/dev/null
src_rc=$?
check "migration completes: $(field "$st" migration), $(field "$st" rounds) rounds, $(field "$st" downtime_ms) ms down, $(field "$st" bytes) bytes" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"'"
check "stopped, the source vmm exits 5 (migrated away; got $src_rc)" [ "$src_rc" -eq 5 ]
# KVM's dirty ring by default; the bitmap only on kvm_pvm (see dirty_ring.c).
want_log=ring
[ -e /sys/module/kvm_pvm ] && want_log=bitmap
check "pre-copy read KVM's dirty $want_log ($(field "$st" dirty_log))" [ "$(field "$st" dirty_log)" = "$want_log" ]
wait_for "$WORK/d1" "tiny: heartbeat" 20
first=$(first_beat "$WORK/d1")
check "the guest carries on at the destination (heartbeat ${before:-?} before, ${first:-none} first after)" \
	sh -c "[ '${first:-0}' -gt '${before:-999999999}' ] && ! grep -q 'tiny: hello' '$WORK/d1'"
printf 'v' >&9
wait_for "$WORK/d1" "tiny: verify" 20
check "the destination's RAM holds the pattern written before" has "$WORK/d1" "tiny: verify ok"
check "the destination says it received the VM" has "$WORK/d1" "the guest runs here now"
dst_stop "idle guest" "$WORK/d1"
exec 8>&-

# 1b. A destination with --prefault: all its RAM is there before the
# source connects (and stays: the pages arrive into it), and what its set-up
# wrote is gone, zero where the source sent nothing.
src "$WORK/s1b" "heartbeat=14 pattern=91 dirty_size=32"
rm -f "$WORK/dst.rc"
dst "$WORK/d1b" --prefault --incoming-nice 0
shm_kib() { awk '/^RssShmem:/ { print $2 }' "/proc/$(cat "$WORK/dst.pid")/status"; }
kib=$(shm_kib)
check "--prefault: the waiting destination holds all 128 MiB of guest RAM (${kib:-?} KiB)" \
	[ "${kib:-0}" -ge $((128 * 1024)) ]
before=$(last_beat "$WORK/s1b")
check "--incoming-nice 0: the waiting destination's thread stays at nice 0 ($(nice_of "$(cat "$WORK/dst.pid")"))" \
	[ "$(nice_of "$(cat "$WORK/dst.pid")")" = 0 ]
migrate ',"thread_nice":0'
check "\"thread_nice\":0: the source's migration threads ran at nice 0 ($(field "$st" thread_nice))" \
	[ "$(field "$st" thread_nice)" = 0 ]
ctl '{"cmd":"stop"}' >/dev/null
wait $pid 2>/dev/null
check "migration to a prefaulted destination completes ($(field "$st" migration), $(field "$st" bytes) bytes)" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"'"
wait_for "$WORK/d1b" "tiny: heartbeat" 20
first=$(first_beat "$WORK/d1b")
check "the guest carries on at the prefaulted destination (${before:-?} -> ${first:-none})" \
	sh -c "[ '${first:-0}' -gt '${before:-999999999}' ] && ! grep -q 'tiny: hello' '$WORK/d1b'"
printf 'v' >&9
wait_for "$WORK/d1b" "tiny: verify" 20
check "the prefaulted destination's RAM holds the pattern" has "$WORK/d1b" "tiny: verify ok"
kib=$(shm_kib)
check "the prefaulted destination still holds all its RAM (${kib:-?} KiB)" [ "${kib:-0}" -ge $((128 * 1024)) ]
dst_stop "prefaulted destination" "$WORK/d1b"
exec 8>&-

# 2. A guest dirtying 4 MiB flat out, in mutual TLS on three connections,
# with KVM_GET_DIRTY_LOG (--dirty-log bitmap) instead of the ring: pre-copy
# cannot converge, so max_rounds ends it; the heartbeat goes on at the
# destination.
args="$args --dirty-log bitmap"
src "$WORK/s2" "heartbeat=14 dirty=0 dirty_size=4"
args="--memory 128M --cpus 2 --stop-timeout 0"
rm -f "$WORK/dst.rc"
dst "$WORK/d2" --tls-cert "$WORK/dst.crt" --tls-key "$WORK/dst.key" --tls-ca "$WORK/good.crt"
before=$(last_beat "$WORK/s2")
migrate ",\"max_rounds\":4,\"downtime_limit_ms\":1,\"connections\":3,$(tls_json src good)"
ctl '{"cmd":"stop"}' >/dev/null
wait $pid 2>/dev/null
rounds=$(field "$st" rounds)
# (How many rounds depends on how fast this host sends: 1 to max_rounds.)
check "a dirtying guest migrates in mutual TLS on 3 connections ($(field "$st" migration), $rounds rounds, $(field "$st" downtime_ms) ms down, dirty $(field "$st" dirty_log), $(field "$st" connections) connections)" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"' && [ '${rounds:-0}' -ge 1 ] && printf '%s' '$st' | grep -q '\"dirty_log\":\"bitmap\"' && printf '%s' '$st' | grep -q '\"connections\":3'"
wait_for "$WORK/d2" "tiny: heartbeat" 20
first=$(first_beat "$WORK/d2")
check "the dirtying guest carries on at the destination (${before:-?} -> ${first:-none})" \
	sh -c "[ '${first:-0}' -gt '${before:-999999999}' ] && ! grep -q 'tiny: hello' '$WORK/d2'"
dst_stop "dirtying guest" "$WORK/d2"
exec 8>&-

# 2b. Auto-converge: 8 MiB rewritten flat out over a link held to 16 MiB/s
# cannot converge; the throttle must rise round after round (the rounds'
# stats say by how much), come off for the handover, and the guest carry on.
src "$WORK/s2b" "heartbeat=14 dirty=0 dirty_size=8"
rm -f "$WORK/dst.rc"
dst "$WORK/d2b"
before=$(last_beat "$WORK/s2b")
# The migration's threads outrank the vCPUs (nice -10, vmm's default) at
# both ends, and only while it runs; the slow link keeps pre-copy long
# enough to look.
dpid_vmm=$(cat "$WORK/dst.pid")
check "the waiting destination's receiving thread runs at nice -10 ($(nice_of "$dpid_vmm"))" \
	[ "$(nice_of "$dpid_vmm")" = -10 ]
rm -f "$WORK/nice.stop"
(while [ ! -e "$WORK/nice.stop" ]; do
	nices $pid
	echo
	sleep 0.05
done) >"$WORK/nice.src" 2>/dev/null &
npid=$!
migrate ',"auto_converge":true,"bandwidth_limit":16777216,"max_rounds":10,"downtime_limit_ms":1,"connections":2'
touch "$WORK/nice.stop"
wait $npid
check "during pre-copy the source's migration threads ran at nice -10, its vCPUs at 0 ($(sort -u "$WORK/nice.src" | tr '\n' '|'); status says $(field "$st" thread_nice))" \
	sh -c "grep -q -- '^-10 0 \$' '$WORK/nice.src' && [ '$(field "$st" thread_nice)' = -10 ]"
ctl '{"cmd":"stop"}' >/dev/null
wait $pid 2>/dev/null
pct=$(field "$st" throttle_percent)
check "auto-converge throttles the vCPUs ($(field "$st" migration), $(field "$st" rounds) rounds, throttle ${pct:-?}%)" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"' && [ '${pct:-0}' -ge 20 ]"
check "the throttle came off for the handover" has "$WORK/s2b" "vCPU throttle off"
wait_for "$WORK/d2b" "tiny: heartbeat" 20
first=$(first_beat "$WORK/d2b")
check "the throttled guest carries on at the destination (${before:-?} -> ${first:-none})" \
	sh -c "[ '${first:-0}' -gt '${before:-999999999}' ]"
check "at the destination every thread runs at nice 0 once the guest runs there ($(nices "$dpid_vmm"))" \
	[ "$(nices "$dpid_vmm")" = "0 " ]
dst_stop "auto-converge" "$WORK/d2b"
exec 8>&-

# 3. Faults, one source that must survive them all.
src "$WORK/s3" "heartbeat=14 pattern=5 dirty_size=32"
alive() { # alive NAME: the source still runs its guest
	b1=$(beats "$WORK/s3")
	sleep 1
	b2=$(beats "$WORK/s3")
	r=$(ctl '{"cmd":"status"}')
	check "$1: the source keeps running (heartbeats $b1 -> $b2)" \
		sh -c "[ $b2 -gt $b1 ] && printf '%s' '$r' | grep -q '\"state\":\"running\"'"
}
dst_clean() { # dst_clean NAME OUT: the destination ended without running the guest
	i=0
	while [ ! -s "$WORK/dst.rc" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	check "$1: the destination exits non-zero and never ran the guest (rc $(cat "$WORK/dst.rc" 2>/dev/null))" \
		sh -c "[ -s '$WORK/dst.rc' ] && [ \$(cat '$WORK/dst.rc') -ne 0 ] && ! grep -q 'tiny:' '$2'"
}

rm -f "$WORK/dst.rc"
dst "$WORK/d3" --tls-cert "$WORK/dst.crt" --tls-key "$WORK/dst.key" --tls-ca "$WORK/good.crt"
migrate ",$(tls_json stranger evil)"
check "a certificate from another CA is refused ($(field "$st" error))" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"failed\"' && printf '%s' '$st' | grep -qi 'certificate\|handshake\|TLS'"
dst_clean "foreign certificate" "$WORK/d3"
alive "foreign certificate"
r=$(ctl '{"cmd":"migrate","destination":"127.0.0.1:1","thread_nice":20}')
check "a nice value out of range is refused, naming the field ($r)" says "$r" "thread_nice -20..19"

rm -f "$WORK/dst.rc"
dst "$WORK/d4"
( sleep 1.5; kill -KILL "$(cat "$WORK/dst.pid")" ) &
slow=",\"bandwidth_limit\":1048576" # 1 MiB/s: 32 MiB of pattern take 30 s
migrate "$slow,\"connections\":2"
check "the destination killed mid-way fails the migration ($(field "$st" error))" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"failed\"'"
alive "destination killed"

# Killed in stop-and-copy: the guest is paused on the source and the
# destination holds every page and the state (VMM_TEST_HOLD_READY_MS keeps
# it there, before READY) when it dies; the source must resume the guest.
rm -f "$WORK/dst.rc"
export VMM_TEST_HOLD_READY_MS=8000
dst "$WORK/d4b"
unset VMM_TEST_HOLD_READY_MS
(
	i=0
	until ctl '{"cmd":"migrate-status"}' | grep -q '"phase":"stop-and-copy"' || [ $i -ge 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.5
	kill -KILL "$(cat "$WORK/dst.pid")"
) &
killer=$!
migrate ""
wait $killer
check "the destination killed in stop-and-copy fails the migration ($(field "$st" error))" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"failed\"' && printf '%s' '$st' | grep -q 'hung up'"
alive "destination killed in stop-and-copy"

rm -f "$WORK/dst.rc"
dst "$WORK/d5"
( sleep 1.5; ctl '{"cmd":"migrate-cancel"}' >/dev/null ) &
migrate "$slow"
check "a cancel mid-way ends it as cancelled ($(field "$st" migration))" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"cancelled\"'"
dst_clean "cancel" "$WORK/d5"
alive "cancel"

rm -f "$WORK/dst.rc"
dst "$WORK/d6" --memory 256M
migrate ""
check "a destination of another size refuses before RAM moves ($(field "$st" error))" \
	sh -c "printf '%s' '$st' | grep -q 'destination refused: .*128 MiB'"
dst_clean "another size" "$WORK/d6"
alive "another size"

vmm_finish
RC=0
check "no sanitizer report in the source" sanitizer_clean "$WORK/s3"

rm -f "$WORK/dst.rc"
dst "$WORK/d7"
head -c 4096 /dev/urandom | busybox nc 127.0.0.1 $port >/dev/null 2>&1
dst_clean "garbage from the peer" "$WORK/d7"
check "garbage from the peer is named" has "$WORK/d7" "not a vmm migration source"

tap_plan
