#!/bin/sh
# Live servicing of the paravisor (on a real KVM: natively or inside the
# nested lab).  A Linux guest on a `backend=paravisor` disk runs a write /
# read-back / compare loop with O_DIRECT (so every pass reaches the
# paravisor), and echoes a TCP stream from a host client through slirp
# hostfwd on a `backend=paravisor` NIC, while vmm's control command
# {"cmd":"service"} replaces the VM's one paravisor process (disk and NIC)
# 20 times in a row: every reply is ok with a new pid, the same for both
# devices, and a blackout each, the NIC's netstack (its
# slirp) stays the same process, the guest's loop sees no I/O error and
# keeps counting, the TCP connection stays open and every line comes back
# in order, its boot_id does not change and its uptime goes on, and after
# poweroff the image holds what the guest wrote last.  Then servicings that must fail: a binary that exits at
# once, one that rejects its options, one that starts but serves another
# disk (a different config space): each is refused with the reason and
# rolled back, the old paravisor (same pid) serves on and the guest's I/O
# goes on; so is one that takes the disk but refuses the NIC's state (the
# disk moves back, rings and state, to the running paravisor).  Then version skew: servicings between two builds whose device
# state formats differ (paravisor, paravisor-next) carry the state both
# ways; a state written for newer readers and a build that fails to load
# any state are refused with the reason and rolled back.  A VM without a
# paravisor disk is refused with a clear error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/disk_loop.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
CMDLINE_BASE="console=ttyS0 panic=-1 quiet"
SERVICES=20
says() { printf '%s' "$1" | grep -q -- "$2"; }
pv_pid() { sed -n 's/.*served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$1" | head -n 1; }
# dev_num REPLY DEVICE KEY: a number of one device in a service reply.
dev_num() { printf '%s' "$1" | sed -n "s/.*{\"id\":\"$2\"[^}]*\"$3\":\([0-9]*\).*/\1/p"; }
num() { dev_num "$1" data "$2"; }
netstack_pid() { ctl '{"cmd":"paravisor-status"}' | sed -n 's/.*"netstack_pid":\([0-9]*\).*/\1/p'; }
HOSTPORT=${VMMD_PVSVC_HOSTPORT:-18091}
HOSTPORT2=${VMMD_PVSVC_HOSTPORT2:-18092}
# A new host connection through the second hostfwd port: 1 when the
# guest's hello server answered (retried: between two of its connections
# nothing listens for a moment).
hello() {
	for _ in 1 2 3 4 5; do
		h=$(timeout 10 busybox nc 127.0.0.1 "$HOSTPORT2" </dev/null 2>/dev/null | grep -c VMMD-HELLO)
		[ "$h" = 1 ] && break
		sleep 0.5
	done
	echo "${h:-0}"
}
# The guest's side of the TCP stream: DHCP from the netstack's slirp, then
# an echo server on 8080 (nc's output fed back into its input), announced
# once the port listens (/proc/net/tcp or tcp6: port 8080 in state 0A): the
# host's client connects once, and a connection that slirp carries to a
# port nobody listens on yet is refused, ending the stream before it began
# (seen once in a clean-clone run).
net_script() {
	printf '%s\n' '#!/bin/sh
printf "%s\n" "#!/bin/sh" "[ \$1 = bound ] || exit 0" "ifconfig \$interface \$ip netmask 255.255.255.0" "echo VMMD-LEASE \$ip" >/tmp/dhcp.sh
chmod +x /tmp/dhcp.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 5 -s /tmp/dhcp.sh || echo VMMD-DHCP-FAILED
mkfifo /tmp/echo
nc -l -p 8080 </tmp/echo | cat >/tmp/echo &
(while :; do echo VMMD-HELLO | nc -l -p 8081 >/dev/null; done) &
i=0
while ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":1F90 0*:0000 0A" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
echo VMMD-ECHO-LISTENING
wait
echo VMMD-ECHO-END'
}
# The host's side: a line "TCPSEQ i" every 0.1 s until $WORK/tcpstop, then
# the count sent in $WORK/tcpsent; what came back in $WORK/tcpecho.
tcp_stream_start() {
	(
		i=0
		while [ ! -e "$WORK/tcpstop" ]; do
			echo "TCPSEQ $i"
			i=$((i + 1))
			sleep 0.1
		done
		echo "$i" >"$WORK/tcpsent"
		sleep 3
	) | busybox nc 127.0.0.1 "$HOSTPORT" >"$WORK/tcpecho" 2>&1 &
	tcp_nc=$!
}
# Every line came back, in order, none twice: 0 .. sent-1.
tcp_stream_intact() {
	[ -s "$WORK/tcpsent" ] || return 1
	awk -v n="$(cat "$WORK/tcpsent")" '$1 != "TCPSEQ" || $2 != i { bad = 1 } { i++ } END { exit bad || i != n }' "$WORK/tcpecho"
}
type_in() { printf '%s\n' "$1" >&8; }
# The last value after KEY: a number or boot_id only (vmm's log lines share
# the output and can land right after a console line's value).
field() { sed -n "s/.*$2 \([0-9a-f-]*\).*/\1/p" "$1" | tr -d '\r' | tail -n 1; }
loops() { grep -c "LOOPOK" "$WORK/run"; }

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ] || [ ! -x "$PARAVISOR" ]; then
	not_ok "the Linux guest and paravisor/paravisor exist (tests/guest/linux/build; make)"
	tap_plan
	exit 1
