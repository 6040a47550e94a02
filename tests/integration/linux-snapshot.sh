#!/bin/sh
# Snapshot and restore of a running Linux guest (Debian's cloud kernel, a
# virtio-blk disk, a slirp NIC): restored with RAM copied and mapped lazily,
# it is the same boot (boot_id), its shell and a background counter carry
# on (so its clocks and timers survive), the disk data it wrote before the
# snapshot is there; a corrupt snapshot is refused.
. "$(dirname "$0")/lib.sh"
snap=$WORK/snap
img=$WORK/disk.img

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ]; then
	not_ok "Linux guest artifacts exist (run tests/guest/linux/build)"
	tap_plan
	exit 1
fi
truncate -s 16M "$img"
machine="--memory 256M --cpus 2 --disk path=$img --net slirp --stop-timeout 0"
# Typed into the guest's shell; the console echoes what is typed, so markers
# are split with "" and only the output has them whole.
type_in() { printf '%s\n' "$1" >&8; }
# shellcheck disable=SC2086
start() { _o=$1; shift; vmm_start "$_o" $machine "$@"; }
field() { sed -n "s/.*$2 \([^ ]*\).*/\1/p" "$1" | tr -d '\r' | tail -n 1; }

# 1. Boot, note the boot id, write to the disk, start a counter; snapshot.
start "$WORK/orig" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--cmdline "console=ttyS0 quiet panic=-1"
wait_for "$WORK/orig" "VMMD-GUEST-READY" 120
sleep 1
type_in 'echo "BOOT""ID $(cat /proc/sys/kernel/random/boot_id)"'
type_in 'echo snapshot-disk-data | dd of=/dev/vda bs=512 conv=fsync 2>/dev/null; echo "DISK""DONE"'
type_in '(i=0; while :; do echo "TI""CK $i"; i=$((i + 1)); sleep 1; done) &'
wait_for "$WORK/orig" "DISKDONE" 30
wait_for "$WORK/orig" "TICK 3" 30
boot_id=$(field "$WORK/orig" BOOTID)
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$snap\",\"resume\":false}")
last=$(field "$WORK/orig" TICK)
check "snapshot of a running Linux guest ($r)" sh -c "printf '%s' '$r' | grep -q '\"ok\":true'"
vmm_finish
# The guest's data must come from the disk, not from what the snapshot holds.
check "the disk holds what the guest wrote" sh -c "head -c 18 '$img' | grep -q snapshot-disk-data"

# 2. Restore both ways: same boot, the counter goes on, the disk data is read back.
for mode in copy lazy; do
	start "$WORK/$mode" --restore "$snap" --restore-mode "$mode"
	wait_for "$WORK/$mode" "TICK" 30
	type_in 'echo "AFTER""ID $(cat /proc/sys/kernel/random/boot_id)"'
	type_in 'echo "DISK""READ $(dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 18)"'
	wait_for "$WORK/$mode" "DISKREAD" 30
	sleep 3
	first=$(sed -n 's/.*TICK \([0-9]*\).*/\1/p' "$WORK/$mode" | tr -d '\r' | head -n 1)
	now=$(field "$WORK/$mode" TICK)
	after=$(field "$WORK/$mode" AFTERID)
	check "restore ($mode): the same boot (boot_id ${boot_id:-none}, after: ${after:-none})" \
		[ -n "$boot_id" -a "$after" = "$boot_id" ]
	check "restore ($mode): no second boot" sh -c "! grep -q 'VMMD-GUEST-READY' '$WORK/$mode'"
	check "restore ($mode): the guest's counter goes on (${last:-?} before, ${first:-?}..${now:-?} after)" \
		[ "${first:-0}" -ge "${last:-99999}" -a "${now:-0}" -gt "${first:-0}" ]
	check "restore ($mode): the guest reads its disk data back" has "$WORK/$mode" "DISKREAD snapshot-disk-data"
	vmm_finish
	RC=0
	check "restore ($mode): no sanitizer report" sanitizer_clean "$WORK/$mode"
done

# 3. A corrupt snapshot: refused, nothing runs.
cp -r "$snap" "$WORK/bad"
flip_byte "$WORK/bad/state" 100
# shellcheck disable=SC2086
run_vmm "$WORK/refused" 60 $machine --restore "$WORK/bad"
result "a corrupt snapshot of a Linux guest is refused" refused 2 "checksum mismatch" "did not start"

tap_plan
