#!/bin/sh
# virtio-net served by a paravisor (on a real KVM: natively or inside the
# nested lab): `--net slirp,...,backend=paravisor` puts the NIC's model in a
# sandboxed paravisor process and its slirp stack in a netstack process
# (`paravisor --netstack`) that vmm started, joined by a socket.  Bad
# options are refused with one line naming the NIC; the tiny guest's DHCP
# DISCOVER gets slirp's answer; servicing and restarts replace the NIC's
# paravisor while the netstack runs on, listening on the hostfwd port; a
# dead netstack is reported; a Linux guest gets its lease, fetches a page
# from a host server through 10.0.2.2 (guest to host), and a host client
# reaches a guest server through hostfwd (host to guest), which the
# netstack, not vmm or the NIC's paravisor, listens on, and the guest's
# DNS query to 10.0.2.3 is answered by the host's name server.  A snapshot
# and a live migration carry libslirp's state from the netstack to the
# restored or destination VM's own netstack.  A tap NIC (`--net
# tap=NAME,backend=paravisor`): vmm opens the tap and hands it to each
# paravisor, which alone holds it after servicing and restarts; a Linux
# guest on it reaches the host while its paravisor is serviced.
. "$(dirname "$0")/lib.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
CMDLINE_BASE="console=ttyS0 panic=-1 quiet"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
pv_pid() { sed -n 's/.*served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$1" | head -n 1; }
ns_pid() { sed -n 's/.*its slirp runs in the netstack .*, pid \([0-9]*\).*/\1/p' "$1" | head -n 1; }
# fetch_loop URL: guest script that fetches the host's page 40 times, 0.2 s
# apart, each VMMD-FETCH-OK N or VMMD-FETCH-FAIL N.
fetch_loop() {
	cat <<EOF_LOOP
i=0
while [ \$i -lt 40 ]; do
	if timeout 10 wget -q -O - $1 | grep -q VMMD-HOST-PAGE; then
		echo VMMD-FETCH-OK \$i
	else
		echo VMMD-FETCH-FAIL \$i
	fi
	sleep 0.2
	i=\$((i + 1))
done
EOF_LOOP
}
# Listening TCP sockets of process $1 on port $2 (hex in /proc/net/tcp).
listens() {
	port=$(printf '%04X' "$2")
	inodes=$(for f in "/proc/$1/fd/"*; do readlink "$f"; done 2>/dev/null |
		sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
	for i in $inodes; do
		awk -v p=":$port" -v i="$i" '$2 ~ p"$" && $4 == "0A" && $10 == i { f = 1 } END { exit !f }' \
			/proc/net/tcp && return 0
	done
	return 1
}
HOSTPORT=${VMMD_PVNET_HOSTPORT:-18090}
HTTPPORT=${VMMD_PVNET_HTTPPORT:-8010}

if [ ! -x "$PARAVISOR" ] || [ ! -r "$TINY" ]; then
	not_ok "paravisor/paravisor and the tiny guest exist (make)"
	tap_plan
	exit 1
fi

# --- 1. Bad options: one line naming the NIC (and the key), exit 2.
busybox nc -l -p "$HOSTPORT" >/dev/null 2>&1 &
holder=$!
sleep 0.5
for t in "slirp,backend=qemu|(net0): backend=qemu: expected vmm or paravisor" \
	"tap=vmmdtap9,backend=paravisor,hostfwd=tcp::1-:2|(net0): hostfwd=tcp::1-:2: only for slirp" \
	"tap=vmmdtap9,restart=off|(net0): restart=off: only for backend=paravisor" \
	"slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:80,backend=paravisor|cannot listen on 127.0.0.1:$HOSTPORT"; do
	opt=${t%%|*}
	want=${t#*|}
	run_vmm "$WORK/bad" 60 --kernel "$TINY" --cmdline "virtio=net" --net "$opt"
	if [ "$RC" -eq 2 ] && has "$WORK/bad" "$want" && has "$WORK/bad" "net0" &&
		sanitizer_clean "$WORK/bad"; then
		ok "--net $opt is refused naming the NIC ($want), exit 2"
	else
		not_ok "--net $opt is refused naming the NIC ($want), exit 2"
		show "$WORK/bad"
	fi
done
kill $holder 2>/dev/null
wait $holder 2>/dev/null
run_vmm "$WORK/bad" 60 --kernel "$TINY" --cmdline "virtio=net" --paravisor /nonexistent/paravisor \
	--net "slirp,backend=paravisor"
result "a missing paravisor binary is refused naming the NIC" bad 2 \
	'NIC "net0": cannot start the paravisor: --paravisor /nonexistent/paravisor'

# --- 2. The tiny guest: one DHCP DISCOVER, slirp (in the paravisor) answers.
run_vmm "$WORK/tiny" 120 --kernel "$TINY" --cmdline "virtio=net" \
	--net "slirp,backend=paravisor,mac=52:54:00:ab:cd:ef"
result "tiny guest: DHCP DISCOVER out, slirp's OFFER back through the paravisor" tiny 0 \
	"tiny: virtio-net mac 52:54:00:ab:cd:ef" \
	"tiny: virtio-net sent 590 bytes, received [1-9][0-9]* bytes" \
	"tiny: virtio-net rx from 52:55:0a:00:02:02 type 0x0800 udp 67->68" \
	'NIC "net0": served by the paravisor' "paravisor: info: net0: queue 1 started" \
	"paravisor: info: sandbox entered: seccomp allow-list" \
	"paravisor: info: exiting: every front-end gone" \
	'NIC "net0": its slirp runs in the netstack .* --netstack, pid' \
	"netstack: info: sandbox entered: seccomp allow-list" \
	"netstack: info: NIC \"net0\": netstack: every NIC end closed; exiting"
pv=$(pv_pid "$WORK/tiny")
ns=$(ns_pid "$WORK/tiny")
check "no paravisor or netstack process is left after vmm exits" \
	sh -c "[ -n '$pv' ] && [ -n '$ns' ] && ! kill -0 '$pv' 2>/dev/null && ! kill -0 '$ns' 2>/dev/null"

# --- 3. One paravisor process serves the VM's disk and NIC; servicing
# replaces it (and rolls every device back when the new one fails on one);
# the NIC's netstack (its slirp, its hostfwd socket) runs on.  A killed
# paravisor is restarted with both devices; so is a killed netstack (or,
# with restart=off, it is reported and the NIC cut off).
resolv_wrapper
# Here a resolv.conf of 50 100-byte lines: the netstack's copy keeps the
# first 40 (4000 bytes), never a line cut at 4096.
i=0
while [ $i -lt 50 ]; do
	printf 'nameserver 127.0.0.%-3d # %074d\n' $((i % 200 + 1)) $i
	i=$((i + 1))
done >"$WORK/big-resolv.conf"
truncate -s 1M "$WORK/d.img"
printf '#!/bin/sh\nexec "%s" "%s" "%s" "$@"\n' "$WORK/vmm-resolv" "$WORK/big-resolv.conf" "$VMM" \
	>"$WORK/vmm-big"
chmod +x "$WORK/vmm-big"
real_vmm=$VMM
VMM=$WORK/vmm-big
vmm_start "$WORK/svc" --kernel "$TINY" --cmdline "heartbeat=5" \
	--disk "path=$WORK/d.img,backend=paravisor" \
	--net "slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:80,backend=paravisor"
VMM=$real_vmm
sleep 3
nic_pv=$(sed -n 's/.*NIC "net0": served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$WORK/svc")
disk_pv=$(pv_pid "$WORK/svc")
ns=$(ns_pid "$WORK/svc")
# One paravisor per VM: the disk's and the NIC's are one process, given
# both devices (each on its own socket, the disk image and the netstack's
# socket after them).
pv_args=$(tr '\0' ' ' <"/proc/$nic_pv/cmdline" 2>/dev/null)
check "one paravisor process (pid $nic_pv) serves the VM's disk and NIC: $pv_args" sh -c \
	"[ -n '$nic_pv' ] && [ '$disk_pv' = '$nic_pv' ] &&
	printf '%s' '$pv_args' | grep -q -- '--fd 3 --disk fd=4,.*id=disk0 --fd 5 --net socket,fd=6,.*id=net0'"
head -n 40 "$WORK/big-resolv.conf" >"$WORK/resolv-40"
check "the netstack's root holds the host's resolv.conf cut to whole lines (4000 of 5000 bytes)" \
	sh -c "cmp '/proc/$ns/root/etc/resolv.conf' '$WORK/resolv-40' &&
		grep -q 'resolv.conf is over 4096 bytes; slirp.s DNS sees its first 4000' '$WORK/svc'"
r=$(ctl '{"cmd":"service"}')
nic_new=$(printf '%s' "$r" | sed -n 's/.*{"id":"net0"[^}]*"new_pid":\([0-9]*\).*/\1/p')
if printf '%s' "$r" | grep -q '"ok":true,.*"devices":\[{"id":"disk0",.*},{"id":"net0",' &&
	[ -n "$nic_new" ] && [ "$nic_new" != "$nic_pv" ] && kill -0 "$nic_new" &&
	! kill -0 "$nic_pv" 2>/dev/null && kill -0 "$ns" && listens "$ns" "$HOSTPORT"; then
	ok "service replaces the disk's and the NIC's paravisor ($nic_pv -> $nic_new); the netstack (pid $ns) runs on, listening"
else
	not_ok "service replaces the disk's and the NIC's paravisor; the netstack runs on (got $r)"
	show "$WORK/svc"
fi
check "the new NIC paravisor loaded the old one's device state" grep -q \
	'net0: pid [0-9]* loaded device state format 1 from paravisor (state format 1): rx [0-9]* frames' \
	"$WORK/svc"
disk_new=$(printf '%s' "$r" | sed -n 's/.*{"id":"disk0"[^}]*"new_pid":\([0-9]*\).*/\1/p')
check "the servicing moved the disk and the NIC to one new process ($disk_new, $nic_new)" \
	sh -c "[ -n '$disk_new' ] && [ '$disk_new' = '$nic_new' ]"
# A new paravisor that takes the disk but refuses the NIC's state: the disk,
# already moved, goes back to the running process with the NIC, the new
# process goes, and both devices serve on from the old one.
printf '#!/bin/sh\nexec "%s" --test-fail-restore-id net0 "$@"\n' "$VMMD_BUILDDIR/paravisor/paravisor" \
	>"$WORK/pv-fail-nic"
chmod +x "$WORK/pv-fail-nic"
r=$(ctl "{\"cmd\":\"service\",\"paravisor\":\"$WORK/pv-fail-nic\"}")
sleep 0.5
st=$(ctl '{"cmd":"paravisor-status"}')
on_old=$(printf '%s' "$st" | grep -o "\"pid\":$nic_new," | wc -l)
left=$(pgrep -f -- "$WORK/pv-fail-nic" | wc -l)
check "a new paravisor refusing the NIC's state: the disk moves back, both serve on from pid $nic_new ($r)" \
	sh -c "printf '%s' '$r' | grep -q '\"ok\":false' && printf '%s' '$r' | grep -q '\"rolled_back\":true' &&
	printf '%s' '$r' | grep -q 'NIC net0: the new paravisor .* did not take over: .*test-fail-restore.*; disk disk0 moved back; rolled back to the running paravisor (pid $nic_new)' &&
	grep -q 'disk \"disk0\": back on the running paravisor' '$WORK/svc' &&
	[ '$on_old' -eq 2 ] && kill -0 '$nic_new' && [ '$left' -eq 0 ]"
# A copy of the binary, so that the restart below can show it starts the
# one the last servicing installed.
cp "$VMMD_BUILDDIR/paravisor/paravisor" "$WORK/paravisor-copy"
r=$(ctl "{\"cmd\":\"service\",\"paravisor\":\"$WORK/paravisor-copy\"}")
check "after the rollback a servicing succeeds again ($r)" sh -c \
	"printf '%s' '$r' | grep -q '\"ok\":true,.*{\"id\":\"net0\",[^}]*\"old_pid\":$nic_new,'"
nic_new=$(printf '%s' "$r" | sed -n 's/.*{"id":"net0"[^}]*"new_pid":\([0-9]*\).*/\1/p')
kill -KILL "$nic_new" 2>/dev/null
wait_for "$WORK/svc" 'NIC "net0": its paravisor (pid [0-9]*) killed by signal 9 (Killed); restarted it' 10
st=$(ctl '{"cmd":"paravisor-status"}')
check "a killed NIC paravisor is restarted, the netstack runs on ($st)" sh -c \
	"printf '%s' '$st' | grep -q '\"nics\":\[{\"id\":\"net0\",\"pid\":[0-9]*,\"restart\":true,\"restarts\":1,.*\"netstack_pid\":$ns,'"
d_pid=$(printf '%s' "$st" | sed -n 's/.*"disks":\[{"id":"disk0","pid":\([0-9]*\),.*/\1/p')
n_pid=$(printf '%s' "$st" | sed -n 's/.*"nics":\[{"id":"net0","pid":\([0-9]*\),.*/\1/p')
exe=$(readlink "/proc/$n_pid/exe" 2>/dev/null)
check "the one paravisor's death restarts the disk too, both in one new process ($d_pid, $n_pid) of the binary servicing installed ($exe)" \
	sh -c "[ -n '$d_pid' ] && [ '$d_pid' = '$n_pid' ] && [ '$d_pid' != '$nic_new' ] && kill -0 '$d_pid' &&
	[ '$exe' = '$WORK/paravisor-copy' ] &&
	grep -q 'disk \"disk0\": its paravisor (pid $nic_new) killed by signal 9 (Killed); restarted it' '$WORK/svc'"
# A killed netstack (restart=on, the default) is started again with the
# same --net, and the VM's paravisor moves to a new process (a servicing)
# that is handed the socket to it: the hostfwd port is listened on again,
# by the new netstack.  Its NAT connections died with the old one.
kill -KILL "$ns"
wait_for "$WORK/svc" 'NIC "net0": its netstack (pid [0-9]*) killed by signal 9 (Killed); restarted it' 10
st=$(ctl '{"cmd":"paravisor-status"}')
ns2=$(printf '%s' "$st" | sed -n 's/.*"netstack_pid":\([0-9]*\),.*/\1/p')
pv3=$(printf '%s' "$st" | sed -n 's/.*"nics":\[{"id":"net0","pid":\([0-9]*\),.*/\1/p')
ns2_listens=no
[ -n "$ns2" ] && listens "$ns2" "$HOSTPORT" && ns2_listens=yes
check "a killed netstack is restarted (pid $ns -> ${ns2:-none}), listening on the hostfwd port again: $ns2_listens ($st)" \
	sh -c "printf '%s' '$st' | grep -q '\"netstack_died\":\"\",\"netstack_restarts\":1,\"netstack_last_death\":\"(pid $ns) killed by signal 9 (Killed)\"' &&
	[ -n '$ns2' ] && [ '$ns2' != '$ns' ] && kill -0 '$ns2' && [ $ns2_listens = yes ]"
check "and the NIC's paravisor was moved to a new process (${pv3:-none}, was $n_pid) with its socket, the disk with it" \
	sh -c "[ -n '$pv3' ] && [ '$pv3' != '$n_pid' ] && kill -0 '$pv3' && ! kill -0 '$n_pid' 2>/dev/null &&
	grep -q 'NIC \"net0\": serviced: paravisor .*, pid $n_pid -> $pv3' '$WORK/svc' &&
	grep -q 'disk \"disk0\": serviced: paravisor .*, pid $n_pid -> $pv3' '$WORK/svc'"
vmm_finish
check "vmm stops cleanly with its paravisors and netstack, no sanitizer report" \
	sh -c "! kill -0 '$pv3' 2>/dev/null && ! kill -0 '$ns2' 2>/dev/null &&
	! grep -qE 'AddressSanitizer|runtime error:' '$WORK/svc'"

# restart=off: a killed netstack is reported and the NIC is cut off; the
# VM runs on.
vmm_start "$WORK/ns-off" --kernel "$TINY" --cmdline "heartbeat=5" \
	--net "slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:80,backend=paravisor,restart=off"
sleep 2
ns=$(ns_pid "$WORK/ns-off")
kill -KILL "$ns"
wait_for "$WORK/ns-off" 'NIC "net0": its netstack (pid [0-9]*) killed by signal 9 (Killed); the NIC is cut off' 10
st=$(ctl '{"cmd":"paravisor-status"}')
check "restart=off: a killed netstack is reported, not restarted, vmm runs on ($st)" sh -c \
	"printf '%s' '$st' | grep -q '\"netstack_pid\":-1,\"netstack_died\":\"(pid $ns) killed by signal 9 (Killed)\",\"netstack_restarts\":0' &&
	kill -0 $pid"
vmm_finish

# More than 5 deaths within 60 s: the sixth is not restarted, the NIC is
# cut off.
vmm_start "$WORK/ns-burst" --kernel "$TINY" --cmdline "heartbeat=5" \
	--net "slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:80,backend=paravisor"
sleep 2
n=0
while [ $n -lt 6 ]; do
	ns=$(ctl '{"cmd":"paravisor-status"}' | sed -n 's/.*"netstack_pid":\([0-9]*\),.*/\1/p')
	[ -n "$ns" ] && kill -KILL "$ns"
	n=$((n + 1))
	wait_for "$WORK/ns-burst" "its netstack (pid $ns) killed by signal 9 (Killed); \(restarted\|not restarted\)" 10
done
st=$(ctl '{"cmd":"paravisor-status"}')
check "a netstack killed 6 times within 60 s is restarted 5 times, then the NIC is cut off ($st)" \
	sh -c "[ \$(grep -c 'its netstack (pid [0-9]*) killed by signal 9 (Killed); restarted it' '$WORK/ns-burst') -eq 5 ] &&
	grep -q 'its netstack (pid $ns) killed by signal 9 (Killed); not restarted: it died 6 times within 60 s' '$WORK/ns-burst' &&
	printf '%s' '$st' | grep -q '\"netstack_pid\":-1,\"netstack_died\":\"(pid $ns) killed by signal 9 (Killed)\",\"netstack_restarts\":5' &&
	kill -0 $pid"
vmm_finish

# --- 3a. A snapshot and a live migration of a VM whose disk and slirp NIC
# the paravisor serves: the source's netstack hands libslirp's state (the
# tiny guest's DHCP lease among it) over its control socket into the NIC's
# saved state; a copy restore and the migration's destination each start
# a paravisor and a netstack of their own (their own hostfwd ports, both
# "hosts" being this one) and load it there; the heartbeat carries on.
truncate -s 1M "$WORK/m.img"
MIGPORT=${VMMD_PVNET_MIGPORT:-47690}
mig_args="--memory 64M --stop-timeout 0 --disk path=$WORK/m.img,backend=paravisor"
mig_net() { echo "slirp,hostfwd=tcp:127.0.0.1:$1-:80,backend=paravisor,mac=52:54:00:ab:cd:02"; }
# mig_to SRC DST PORT: migrates the VM at $CTL_SOCK (serial in $WORK/SRC) to
# the vmm --incoming on PORT (serial in $WORK/DST); $st is the migration's
# end, $before the source's last heartbeat, $after the destination's a
# second after its first.
mig_to() {
	vmm_migrate "127.0.0.1:$3" '' 60
	before=$(last_beat "$WORK/$1")
	wait_for "$WORK/$2" "tiny: heartbeat" 20
	sleep 1
	after=$(last_beat "$WORK/$2")
}
# shellcheck disable=SC2086
"$VMM" $mig_args --net "$(mig_net $((HOSTPORT + 1)))" --incoming "127.0.0.1:$MIGPORT" \
	</dev/null >"$WORK/mig-dst" 2>&1 &
mig_dst=$!
wait_for "$WORK/mig-dst" "waiting for a migration" 20
# shellcheck disable=SC2086
vmm_start "$WORK/mig-src" $mig_args --net "$(mig_net "$HOSTPORT")" --kernel "$TINY" \
	--cmdline "virtio=net heartbeat=5"
wait_for "$WORK/mig-src" "tiny: virtio-net rx from 52:55:0a:00:02:02 type 0x0800 udp 67->68" 30
wait_for "$WORK/mig-src" "tiny: heartbeat" 30
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$WORK/mig-snap\"}")
check "snapshot: the NIC's libslirp state comes from its netstack ($r)" sh -c \
	"printf '%s' '$r' | grep -q '\"ok\":true' &&
	grep -q 'netstack: info: NIC \"net0\": netstack: slirp state saved ([1-9][0-9]* bytes)' '$WORK/mig-src'"
mig_to mig-src mig-dst "$MIGPORT"
dns=$(ns_pid "$WORK/mig-dst")
dns_listens=no
[ -n "$dns" ] && listens "$dns" $((HOSTPORT + 1)) && dns_listens=yes
check "migrate: completes, the heartbeat goes on at the destination (${before:-none} -> ${after:-none}) ($st)" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"' &&
	[ -n '$after' ] && [ '$after' -gt '${before:-0}' ] && ! grep -q 'tiny: virtio-net mac' '$WORK/mig-dst'"
check "migrate: the destination's netstack (pid ${dns:-none}) loaded the source's slirp state and listens on its hostfwd port ($dns_listens)" \
	sh -c "grep -q 'netstack: info: NIC \"net0\": netstack: slirp state loaded ([1-9][0-9]* bytes)' '$WORK/mig-dst' &&
	[ $dns_listens = yes ] && grep -q 'paravisor: info: net0: queue 1 started' '$WORK/mig-dst'"
vmm_finish
kill -TERM "$mig_dst" 2>/dev/null
wait "$mig_dst" 2>/dev/null
# shellcheck disable=SC2086
vmm_start "$WORK/mig-rest" $mig_args --net "$(mig_net $((HOSTPORT + 2)))" \
	--restore "$WORK/mig-snap"
wait_for "$WORK/mig-rest" "tiny: heartbeat" 20
check "a copy restore of the snapshot loads the slirp state into its own netstack; the heartbeat goes on" \
	sh -c "grep -q 'netstack: info: NIC \"net0\": netstack: slirp state loaded ([1-9][0-9]* bytes)' '$WORK/mig-rest' &&
	grep -q 'tiny: heartbeat' '$WORK/mig-rest' && ! grep -q 'tiny: virtio-net mac' '$WORK/mig-rest'"
vmm_finish
RC=0
for f in mig-src mig-dst mig-rest; do
	check "$f: no sanitizer report, no sandbox kill" sh -c \
		"! grep -qE 'AddressSanitizer|runtime error:|signal 31|Bad system call' '$WORK/$f'"
done

# --- 3b. A tap NIC served by the paravisor: vmm opens the tap and hands it
# to each paravisor (the first, the serviced one, the restarted one), which
# alone reads and writes it, and a live migration hands the guest to a vmm
# on another tap.  The tap is made beforehand and up, so that the tiny
# guest's one DISCOVER (sent at once) finds it so.
TAPIF=vmmdpvtap0
pv_holds_tap() {
	for f in "/proc/$1/fd/"*; do [ "$(readlink "$f")" = /dev/net/tun ] && return 0; done 2>/dev/null
	return 1
}
# mktap NAME: a tap with a vnet header, up (iproute2's ip: busybox's, the
# lab's bare "ip", has no tuntap).
mktap() {
	"$IP2" link del "$1" 2>/dev/null
	"$IP2" tuntap add dev "$1" mode tap vnet_hdr 2>/dev/null && "$IP2" link set "$1" up
}
if { [ -e /dev/net/tun ] || modprobe tun 2>/dev/null; } && mktap "$TAPIF" && mktap "${TAPIF}m"; then
	rx0=$(cat "/sys/class/net/$TAPIF/statistics/rx_packets")
	vmm_start "$WORK/tap" --kernel "$TINY" --cmdline "virtio=net heartbeat=5" \
		--net "tap=$TAPIF,backend=paravisor,mac=52:54:00:ab:cd:01"
	wait_for "$WORK/tap" "tiny: virtio-net sent" 20
	rx1=$(cat "/sys/class/net/$TAPIF/statistics/rx_packets")
	tpv=$(pv_pid "$WORK/tap")
	targs=$(tr '\0' ' ' <"/proc/$tpv/cmdline" 2>/dev/null)
	if has "$WORK/tap" "tiny: virtio-net sent 590 bytes" && [ "$rx1" -gt "$rx0" ] &&
		has "$WORK/tap" "net0: tap $TAPIF, served by the paravisor" &&
		has "$WORK/tap" 'paravisor: info: NIC "net0": the tap on descriptor 4' &&
		printf '%s' "$targs" | grep -q -- "--fd 3 --net tap,fd=4,mac=52:54:00:ab:cd:01,id=net0" &&
		pv_holds_tap "$tpv"; then
		ok "tap: the paravisor (pid $tpv) holds the tap; the guest's DISCOVER reaches $TAPIF (rx_packets $rx0 -> $rx1)"
	else
		not_ok "tap: the paravisor holds the tap; the guest's DISCOVER reaches $TAPIF (rx_packets $rx0 -> $rx1, args $targs)"
		show "$WORK/tap"
	fi
	r=$(ctl '{"cmd":"service"}')
	tnew=$(printf '%s' "$r" | sed -n 's/.*{"id":"net0"[^}]*"new_pid":\([0-9]*\).*/\1/p')
	sleep 0.5
	if printf '%s' "$r" | grep -q '"ok":true' && [ -n "$tnew" ] && [ "$tnew" != "$tpv" ] &&
		pv_holds_tap "$tnew" && ! kill -0 "$tpv" 2>/dev/null &&
		grep -q 'net0: pid [0-9]* loaded device state format 1 from paravisor' "$WORK/tap"; then
		ok "tap: service moves the NIC, rings running, to pid $tnew, which holds the tap; pid $tpv is gone"
	else
		not_ok "tap: service moves the NIC to a new paravisor holding the tap (got $r)"
		show "$WORK/tap"
	fi
	kill -KILL "$tnew" 2>/dev/null
	wait_for "$WORK/tap" 'NIC "net0": its paravisor (pid [0-9]*) killed by signal 9 (Killed); restarted it' 10
	st=$(ctl '{"cmd":"paravisor-status"}')
	trs=$(printf '%s' "$st" | sed -n 's/.*"nics":\[{"id":"net0","pid":\([0-9]*\),.*/\1/p')
	check "tap: a killed paravisor is restarted (restart=on), the new one (pid $trs) holds the tap ($st)" \
		sh -c "[ -n '$trs' ] && [ '$trs' != '$tnew' ] && kill -0 '$trs' &&
		printf '%s' '$st' | grep -q '\"restart\":true,\"restarts\":1' &&
		for f in /proc/$trs/fd/*; do [ \"\$(readlink \"\$f\")\" = /dev/net/tun ] && exit 0; done; exit 1"
	# A live migration: the destination's vmm opens its own tap (another
	# one here, both "hosts" being this one) and hands it to its paravisor.
	"$VMM" --stop-timeout 0 --net "tap=${TAPIF}m,backend=paravisor,mac=52:54:00:ab:cd:01" \
		--incoming "127.0.0.1:$((MIGPORT + 1))" </dev/null >"$WORK/tap-dst" 2>&1 &
	tap_dst=$!
	wait_for "$WORK/tap-dst" "waiting for a migration" 20
	mig_to tap tap-dst $((MIGPORT + 1))
	dpv=$(pv_pid "$WORK/tap-dst")
	dtap=no
	[ -n "$dpv" ] && pv_holds_tap "$dpv" && dtap=yes
	check "tap: migrate completes, the heartbeat goes on at the destination (${before:-none} -> ${after:-none}), whose paravisor (pid ${dpv:-none}) holds its tap: $dtap ($st)" \
		sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"' &&
		[ -n '$after' ] && [ '$after' -gt '${before:-0}' ] && ! grep -q 'tiny: virtio-net mac' '$WORK/tap-dst' &&
		[ $dtap = yes ]"
	kill -TERM "$tap_dst" 2>/dev/null
	wait "$tap_dst" 2>/dev/null
	vmm_finish
	check "tap: vmm stops cleanly with its paravisor, no sandbox kill, no sanitizer report" \
		sh -c "! kill -0 '$trs' 2>/dev/null && ! grep -qE 'AddressSanitizer|runtime error:|signal 31|Bad system call' '$WORK/tap' '$WORK/tap-dst'"
	"$IP2" link del "$TAPIF" 2>/dev/null
	"$IP2" link del "${TAPIF}m" 2>/dev/null
else
	skip "tap: no /dev/net/tun or cannot make $TAPIF"
fi

# --- 4. Linux: DHCP, TCP both ways, DNS.
if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ]; then
	not_ok "Linux guest artifacts exist (run tests/guest/linux/build)"
	tap_plan
	exit 1
fi
slirp_www "$HTTPPORT"
# DNS: the guest asks slirp's 10.0.2.3, which the netstack forwards to the
# name server in the host's /etc/resolv.conf: here dnsreply's.
slirp_dns_start
guest=$(slirp_guest "$HTTPPORT" "$DNS_GUEST")
"$WORK/vmm-resolv" "$WORK/resolv.conf" "$VMM" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$guest")" \
	--net "slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:8080,backend=paravisor" </dev/null \
	>"$WORK/linux" 2>&1 &
vmm=$!
slirp_listening "$WORK/linux"
pv=$(pv_pid "$WORK/linux")
ns=$(ns_pid "$WORK/linux")
ns_listens=no
pv_listens=no
vmm_listens=no
[ -n "$ns" ] && listens "$ns" "$HOSTPORT" && ns_listens=yes
[ -n "$pv" ] && listens "$pv" "$HOSTPORT" && pv_listens=yes
listens "$vmm" "$HOSTPORT" && vmm_listens=yes
slirp_client "$WORK/linux" "$HOSTPORT"
i=0
while kill -0 $vmm 2>/dev/null && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
kill -KILL $vmm 2>/dev/null
wait $vmm
RC=$?
kill $httpd $dnsd 2>/dev/null
diag "guest address: $(sed -n 's/.*VMMD-LEASE //p' "$WORK/linux" | head -n1)"
result "Linux: the guest gets 10.0.2.15 by DHCP from the paravisor's slirp" linux 0 \
	"VMMD-LEASE 10.0.2.15 router 10.0.2.2" 'NIC "net0": served by the paravisor' \
	"paravisor: info: sandbox entered: seccomp allow-list"
result "Linux: the guest fetches a page from the host's HTTP server (guest to host TCP)" linux 0 \
	"GOT VMMD-HOST-PAGE $$"
slirp_dns_check "$WORK/linux" "Linux: the guest (its NIC in the paravisor)"
if [ "$got" = "VMMD-GUEST-SERVER hello" ] && has "$WORK/linux" "VMMD-HOST-CLIENT hi"; then
	ok "Linux: a host client and the guest's server talk both ways through hostfwd 127.0.0.1:$HOSTPORT"
else
	not_ok "Linux: a host client and the guest's server talk both ways through hostfwd (got '$got')"
	show "$WORK/linux"
fi
check "the netstack (pid $ns), not vmm or the NIC's paravisor (pid $pv), listens on the hostfwd port" \
	[ "$ns_listens/$pv_listens/$vmm_listens" = yes/no/no ]
check "no paravisor or netstack process is left after vmm exits" \
	sh -c "[ -n '$pv' ] && [ -n '$ns' ] && ! kill -0 '$pv' 2>/dev/null && ! kill -0 '$ns' 2>/dev/null"
if grep -q "killed by signal\|SIGSYS\|Bad system call" "$WORK/linux"; then
	not_ok "neither the paravisor nor the netstack was killed by its sandbox"
	grep -E "killed|SIGSYS" "$WORK/linux" | sed 's/^/#   /'
	# The kernel logs the call seccomp killed it for (type=1326, syscall=N).
	dmesg 2>/dev/null | grep "type=1326" | tail -n 5 | sed 's/^/#   /'
else
	ok "neither the paravisor nor the netstack was killed by its sandbox"
fi

# --- 4b. Linux: its netstack killed while the guest keeps fetching from the
# host.  vmm starts a new netstack and a new paravisor for it (restart=on,
# the default): the fetches fail for a moment and work again, and a host
# client reaches the guest's server through the new netstack's hostfwd.
slirp_www "$HTTPPORT"
more="timeout 20 wget -q -O - http://10.0.2.2:$HTTPPORT/index.html | sed 's/^/FIRST /'
echo VMMD-KILL-NOW
$(fetch_loop "http://10.0.2.2:$HTTPPORT/index.html")"
guest=$(slirp_guest "$HTTPPORT" "$more")
vmm_start "$WORK/linuxns" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$guest")" \
	--net "slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:8080,backend=paravisor"
wait_for "$WORK/linuxns" "VMMD-KILL-NOW" 300
ns=$(ns_pid "$WORK/linuxns")
sleep 1
[ -n "$ns" ] && kill -KILL "$ns"
wait_for "$WORK/linuxns" 'NIC "net0": its netstack (pid [0-9]*) killed by signal 9 (Killed); restarted it' 20
slirp_listening "$WORK/linuxns"
slirp_client "$WORK/linuxns" "$HOSTPORT"
wait_for "$WORK/linuxns" "VMMD-SERVED\|VMMD-GUEST-EXIT" 30
fetch_ok=$(grep -c "VMMD-FETCH-OK" "$WORK/linuxns")
last=$(grep "VMMD-FETCH-" "$WORK/linuxns" | tail -n 1)
RC=0
vmm_finish
kill $httpd 2>/dev/null
result "Linux: its netstack (pid $ns) killed after a first fetch is restarted" linuxns 0 \
	"FIRST VMMD-HOST-PAGE $$" "restarted it (pid [0-9]*, restart 1) and the NIC's paravisor with it"
check "Linux: the guest's fetches work again through the new netstack ($fetch_ok of 40 ok, the last: $last)" \
	sh -c "[ -n '$ns' ] && grep -q 'its netstack (pid $ns) killed by signal 9 (Killed); restarted it' '$WORK/linuxns' &&
	printf '%s' '$last' | grep -q 'VMMD-FETCH-OK 39' && grep -q 'GOT VMMD-HOST-PAGE $$' '$WORK/linuxns'"
check "Linux: a host client reaches the guest's server through the new netstack's hostfwd (got '$got')" \
	[ "$got" = "VMMD-GUEST-SERVER hello" ]

# --- 5. Linux on a tap NIC served by the paravisor, static addresses (the
# host side 192.168.77.1, as virtio-net.sh's tap): the guest pings the host
# and fetches its page, then keeps fetching while the NIC's paravisor is
# serviced three times, and still reaches the host afterwards.
TAPIF=vmmdpvtap1
if [ -e /dev/net/tun ] || modprobe tun 2>/dev/null; then
	guest="ip link set eth0 up; ip addr add 192.168.77.2/24 dev eth0
sleep 2
ping -c 3 -W 5 192.168.77.1 | grep -E 'packets|bytes from' | head -n 2
timeout 20 wget -q -O - http://192.168.77.1:$HTTPPORT/index.html | sed 's/^/GOT /'
echo VMMD-SERVICE-NOW
$(fetch_loop "http://192.168.77.1:$HTTPPORT/index.html")
ping -c 2 -W 5 192.168.77.1 | grep 'bytes from' | sed 's/^/AFTER /'
timeout 20 wget -q -O - http://192.168.77.1:$HTTPPORT/index.html | sed 's/^/AFTER-GOT /'"
	vmm_start "$WORK/linuxtap" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
		--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$guest")" \
		--net "tap=$TAPIF,backend=paravisor"
	i=0
	while ! ip link show "$TAPIF" >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	ip addr add 192.168.77.1/24 dev "$TAPIF"
	ip link set "$TAPIF" up
	busybox httpd -f -p "192.168.77.1:$HTTPPORT" -h "$WORK/www" &
	httpd=$!
	wait_for "$WORK/linuxtap" "VMMD-SERVICE-NOW" 300
	svc_ok=0
	for n in 1 2 3; do
		sleep 1
		r=$(ctl '{"cmd":"service"}')
		diag "service $n: $r"
		printf '%s' "$r" | grep -q '"ok":true,.*{"id":"net0",.*"new_pid"' && svc_ok=$((svc_ok + 1))
	done
	tpv=$(ctl '{"cmd":"paravisor-status"}' | sed -n 's/.*"nics":\[{"id":"net0","pid":\([0-9]*\),.*/\1/p')
	wait_for "$WORK/linuxtap" "AFTER-GOT\|VMMD-GUEST-EXIT" 120
	fetch_ok=$(grep -c "VMMD-FETCH-OK" "$WORK/linuxtap")
	fetch_fail=$(grep -c "VMMD-FETCH-FAIL" "$WORK/linuxtap")
	RC=0
	vmm_finish
	kill $httpd 2>/dev/null
	result "Linux on a paravisor tap NIC: the guest pings the host" linuxtap 0 \
		"bytes from 192.168.77.1" "net0: tap $TAPIF, served by the paravisor" \
		'paravisor: info: NIC "net0": the tap on descriptor 4'
	result "Linux on a paravisor tap NIC: the guest fetches a page from the host" linuxtap 0 \
		"GOT VMMD-HOST-PAGE $$"
	check "Linux on a paravisor tap NIC: 3 servicings while the guest fetches ($fetch_ok fetches ok, $fetch_fail failed)" \
		sh -c "[ '$svc_ok' -eq 3 ] && [ '$fetch_ok' -ge 38 ]"
	result "Linux on a paravisor tap NIC: after the servicings the guest still pings and fetches (paravisor pid $tpv)" \
		linuxtap 0 "AFTER 64 bytes from 192.168.77.1" "AFTER-GOT VMMD-HOST-PAGE $$"
	if grep -q "signal 31\|Bad system call" "$WORK/linuxtap"; then
		not_ok "Linux on a paravisor tap NIC: no paravisor was killed by its sandbox"
		dmesg 2>/dev/null | grep "type=1326" | tail -n 5 | sed 's/^/#   /'
	else
		ok "Linux on a paravisor tap NIC: no paravisor was killed by its sandbox"
	fi
else
	skip "Linux on a paravisor tap NIC: no /dev/net/tun"
fi

tap_plan