fi

# --- 1. A VM without a paravisor disk: nothing to service.
vmm_start "$WORK/plain" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 128M \
	--cmdline "$CMDLINE_BASE"
r=$(ctl '{"cmd":"service"}')
check "service of a VM without paravisor disks is refused with the reason" \
	says "$r" '"error":"no device of this VM is served by a paravisor","rolled_back":false'
diag "no paravisor: $r"
vmm_finish

# --- 2. A guest writing and verifying its disk while the paravisor is replaced.
img=$WORK/disk.img
truncate -s 16M "$img"
vmm_start "$WORK/run" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--stop-timeout 0 --cmdline "$CMDLINE_BASE" --disk "path=$img,backend=paravisor,id=data" \
	--net "slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:8080,hostfwd=tcp:127.0.0.1:$HOSTPORT2-:8081,backend=paravisor"
wait_for "$WORK/run" "VMMD-GUEST-READY" 300
sleep 1
type_in 'echo "BOOT""ID $(cat /proc/sys/kernel/random/boot_id) UP""TIME $(cut -d. -f1 /proc/uptime)"'
type_in "echo $(net_script | base64 | tr -d '\n') | base64 -d >/tmp/net.sh; sh /tmp/net.sh &"
wait_for "$WORK/run" "VMMD-ECHO-LISTENING" 120
tcp_stream_start
wait_for "$WORK/tcpecho" "TCPSEQ 3" 60
ns=$(netstack_pid)
check "a host client's TCP stream comes back through hostfwd from the guest (netstack pid ${ns:-?})" \
	sh -c "[ -n '$ns' ] && grep -q 'TCPSEQ 3' '$WORK/tcpecho' && grep -q 'VMMD-LEASE 10.0.2.15' '$WORK/run'"
