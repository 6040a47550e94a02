#!/bin/sh
# Live migration of a Linux guest whose disk is served by the paravisor (on a
# real KVM: natively or inside the nested lab), twice in a row: A -> B -> C,
# three vmm processes on this host, each with its own paravisor on the same
# image.  The guest reads half of its disk into its page cache over and
# over, the other half each pass (drop_caches, read, then two reads from the
# cache), so the paravisor keeps writing guest RAM that KVM's dirty log
# cannot see, and since the freed pages are reused for the other half, a
# page sent before the paravisor rewrote it holds the wrong half at the
# destination; only vhost-user's dirty log (LOG_SHMFD) tells the migration
# to resend those pages.  A bandwidth limit stretches pre-copy over several
# passes, so the pass that spans the hop filled its page cache during
# pre-copy.  Every sum of a pass must be its half's on every host: a stale
# page cache page shows as a wrong sum from the cache, a stale used ring as
# a guest whose reads hang.  The passes carry on at each destination from
# the source's last, the boot_id stays, and each paravisor reports the log.
# The guest also has a slirp NIC served by the paravisor: each destination
# starts its own netstack, which takes the source's libslirp state, and a
# host client reaches the guest's TCP server through the destination's
# hostfwd.
# init_on_alloc=0: Debian's kernel zeroes every page it allocates, so the
# vCPU would write each page cache page just before the paravisor fills it,
# and KVM's dirty log alone would resend nearly all of them.  (Checked in
# the lab with a throwaway vmm whose vhost_log__fetch dropped the log: at
# both hops the pass that spanned it read a wrong sum from the cache.)
# Each host's paravisor runs as a uid of its own (--paravisor-uid).
. "$(dirname "$0")/lib.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
says() { printf '%s' "$1" | grep -q -- "$2"; }
field() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
passes() { grep -c "VMMD-PASS" "$1"; }
pv_pid() { sed -n 's/.*served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$1" | head -n 1; }
# uid_is FILE UID: the paravisor named in FILE runs as UID (real, effective, saved)
uid_is() { grep -q "^Uid:	$2	$2	$2" "/proc/$(pv_pid "$1")/status"; }
last_pass() { sed -n 's/.*VMMD-PASS \([0-9]*\) .*/\1/p' "$1" | tail -n 1; }
first_pass() { sed -n 's/.*VMMD-PASS \([0-9]*\) .*/\1/p' "$1" | head -n 1; }
# PASS lines (VMMD-PASS N HALF SUM SUM SUM BOOT_ID) with a sum not their half's
bad_passes() {
	tr -d '\r' <"$1" | sed -n 's/.*\(VMMD-PASS .*\)/\1/p' | awk -v s0="$sum0" -v s4="$sum4" \
		'{ w = $3 == 0 ? s0 : s4; for (f = 4; f <= 6; f++) if ($f != w) { print; next } }' |
		head -n 3
}
port=47600

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ] || [ ! -x "$PARAVISOR" ]; then
	not_ok "the Linux guest and paravisor/paravisor exist (tests/guest/linux/build; make)"
	tap_plan
	exit 1
fi

img=$WORK/disk.img
head -c 8388608 /dev/urandom >"$img"
sum=$(md5sum <"$img" | cut -d' ' -f1)
sum0=$(head -c 4194304 "$img" | md5sum | cut -d' ' -f1)
sum4=$(tail -c 4194304 "$img" | md5sum | cut -d' ' -f1)
machine="--memory 256M --stop-timeout 0 --disk path=$img,backend=paravisor,id=data"
# net PORT: the slirp NIC, served by the paravisor, its hostfwd on PORT
# (each "host" here is this one, so each takes a port of its own).
net() { echo "slirp,hostfwd=tcp:127.0.0.1:$1-:23,backend=paravisor"; }
# served PORT: what the guest's TCP server says to a client on the host
# through the hostfwd on PORT.
served() { timeout 10 busybox nc 127.0.0.1 "$1" </dev/null 2>/dev/null | tr -d '\r'; }
g='(while :; do echo "SER""VED $(cat /proc/sys/kernel/random/boot_id)" | nc -l -p 23; done) &
echo "VMMD-BOOTID $(cat /proc/sys/kernel/random/boot_id)"; echo VMMD-READY; i=0;
while [ $i -lt 2000 ]; do h=$((i % 2 * 4)); echo 3 >/proc/sys/vm/drop_caches;
a=$(dd if=/dev/vda bs=1M skip=$h count=4 2>/dev/null | md5sum); sleep 0.3;
b=$(dd if=/dev/vda bs=1M skip=$h count=4 2>/dev/null | md5sum); sleep 0.3;
c=$(dd if=/dev/vda bs=1M skip=$h count=4 2>/dev/null | md5sum);
echo "VMMD-PASS $i $h ${a%% *} ${b%% *} ${c%% *} $(cat /proc/sys/kernel/random/boot_id)"; i=$((i + 1)); done'

# dst NAME UID: vmm --incoming with its own control socket, serial in $WORK/NAME.
dst() {
	port=$((port + 1))
	# shellcheck disable=SC2086
	"$VMM" $machine --net "$(net $((port + 100)))" --paravisor-uid "$2" \
		--incoming "127.0.0.1:$port" --control "$WORK/$1.sock" \
		</dev/null >"$WORK/$1" 2>&1 &
	echo $! >"$WORK/$1.pid"
	wait_for "$WORK/$1" "waiting for a migration" 20
}

