# tests/integration/lib.sh — TAP helpers for the shell tests.  POSIX sh: the
# same scripts run under busybox inside the nested lab.
: "${VMMD_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${VMMD_BUILDDIR:=$VMMD_SRCDIR}"
: "${VMMD_CACHE:=$VMMD_SRCDIR/.cache}"
VMM="$VMMD_BUILDDIR/vmm/vmm"
TINY="$VMMD_BUILDDIR/tests/guest/tiny/tiny.elf"
GUEST_KERNEL="$VMMD_CACHE/guest/vmlinuz"
GUEST_INITRD="$VMMD_CACHE/guest/initramfs.img"
# ASan must not mistake KVM's shared mappings for leaks or abort on exit codes.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

TAP_N=0
TAP_FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}

not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $*"
}

# skip NAME: a check that cannot run here (NAME says why).
skip() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $* # SKIP"
}

diag() {
	echo "$*" | sed 's/^/# /'
}

# check NAME CONDITION...: ok when the command succeeds.
check() {
	name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# run_vmm OUT TIMEOUT ARGS...: runs vmm, stdout+stderr into $OUT.log, exit code into $RC.
run_vmm() {
	out=$1
	secs=$2
	shift 2
	timeout -s KILL "$secs" "$VMM" "$@" </dev/null >"$out" 2>&1
	RC=$?
}

has() {
	grep -q -- "$2" "$1" 2>/dev/null
}

# vmm_start OUT ARGS...: vmm in the background ($pid) with its control
# socket at $CTL_SOCK, output on OUT and serial input from a FIFO that fd 8
# holds open (write to it with >&8); waits for the socket.  vmm_finish stops
# it through the socket.  ctl REQUEST sends one control request.
CTL_SOCK=$WORK/ctl.sock
ctl() { timeout 30 "$VMMD_BUILDDIR/tests/tools/uxsend" "$CTL_SOCK" "$1" 2>&1; }
vmm_start() {
	_out=$1
	shift
	rm -f "$CTL_SOCK" "$WORK/in"
	mkfifo "$WORK/in"
	exec 8<>"$WORK/in"
	"$VMM" --control "$CTL_SOCK" "$@" <"$WORK/in" >"$_out" 2>&1 &
	pid=$!
	_i=0
	while [ ! -S "$CTL_SOCK" ] && [ $_i -lt 100 ] && kill -0 $pid 2>/dev/null; do
		sleep 0.1
		_i=$((_i + 1))
	done
}
vmm_finish() {
	ctl '{"cmd":"stop"}' >/dev/null
	wait $pid 2>/dev/null
	exec 8>&-
}

# IP2: iproute2's ip by its path; the lab's busybox sh runs its own applet
# for a bare "ip", which has no netns and no tuntap.
IP2=ip
for _p in /usr/sbin/ip /sbin/ip /usr/bin/ip /bin/ip; do
	if [ -x "$_p" ] && "$_p" -V 2>/dev/null | grep -q iproute2; then
		IP2=$_p
		break
	fi
done

# vmm_migrate DEST EXTRA-JSON SECS: starts a live migration on the vmm at
# $CTL_SOCK and waits up to SECS for it to end; $st is its last status.
vmm_migrate() {
	st=$(ctl "{\"cmd\":\"migrate\",\"destination\":\"$1\"$2}")
	_i=0
	while printf '%s' "$st" | grep -q '"migration":"active"' && [ $_i -lt $(($3 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
		st=$(ctl '{"cmd":"migrate-status"}')
	done
}

# flip_byte FILE OFFSET: changes one byte in place (corruption tests).
flip_byte() {
	_b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf %o $(((_b + 1) % 256)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# wait_for FILE PATTERN SECS: until FILE has PATTERN (true) or SECS pass (false).
wait_for() {
	_i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null && [ $_i -lt $(($3 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	grep -q -- "$2" "$1" 2>/dev/null
}

# Shows a failed run's output as TAP comments.
show() {
	diag "exit code $RC; output of: $1"
	tail -n 30 "$1" | sed 's/^/#   /'
}

# sanitizer_clean OUT: no ASan/UBSan report and no signal death.
sanitizer_clean() {
	! grep -q -E 'AddressSanitizer|runtime error:|LeakSanitizer' "$1" && [ "$RC" -lt 128 ]
}

# result NAME OUT WANT_RC PATTERN...: ok when the last run_vmm exited with
# WANT_RC, $WORK/OUT has every PATTERN and no sanitizer report.
result() {
	name=$1
	out=$WORK/$2
	want=$3
	shift 3
	good=1
	[ "$RC" -eq "$want" ] || good=0
	for p in "$@"; do has "$out" "$p" || good=0; done
	sanitizer_clean "$out" || good=0
	if [ $good -eq 1 ]; then ok "$name"; else not_ok "$name (want exit $want)"; show "$out"; fi
}

# api_wait SOCKET: waits up to 10 s for vmmd's REST API to answer there.
api_wait() {
	_i=0
	while [ $_i -lt 100 ] && ! curl -s -m 10 --unix-socket "$1" http://v/v1/version >/dev/null 2>&1; do
		sleep 0.1
		_i=$((_i + 1))
	done
}

# vmmd's REST API on the socket $S (the daemon tests):
# api VERB PATH [BODY]: body into $R, HTTP status into $CODE.
api() {
	CODE=$(curl -s -m 10 -o "$WORK/resp" -w '%{http_code}' --unix-socket "$S" -X "$1" \
		${3:+-d "$3"} "http://v$2")
	R=$(cat "$WORK/resp")
}
has_r() { printf '%s' "$R" | grep -q -- "$1"; }
# state_of VM: its state ("VM_STATE_RUNNING").
state_of() {
	api GET "/v1/vms/$1"
	printf '%s\n' "$R" | sed -n 's/.*"state":"\(VM_STATE_[A-Z]*\)".*/\1/p'
}
# wait_state VM STATE SECS: until the VM is in STATE (0) or SECS pass (1).
wait_state() {
	_i=0
	while [ $_i -lt $(($3 * 10)) ]; do
		[ "$(state_of "$1")" = "$2" ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}
# console_text VM: what its captured console kept.
console_text() {
	api GET "/v1/vms/$1/console"
	printf '%s' "$R" | sed -n 's/.*"data":"\([^"]*\)".*/\1/p' | base64 -d 2>/dev/null
}

# certs CA-NAME LEAF-NAME...: a CA and leaf certificates it signed, in $WORK.
certs() {
	ca=$1
	shift
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$ca" -keyout "$WORK/$ca.key" -out "$WORK/$ca.crt" 2>/dev/null
	for leaf in "$@"; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/CN=$leaf" -keyout "$WORK/$leaf.key" -out "$WORK/$leaf.csr" 2>/dev/null
		openssl x509 -req -in "$WORK/$leaf.csr" -CA "$WORK/$ca.crt" -CAkey "$WORK/$ca.key" \
			-CAcreateserial -days 2 -out "$WORK/$leaf.crt" 2>/dev/null
	done
}
# The daemon tests: operations and consoles through the REST API.
op_id() { printf '%s' "$R" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p'; }
# wait_op ID SECS: until the operation is no longer running; it is in $R.
wait_op() {
	_i=0
	while [ $_i -lt $(($2 * 10)) ]; do
		api GET "/v1/operations/$1"
		has_r OPERATION_STATE_RUNNING || return 0
		sleep 0.1
		_i=$((_i + 1))
	done
}
# wait_console VM PATTERN SECS: the VM's console output into $WORK/VM.con.
wait_console() {
	_i=0
	while [ $_i -lt $(($3 * 10)) ]; do
		console_text "$1" >"$WORK/$1.con"
		grep -q -- "$2" "$WORK/$1.con" && return 0
		sleep 0.2
		_i=$((_i + 2))
	done
	return 1
}
beats() { grep -c "tiny: heartbeat" "$1"; }
# The lines of a console log that are whole: the last may be half printed.
whole() { if [ -n "$(tail -c 1 "$1")" ]; then sed '$d' "$1"; else cat "$1"; fi; }
# A heartbeat's number: a line cut where a snapshot or migration paused the
# guest mid-number ("tiny: heartbeat " then vmm's log line) names none, and
# is skipped rather than read as an empty number.
last_beat() { whole "$1" | sed -n 's/.*tiny: heartbeat \([0-9][0-9]*\).*/\1/p' | tail -n 1; }
first_beat() { whole "$1" | sed -n 's/.*tiny: heartbeat \([0-9][0-9]*\).*/\1/p' | head -n 1; }
# disk_rw_setup IMG: a 64 MiB image holding the host's 1 MiB pattern, for
# the disk back-end tests; sets host_md5, guest_md5 and DISK_RW, a guest
# command that prints the disk's size and the md5 of what it reads, writes
# its own 4 MiB at 8 MiB, syncs and reads that back past its page cache.
disk_rw_setup() {
	truncate -s 64M "$1"
	yes vmmd-host-pattern | head -c 1048576 | dd of="$1" conv=notrunc 2>/dev/null
	host_md5=$(yes vmmd-host-pattern | head -c 1048576 | md5sum | cut -d' ' -f1)
	guest_md5=$(yes vmmd-guest-pattern | head -c 4194304 | md5sum | cut -d' ' -f1)
	DISK_RW='echo VMMD-DISK $(cat /sys/block/vda/size);
echo VMMD-HOST-MD5 $(head -c 1048576 /dev/vda | md5sum | cut -d" " -f1);
yes vmmd-guest-pattern | head -c 4194304 | dd of=/dev/vda bs=1M seek=8 iflag=fullblock 2>/dev/null;
sync; echo 3 > /proc/sys/vm/drop_caches;
echo VMMD-GUEST-MD5 $(dd if=/dev/vda bs=1M skip=8 count=4 2>/dev/null | md5sum | cut -d" " -f1)'
}
tap_plan() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# --- slirp with a Linux guest (virtio-net.sh, paravisor-net.sh) ---
# slirp_www PORT: a host HTTP server on 127.0.0.1:PORT (the guest's
# 10.0.2.2:PORT) serving "VMMD-HOST-PAGE <pid>"; its pid in $httpd.
slirp_www() {
	mkdir -p "$WORK/www"
	echo "VMMD-HOST-PAGE $$" >"$WORK/www/index.html"
	busybox httpd -f -p "127.0.0.1:$1" -h "$WORK/www" &
	httpd=$!
}
# resolv_wrapper: $WORK/vmm-resolv RESOLV_CONF CMD ARGS... runs CMD in a
# mount namespace of its own whose /etc/resolv.conf is RESOLV_CONF, so a
# test can choose the name server slirp forwards 10.0.2.3's queries to
# without touching the host's file (the lab's L1 has none to bind over: an
# empty one is made there).
resolv_wrapper() {
	[ -e /etc/resolv.conf ] || : >/etc/resolv.conf
	cat >"$WORK/vmm-resolv" <<'EOF_RESOLV'
#!/bin/sh
exec unshare -m sh -c 'mount --make-rprivate / 2>/dev/null; mount -o bind "$1" /etc/resolv.conf &&
	shift && exec "$@"' sh "$@"
EOF_RESOLV
	chmod +x "$WORK/vmm-resolv"
}
# slirp_dns_start: tests/tools/dnsreply ($dnsd) answers $DNSNAME with
# $DNSADDR on 127.0.0.77 (port 53 of 127.0.0.1 may be the host's own
# resolver's), which $WORK/resolv.conf names; $DNS_GUEST is the guest's
# query through slirp's 10.0.2.3 (slirp_guest's MORE).
slirp_dns_start() {
	resolv_wrapper
	DNSNAME=vmmd-dns.test DNSADDR=192.0.2.53
	echo "nameserver 127.0.0.77" >"$WORK/resolv.conf"
	"$VMMD_BUILDDIR/tests/tools/dnsreply" 127.0.0.77 53 "$DNSNAME" "$DNSADDR" >"$WORK/dns" 2>&1 &
	dnsd=$!
	DNS_GUEST="nslookup $DNSNAME 10.0.2.3 2>&1 | sed 's/^/DNS /'"
}
# slirp_dns_check OUT WHAT: the guest logging to OUT got $DNSADDR for
# $DNSNAME, and dnsreply was asked.
slirp_dns_check() {
	if grep -q "^DNS Address: *$DNSADDR" "$1" && grep -q "^dnsreply: $DNSNAME type 1 " "$WORK/dns"; then
		ok "$2 resolves $DNSNAME through slirp's 10.0.2.3 (asking the host's name server)"
	else
		not_ok "$2 resolves $DNSNAME through slirp's 10.0.2.3"
		grep '^DNS' "$1" | sed 's/^/#   /'
		sed 's/^/#   dnsreply: /' "$WORK/dns"
	fi
}
# slirp_guest HTTPPORT [MORE]: the guest's script: DHCP, print the lease
# ("VMMD-LEASE IP router R dns D"), run the commands MORE, fetch the host
# page ("GOT ..."), then say VMMD-LISTENING and serve one line on 8080
# until a host client has it.
slirp_guest() {
	dhcp_script='#!/bin/sh
case $1 in
bound|renew)
	ifconfig $interface $ip netmask ${subnet:-255.255.255.0}
	for r in $router; do route add default gw $r dev $interface; break; done
	echo "VMMD-LEASE $ip router $router dns $dns" ;;
esac'
	printf '%s' "printf '%s\n' '$dhcp_script' >/tmp/dhcp.sh; chmod +x /tmp/dhcp.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 5 -s /tmp/dhcp.sh || echo VMMD-DHCP-FAILED
ip -4 addr show eth0 | grep inet
${2:-}
timeout 20 wget -q -O - http://10.0.2.2:$1/index.html | sed 's/^/GOT /'
echo 'VMMD-GUEST-SERVER hello' >/tmp/reply
echo VMMD-LISTENING
nc -l -p 8080 </tmp/reply >/tmp/req && echo VMMD-SERVED
cat /tmp/req"
}
# slirp_listening OUT: waits (up to 5 min) until the guest logging to OUT
# listens or has exited.
slirp_listening() {
	i=0
	while ! has "$1" "VMMD-LISTENING" && ! has "$1" "VMMD-GUEST-EXIT" && [ $i -lt 600 ]; do
		sleep 0.5
		i=$((i + 1))
	done
}
# slirp_client OUT PORT: a host client through hostfwd 127.0.0.1:PORT sends
# "VMMD-HOST-CLIENT hi"; the guest's answer in $got.
slirp_client() {
	got=
	i=0
	while [ -z "$got" ] && [ $i -lt 20 ] && ! has "$1" "VMMD-GUEST-EXIT"; do
		sleep 1
		got=$(echo "VMMD-HOST-CLIENT hi" | timeout 10 busybox nc 127.0.0.1 "$2" 2>/dev/null)
		i=$((i + 1))
	done
}

# expect_refused NAME PATTERN ARGS...: vmm refuses to start: exit 2 and
# PATTERN on its single error line, no sanitizer report.
expect_refused() {
	name=$1
	pat=$2
	shift 2
	run_vmm "$WORK/out" 20 "$@"
	lines=$(grep -c . "$WORK/out")
	if [ "$RC" -eq 2 ] && has "$WORK/out" "$pat" && [ "$lines" -eq 1 ] &&
		sanitizer_clean "$WORK/out"; then
		ok "$name"
	else
		not_ok "$name"
		show "$WORK/out"
	fi
}