disk_loop_start
wait_for "$WORK/run" "LOOPOK 3" 120
boot_id=$(field "$WORK/run" BOOTID)
uptime0=$(field "$WORK/run" UPTIME)
pv=$(pv_pid "$WORK/run")
nic_prev=$(sed -n 's/.*NIC "net0": served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$WORK/run" | head -n 1)
check "the guest's write/verify loop runs on the paravisor's disk (pid ${pv:-?})" \
	sh -c "[ -n '$pv' ] && kill -0 '$pv' && grep -q 'LOOPOK 3' '$WORK/run'"
check "one paravisor process serves the disk and the NIC (pid ${pv:-?}, ${nic_prev:-?})" \
	[ -n "$pv" -a "$pv" = "$nic_prev" ]

before=$(loops)
prev=$pv
good=0
pids=" $pv "
blackouts=""
n=0
while [ $n -lt $SERVICES ]; do
	n=$((n + 1))
	r=$(ctl '{"cmd":"service"}')
	new=$(num "$r" new_pid)
	old=$(num "$r" old_pid)
	us=$(num "$r" blackout_us)
	nic_new=$(dev_num "$r" net0 new_pid)
	nic_old=$(dev_num "$r" net0 old_pid)
	if says "$r" '^{"ok":true,"paravisor":"[^"]*","duration_ms":[0-9]*,"devices":\[{"id":"data","blackout_ms":[0-9]*' &&
		[ "$old" = "$prev" ] && [ -n "$new" ] && ! says "$pids" " $new " &&
		kill -0 "$new" 2>/dev/null && ! kill -0 "$old" 2>/dev/null &&
		[ "$nic_old" = "$nic_prev" ] && [ "$nic_new" = "$new" ] && ! says "$pids" " $nic_new " &&
		kill -0 "$nic_new" 2>/dev/null && ! kill -0 "$nic_old" 2>/dev/null; then
		good=$((good + 1))
	else
		diag "service $n: unexpected: $r"
		if ! kill -0 "$pid" 2>/dev/null; then
			not_ok "vmm is gone after $n servicings"
			RC=gone
			show "$WORK/run"
			grep -E "error|Sanitizer|panic|BUG|virtio_net|net0" "$WORK/run" | tail -n 40 | sed 's/^/#   /'
			break
		fi
	fi
	pids="$pids$new $nic_new "
	prev=$new
	nic_prev=$nic_new
	blackouts="$blackouts$us
"
	diag "service $n: disk pid $old -> $new, blackout $us us; NIC pid $nic_old -> $nic_new, blackout $(dev_num "$r" net0 blackout_us) us"
	# Let the guest do some I/O on each new paravisor.
	sleep 0.3
done
check "$SERVICES servicings in a row: each ok, one new pid for the disk and the NIC, the old one gone ($good/$SERVICES)" \
	[ "$good" -eq "$SERVICES" ]
check "the NIC's netstack is the same process throughout (pid ${ns:-?})" \
	sh -c "[ -n '$ns' ] && [ '$(netstack_pid)' = '$ns' ] && kill -0 '$ns'"
n0=$(grep -c TCPSEQ "$WORK/tcpecho")
sleep 2
check "the TCP stream through hostfwd is still open and flowing ($n0 then $(grep -c TCPSEQ "$WORK/tcpecho") lines back)" \
	sh -c "kill -0 $tcp_nc && [ $(grep -c TCPSEQ "$WORK/tcpecho") -gt $n0 ]"
sorted=$(printf '%s' "$blackouts" | grep . | sort -n)
cnt=$(printf '%s\n' "$sorted" | grep -c .)
bmin=$(printf '%s\n' "$sorted" | head -n 1)
bmed=$(printf '%s\n' "$sorted" | sed -n "$(((cnt + 1) / 2))p")
bmax=$(printf '%s\n' "$sorted" | tail -n 1)
diag "blackout over $cnt servicings: min $bmin us, median $bmed us, max $bmax us"
wait_for "$WORK/run" "LOOPOK $(($(field "$WORK/run" LOOPOK) + 3))" 60
after=$(loops)
check "the guest's loop kept counting through the servicings ($before then $after passes)" \
	[ "$after" -gt "$before" ]
pv=$prev

# --- 3. Servicings that fail roll back to the running paravisor.
rollback() { # NAME PATH WANT-IN-ERROR [DEVICE]
	b=$(loops)
	r=$(ctl "{\"cmd\":\"service\",\"paravisor\":\"$2\",\"timeout_ms\":5000}")
	diag "$1: $r"
	check "$1: refused with the reason, rolled back to pid $pv" sh -c \
		"printf '%s' '$r' | grep -q '^{\"ok\":false,\"error\":\"${4:-disk data}: .*$3.*; rolled back to the running paravisor (pid $pv)\",\"rolled_back\":true}'"
	wait_for "$WORK/run" "LOOPOK $(($(field "$WORK/run" LOOPOK) + 2))" 60
	check "$1: the old paravisor serves on, the guest's I/O goes on ($b then $(loops) passes)" \
		sh -c "kill -0 $pv && [ $(loops) -gt $b ]"
}
rollback "a binary that exits at once" /bin/false "/bin/false (pid [0-9]*) did not start: it exited with status 1"
badopt=$WORK/pv-badopt
printf '#!/bin/sh\nexec %s --no-such-option "$@"\n' "$PARAVISOR" >"$badopt"
chmod +x "$badopt"
rollback "a paravisor that rejects its options" "$badopt" "did not start: it exited with status"
other=$WORK/other.img
truncate -s 8M "$other"
otherdisk=$WORK/pv-otherdisk
# Starts and negotiates, but serves an 8 MiB disk: not what the guest sees
# (its own command line, with the disk's option swapped).
cat >"$otherdisk" <<EOF
#!/bin/sh
prev=
for a do
	shift
	[ "\$prev" = --disk ] && a=path=$other,id=data
	set -- "\$@" "\$a"
	prev=\$a
done
exec $PARAVISOR "\$@"
EOF
chmod +x "$otherdisk"
rollback "a paravisor that starts but serves another disk" "$otherdisk" \
	"did not take over: the new back-end presents a different config space"

# --- 4. Version skew: the device state goes N -> N+1 -> N+1 -> N -> N+1 -> N
# (paravisor and paravisor-next, whose state formats differ by a field),
# each build loading what the other saved, under the guest's I/O.  The
# counters travel along (requests never go back); the field only the next
# build knows ("servicings") survives N+1 -> N+1 and is gone after N.
NEXT="$VMMD_BUILDDIR/paravisor/paravisor-next"
reqs=0
skew() { # NAME BINARY PATTERN-OF-THE-NEW-PID'S-LOAD-LINE
	r=$(ctl "{\"cmd\":\"service\",\"paravisor\":\"$2\"}")
	new=$(num "$r" new_pid)
	line=$(grep "data: pid ${new:-none} loaded device state" "$WORK/run" | tr -d '\r' | tail -n 1)
	req=$(printf '%s' "$line" | sed -n 's/.*requests \([0-9]*\),.*/\1/p')
	diag "$1: $r"
	diag "$1: ${line#*info: }"
	check "$1: serviced (pid $pv -> ${new:-?}), the state loaded (requests ${req:-?} >= $reqs)" \
		sh -c "printf '%s' '$r' | grep -q '^{\"ok\":true' &&
			printf '%s' '$line' | grep -q -- '$3' && [ '${req:-0}' -ge '$reqs' ] &&
			[ '${req:-0}' -gt 0 ]"
	[ -z "$new" ] || pv=$new
	reqs=${req:-$reqs}
	sleep 0.5
}
skew "N -> N+1" "$NEXT" \
	"format 1 from paravisor (state format 1): .*, errors 0, 1 queue(s); servicings 1 (none in the state)\$"
skew "N+1 -> N+1" "$NEXT" \
	"format 2 from paravisor-next (state format 2): .*; servicings 2 (carried in the state)\$"
skew "N+1 -> N" "$PARAVISOR" \
	"format 2 from paravisor-next (state format 2): .*, errors 0, 1 queue(s)\$"
skew "N -> N+1 again" "$NEXT" \
	"format 1 from paravisor (state format 1): .*; servicings 1 (none in the state)\$"
skew "N+1 -> N again" "$PARAVISOR" "format 2 from paravisor-next (state format 2): "
wait_for "$WORK/run" "LOOPOK $(($(field "$WORK/run" LOOPOK) + 2))" 60

# --- 5. A device state the new paravisor does not load: rolled back.
toonew=$WORK/pv-too-new
# Only the disk's first saved state claims it.
printf '#!/bin/sh\nexec %s --test-state-too-new-id data "$@"\n' "$PARAVISOR" >"$toonew"
chmod +x "$toonew"
skew "to a build whose first saved state claims a newer reader" "$toonew" "format 1 from paravisor "
rollback "a state written for newer readers only" "$PARAVISOR" \
	"did not take over: the new back-end did not load the device state: the state was written for newer readers"
check "the new paravisor's log says which versions" grep -q \
	"device state refused: state format 1 from paravisor (state format 1) needs a reader of format 99 or later; this build reads up to format 1" \
	"$WORK/run"
failrestore=$WORK/pv-fail-restore
printf '#!/bin/sh\nexec %s --test-fail-restore "$@"\n' "$NEXT" >"$failrestore"
chmod +x "$failrestore"
rollback "a paravisor that fails to restore" "$failrestore" \
	"did not take over: the new back-end did not load the device state: the test hook --test-fail-restore refused it"
skew "servicing after the refused states" "$PARAVISOR" "format 1 from paravisor (state format 1): "
# One paravisor for the VM: the disk moves to the new one first, then the
# NIC's state is refused, and the disk (its ring running under the guest's
# loop) moves back to the running paravisor with its state.
failnic=$WORK/pv-fail-nic
printf '#!/bin/sh\nexec %s --test-fail-restore-id net0 "$@"\n' "$NEXT" >"$failnic"
chmod +x "$failnic"
rollback "a paravisor that takes the disk but refuses the NIC's state" "$failnic" \
	"did not take over: the new back-end did not load the device state: the test hook --test-fail-restore refused it; disk data moved back" \
	"NIC net0"
check "the disk went back to the running paravisor with its rings" \
	grep -q 'disk "data": back on the running paravisor (blackout [0-9]* us)' "$WORK/run"

# --- 6. The NIC's netstack serviced too ("netstack":true): a new one takes
# the hostfwd ports and new connections, the old one keeps the TCP stream
# to its end (its frames through the new one), then exits.  First one
# whose paravisor refuses the NIC's state: both roll back.
h=$(hello)
check "a new host connection through the second hostfwd port reaches the guest" [ "$h" = 1 ]
r=$(ctl "{\"cmd\":\"service\",\"netstack\":true,\"paravisor\":\"$failnic\",\"timeout_ms\":5000}")
diag "netstack servicing that fails: $r"
h=$(hello)
check "a netstack servicing whose paravisor refuses the NIC's state is rolled back; the netstack (pid $ns) serves on, its hostfwd ports listen again" \
	sh -c "printf '%s' '$r' | grep -q '^{\"ok\":false,\"error\":\"NIC net0: .*; rolled back to the running paravisor (pid [0-9]*)\",\"rolled_back\":true}' &&
		[ '$(netstack_pid)' = '$ns' ] && kill -0 $ns && [ '$h' = 1 ] &&
		grep -q 'the running netstack (pid $ns) serves on, hostfwd ports included' '$WORK/run'"
n0=$(grep -c TCPSEQ "$WORK/tcpecho")
r=$(ctl "{\"cmd\":\"service\",\"netstack\":true,\"paravisor\":\"$NEXT\"}")
diag "netstack servicing: $r"
nsold=$(dev_num "$r" net0 netstack_old_pid)
nsnew=$(dev_num "$r" net0 netstack_new_pid)
check "serviced with its netstack: pid ${nsold:-?} -> ${nsnew:-?}, the new one paravisor-next, the old one still running (draining)" \
	sh -c "printf '%s' '$r' | grep -q '^{\"ok\":true' && [ '$nsold' = '$ns' ] && [ -n '$nsnew' ] &&
		[ '$nsnew' != '$ns' ] && kill -0 '$nsnew' && kill -0 '$ns' &&
		tr '\0' ' ' </proc/$nsnew/cmdline | grep -q 'paravisor-next --netstack'"
st=$(ctl '{"cmd":"paravisor-status"}')
check "paravisor-status names the new netstack and the one draining" \
	sh -c "printf '%s' '$st' | grep -q '\"netstack_pid\":$nsnew' && printf '%s' '$st' | grep -q '\"netstack_draining\":\[$ns\]'"
h=$(hello)
check "a new host connection through hostfwd reaches the guest through the new netstack" [ "$h" = 1 ]
wait_for "$WORK/tcpecho" "TCPSEQ $((n0 + 20))" 30
grep -E 'netstack' "$WORK/run" | tail -n 12 | while IFS= read -r l; do diag "$l"; done
check "the TCP stream opened before goes on through the old netstack ($n0 then $(grep -c TCPSEQ "$WORK/tcpecho") lines back)" \
	sh -c "kill -0 $tcp_nc && [ $(grep -c TCPSEQ "$WORK/tcpecho") -ge $((n0 + 20)) ] && kill -0 $ns"

# A last good servicing after the failures, then the end of the loop.
r=$(ctl '{"cmd":"service"}')
check "servicing works again after the rollbacks" says "$r" '"ok":true'
touch "$WORK/tcpstop"
i=0
while kill -0 $tcp_nc 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill $tcp_nc 2>/dev/null
diag "TCP stream: $(cat "$WORK/tcpsent" 2>/dev/null) lines sent, $(grep -c TCPSEQ "$WORK/tcpecho") back, last: $(tail -n 1 "$WORK/tcpecho")"
check "the TCP stream stayed intact through every servicing, its netstack's too: each line back once, in order" \
	tcp_stream_intact
i=0
while kill -0 "$ns" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -E "netstack servicing replaced|netstack: (drained|every NIC|the next netstack|the older)" "$WORK/run" |
	while IFS= read -r l; do diag "$l"; done
check "the old netstack (pid $ns) exited once the stream it carried had closed (drained)" \
	sh -c "! kill -0 '$ns' 2>/dev/null && grep -q 'the netstack servicing replaced (pid $ns) exited with status 0: drained' '$WORK/run' &&
		grep -q 'netstack: drained: its last connection closed; exiting' '$WORK/run'"
h=$(hello)
check "the new netstack (pid $nsnew) serves on" sh -c "kill -0 '$nsnew' && [ '$h' = 1 ]"
type_in 'touch /tmp/stop'
wait_for "$WORK/run" "LOOPEND" 60
type_in 'echo "AFTER""ID $(cat /proc/sys/kernel/random/boot_id) UP""TIME $(cut -d. -f1 /proc/uptime)"'
wait_for "$WORK/run" "AFTERID" 30
last=$(field "$WORK/run" LOOPEND)
afterid=$(field "$WORK/run" AFTERID)
uptime1=$(field "$WORK/run" UPTIME)
check "the guest's loop saw no I/O error or mismatch in $last passes" \
	sh -c "[ -n '$last' ] && ! grep -q LOOPERR '$WORK/run'"
check "the same boot throughout (boot_id ${boot_id:-none}, after: ${afterid:-none})" \
	[ -n "$boot_id" -a "$afterid" = "$boot_id" ]
check "the guest's uptime went on (${uptime0:-?} s, then ${uptime1:-?} s)" \
	sh -c "[ -n '$uptime0' ] && [ -n '$uptime1' ] && [ '${uptime1:-0}' -gt '${uptime0:-0}' ]"
vmm_finish
RC=0
grep -E 'serviced|service:|rolled|did not' "$WORK/run" | head -n 8 | sed 's/^/  /' |
	while IFS= read -r l; do diag "$l"; done

disk_loop_check "$img" "$last"
check "no sanitizer report" sanitizer_clean "$WORK/run"

tap_plan