# hop FROM TO UID: migrates the guest at $CTL_SOCK (console FROM) to TO,
# whose paravisor runs as UID.
hop() {
	_from=$1 _to=$2
	wait_for "$WORK/$_from" "VMMD-PASS" 120
	dst "$_to" "$3"
	check "$_to's paravisor runs as uid $3 (pid $(pv_pid "$WORK/$_to"))" uid_is "$WORK/$_to" "$3"
	before=$(last_pass "$WORK/$_from")
	# 4 MiB/s: ~100 MB of RAM take ~25 s of pre-copy, several passes.
	vmm_migrate "127.0.0.1:$port" ',"connections":2,"bandwidth_limit":4194304' 180
	check "$_from -> $_to: the migration completes ($(field "$st" migration), $(field "$st" rounds) rounds, $(field "$st" downtime_ms) ms down, $(field "$st" bytes) bytes${st:+})" \
		says "$st" '"migration":"completed"'
	case $(field "$st" error) in "" | null) ;; *) diag "$_from -> $_to: $(field "$st" error)" ;; esac
	# The passes go on at the destination from the source's last one (the
	# source is paused now), three of them at least.
	wait_for "$WORK/$_to" "VMMD-PASS" 120
	first=$(first_pass "$WORK/$_to") last=$(last_pass "$WORK/$_from")
	wait_for "$WORK/$_to" "VMMD-PASS $((${first:-0} + 3)) " 120
	check "$_from -> $_to: the guest's passes carry on at $_to (${before:-?} at the start, ${last:-none} last at $_from, ${first:-none} first at $_to, $(passes "$WORK/$_to") there)" \
		sh -c "[ -n '$first' ] && [ '$first' -eq $((${last:-0} + 1)) ] && grep -q 'VMMD-PASS $((${first:-0} + 3)) ' '$WORK/$_to'"
	bad=$(bad_passes "$WORK/$_to")
	check "$_from -> $_to: every pass at $_to read its half's sum three times (from disk, then from the page cache)" \
		[ -z "$bad" ]
	[ -n "$bad" ] && diag "$_to: $bad (want $sum0 / $sum4)"
	check "$_from -> $_to: the same boot (boot_id $bootid)" \
		sh -c "! grep VMMD-PASS '$WORK/$_to' | grep -qv ' $bootid'"
	# The NIC moved too: $_to's own netstack took libslirp's state from
	# $_from's, and a host client reaches the guest's server through $_to's
	# hostfwd.
	got=$(served $((port + 100)))
	check "$_from -> $_to: $_to's netstack loaded $_from's slirp state; a client through $_to's hostfwd reaches the guest (${got:-nothing})" \
		sh -c "grep -q 'netstack: info: NIC \"net0\": netstack: slirp state saved' '$WORK/$_from' &&
		grep -q 'netstack: info: NIC \"net0\": netstack: slirp state loaded' '$WORK/$_to' &&
		[ '$got' = 'SERVED $bootid' ]"
	RC=0
	result "$_from -> $_to: the source's paravisor logged what it wrote" "$_from" 0 \
		"paravisor: info: data: dirty log of [0-9]* KiB from the front-end" \
		"paravisor: info: data: dirty logging on"
	# The source is left migrated (paused); stopping it ends it with exit 5.
	ctl '{"cmd":"stop"}' >/dev/null
}

# --- A: the source, booted here.
vmm_start "$WORK/a" $machine --net "$(net $((port + 100)))" --paravisor-uid 4242 \
	--kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--cmdline "console=ttyS0 panic=-1 quiet init_on_alloc=0 vmmd.dhcp=1 vmmd.run64=$(b64 "$g")"
a_pid=$pid
wait_for "$WORK/a" "VMMD-PASS 2 " 300
bootid=$(sed -n 's/.*VMMD-BOOTID \([^ ]*\).*/\1/p' "$WORK/a" | tr -d '\r' | head -n 1)
bad=$(bad_passes "$WORK/a")
check "at A, the guest's passes read their half's sum ($sum0 / $sum4) each time" \
	sh -c "[ -n '$bootid' ] && grep -q 'VMMD-PASS 2 ' '$WORK/a' && [ -z '$bad' ]"
[ -n "$bad" ] && diag "a: $bad (want $sum0 / $sum4)"

check "A's paravisor runs as uid 4242 (pid $(pv_pid "$WORK/a"))" uid_is "$WORK/a" 4242
got=$(served $((port + 100)))
check "at A, the guest has its lease and a client through A's hostfwd reaches it (${got:-nothing})" \
	sh -c "grep -q 'guest: eth0 lease' '$WORK/a' && [ '$got' = 'SERVED $bootid' ]"
hop a b 4243
wait $a_pid 2>/dev/null
rc=$?
check "A, migrated away, exits 5 when stopped (got $rc)" [ "$rc" -eq 5 ]
CTL_SOCK=$WORK/b.sock
hop b c 4244
CTL_SOCK=$WORK/c.sock
r=$(ctl '{"cmd":"status"}')
check "C runs the guest and answers ($r)" says "$r" '"ok":true'
ctl '{"cmd":"stop"}' >/dev/null
wait "$(cat "$WORK/c.pid")" 2>/dev/null
sleep 1
check "no paravisor is left" sh -c "! cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -q 'paravisor --f[d]'"
check "the image is unchanged (the guest only read it)" [ "$(md5sum <"$img" | cut -d' ' -f1)" = "$sum" ]
RC=0
for f in a b c; do check "$f: no sanitizer report" sanitizer_clean "$WORK/$f"; done
tap_plan
