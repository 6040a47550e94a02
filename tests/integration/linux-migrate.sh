#!/bin/sh
# Live migration of a running Linux guest between the two hosts of the lab
# (tests/lab/run --hosts 2: this host, lab-a, and lab-b at 10.77.0.2): one
# vCPU, a disk at the same path on both hosts (copied before the start, read
# only), a slirp NIC with a DHCP lease and a hostfwd into a TCP server in
# the guest.  The guest prints a line every second with a counter, its
# boot_id and what it reads from its disk with O_DIRECT; on lab-b the
# counter must carry on without a gap of more than a few seconds, the
# boot_id must be the same, the disk must read the same, and a TCP client
# on lab-b reaches the guest's server through lab-b's hostfwd.
. "$(dirname "$0")/lib.sh"
peer=10.77.0.2
port=47500

if ! lab-ssh --probe "$peer" 2>/dev/null; then
	echo "1..0 # SKIP needs the two-host lab (kvm-suite.sh runs this with --hosts 2)"
	exit 0
fi
on_b() { lab-ssh "$peer" "$@"; }

# The same disk, at the same path, on both hosts.
img=$WORK/disk.img
mkdisk='head -c 16777216 /dev/zero | tr "\0" "v" >'"$img"'; printf migrated-disk-ok | dd of='"$img"' conv=notrunc 2>/dev/null'
sh -c "$mkdisk"
on_b "mkdir -p $WORK && $mkdisk"
machine="--memory 256M --disk path=$img,readonly=on --net slirp,hostfwd=tcp:127.0.0.1:2323-:23 --stop-timeout 0"

guest='i=0
(while :; do echo "SER""VED $(cat /proc/sys/kernel/random/boot_id)" | nc -l -p 23; done) &
while :; do
	echo "TI""CK $i $(cat /proc/sys/kernel/random/boot_id) $(dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 15)"
	i=$((i + 1))
	sleep 1
done'
cmdline="console=ttyS0 quiet panic=-1 vmmd.dhcp=1 vmmd.run64=$(printf '%s' "$guest" | base64 | tr -d '\n')"

# Destination first: it waits for the source.
on_b "setsid $VMM $machine --incoming 0.0.0.0:$port --serial file:$WORK/dst.out </dev/null >$WORK/dst.log 2>&1 &"
# shellcheck disable=SC2086
vmm_start "$WORK/src" $machine --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$cmdline"
wait_for "$WORK/src" "TICK 3 " 120
check "the guest runs on lab-a with its lease and disk" \
	sh -c "grep -q 'guest: eth0 lease' '$WORK/src' && grep -q 'TICK 3 .* migrated-disk-o' '$WORK/src'"
boot_id=$(sed -n 's/.*TICK 3 \([^ ]*\).*/\1/p' "$WORK/src" | tr -d '\r' | head -n 1)

vmm_migrate "$peer:$port" ',"downtime_limit_ms":300' 300
last=$(sed -n 's/.*TICK \([0-9]*\) .*/\1/p' "$WORK/src" | tail -n 1)
down=$(printf '%s' "$st" | sed -n 's/.*"downtime_ms":\([0-9]*\).*/\1/p')
check "the migration to lab-b completes ($(printf '%s' "$st" | sed -n 's/.*"migration":"\([a-z]*\)".*"total_ms":\([0-9]*\).*/\1, \2 ms/p'), ${down:-?} ms down)" \
	sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"'"
vmm_finish

sleep 4
on_b "cat $WORK/dst.out" >"$WORK/dst"
first=$(sed -n 's/.*TICK \([0-9]*\) .*/\1/p' "$WORK/dst" | head -n 1)
check "the counter carries on at lab-b (${last:-?} on lab-a, ${first:-none} first on lab-b)" \
	sh -c "[ -n '$first' ] && [ -n '$last' ] && [ '${first:-0}' -ge '${last:-0}' ] && [ '${first:-0}' -le $((${last:-0} + 5)) ]"
check "the same boot on lab-b (boot_id ${boot_id:-none})" \
	sh -c "[ -n '$boot_id' ] && grep -q 'TICK [0-9]* $boot_id' '$WORK/dst' && ! grep -q VMMD-GUEST-READY '$WORK/dst'"
check "the guest reads its disk on lab-b" grep -q "TICK [0-9]* [^ ]* migrated-disk-o" "$WORK/dst"
served=$(on_b "nc -w 5 127.0.0.1 2323 </dev/null" | tr -d '\r')
check "a TCP client on lab-b reaches the guest through hostfwd (${served:-nothing})" \
	[ "$served" = "SERVED $boot_id" ]
on_b "kill \$(pidof vmm) 2>/dev/null; sleep 1; cat $WORK/dst.log" >"$WORK/dst-log"
RC=0
check "no sanitizer report on either host" \
	sh -c "sanitizer_clean() { ! grep -q -E 'AddressSanitizer|runtime error:|LeakSanitizer' \"\$1\"; }; sanitizer_clean '$WORK/src' && sanitizer_clean '$WORK/dst-log'"

tap_plan
