#!/bin/sh
# vmm as the vhost-user front-end of the paravisor (on a real KVM: natively or
# inside the nested lab): `--disk path=IMG,backend=paravisor` boots the Linux
# test guest with its disk served by a paravisor process that vmm started.
# The guest reads what the host wrote, writes its own pattern, syncs and
# powers off; the image holds it.  While the guest runs, the paravisor is a
# live process holding the disk's io_uring and vmm holds none (the data path
# is not in vmm); after kill -9 of the paravisor (with restart=off;
# paravisor-restart.sh has restarts) vmm names the failed device and why,
# keeps running, the guest's
# heartbeat goes on and its reads of that disk fail with an I/O error.  A snapshot of a running guest restores onto a
# new paravisor, copied and lazily: the guest carries on where it was, and
# its disk with it.
. "$(dirname "$0")/lib.sh"

PARAVISOR="$VMMD_BUILDDIR/paravisor/paravisor"
CMDLINE_BASE="console=ttyS0 panic=-1 quiet"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
md5() { md5sum | cut -d' ' -f1; }
# io_uring instances a process holds
urings() { for f in "/proc/$1/fd/"*; do readlink "$f"; done 2>/dev/null | grep -c io_uring; }
says() { printf '%s' "$1" | grep -q -- "$2"; }
pv_pid() { sed -n 's/.*served by the paravisor .*, pid \([0-9]*\).*/\1/p' "$1" | head -n 1; }

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ] || [ ! -x "$PARAVISOR" ]; then
	not_ok "the Linux guest and paravisor/paravisor exist (tests/guest/linux/build; make)"
	tap_plan
	exit 1
fi

# --- 1. Linux boots on the paravisor's disk; reads and writes land.
img=$WORK/disk.img
disk_rw_setup "$img"
g=$DISK_RW
start=$(date +%s)
run_vmm "$WORK/boot" 300 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$g")" --disk "path=$img,backend=paravisor"
diag "vmm from start to poweroff: $(($(date +%s) - start)) s"
result "backend=paravisor: Linux boots with the paravisor's disk as /dev/vda" boot 0 \
	"VMMD-DISK 131072" "VMMD-GUEST-EXIT rc=0"
result "the guest reads the host's 1 MiB pattern through the paravisor" boot 0 \
	"VMMD-HOST-MD5 $host_md5"
result "the guest reads its 4 MiB back after dropping its page cache" boot 0 \
	"VMMD-GUEST-MD5 $guest_md5"
check "after poweroff the image holds the guest's 4 MiB byte for byte" \
	[ "$(dd if="$img" bs=1M skip=8 count=4 2>/dev/null | md5)" = "$guest_md5" ]
check "the host's pattern is intact" [ "$(head -c 1048576 "$img" | md5)" = "$host_md5" ]
result "the paravisor ran the queue with the memory table and features vmm gave it" boot 0 \
	"paravisor: info: disk0: guest RAM: [0-9] region(s), 256 MiB" \
	"paravisor: info: disk0: front-end acked features .*VERSION_1" \
	"paravisor: info: disk0: queue 0 started: size [0-9]*" \
	"vmm: info: disk0: 1 queue(s) handed to the vhost-user back-end"
result "the paravisor exits 0 when vmm closes the connection" boot 0 \
	"paravisor: info: exiting: every front-end gone"
grep -E 'paravisor|handed' "$WORK/boot" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
pv=$(pv_pid "$WORK/boot")
check "no paravisor process is left after vmm exits" sh -c "[ -n '$pv' ] && ! kill -0 '$pv' 2>/dev/null"

# --- 2. A running guest: the paravisor has the data path; kill -9 it.
img2=$WORK/disk2.img
truncate -s 16M "$img2"
# Each beat also reads a block past the guest's page cache, in the
# background so that a read that never completed could not stop the beats.
g='head -c 4096 /dev/vda >/dev/null; echo VMMD-READY;
i=0; while [ $i -lt 900 ]; do echo VMMD-BEAT $i;
(dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=$((i % 1000)) iflag=direct 2>/dev/null &&
echo VMMD-IO-OK $i || echo VMMD-IO-ERR $i) & i=$((i + 1)); sleep 1; done'
vmm_start "$WORK/run" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$g")" \
	--disk "path=$img2,backend=paravisor,id=data,restart=off"
wait_for "$WORK/run" VMMD-READY 300
RC=0
result "a guest on a paravisor disk runs (it read the disk)" run 0 VMMD-READY
pv=$(pv_pid "$WORK/run")
check "the paravisor is a live process while the guest runs (pid ${pv:-?})" \
	sh -c "[ -n '$pv' ] && kill -0 '$pv' && grep -q paravisor /proc/$pv/cmdline"
check "the disk's io_uring is in the paravisor ($(urings "$pv")), none in vmm ($(urings $pid))" \
	sh -c "[ $(urings "$pv") -ge 1 ] && [ $(urings $pid) -eq 0 ]"
diag "the paravisor's descriptors: $(for f in /proc/"$pv"/fd/*; do printf '%s:%s ' "${f##*/}" "$(readlink "$f")"; done 2>/dev/null)"

kill -9 "$pv"
wait_for "$WORK/run" "virtio-blk data: its paravisor (pid $pv) died: killed by signal 9" 20
RC=0
result "vmm names the failed device and why after kill -9 of its paravisor" run 0 \
	"virtio-blk data: its paravisor (pid $pv) died: killed by signal 9.*device needs reset"
b1=$(grep -c VMMD-BEAT "$WORK/run")
sleep 5
b2=$(grep -c VMMD-BEAT "$WORK/run")
check "vmm keeps running after its paravisor died" kill -0 $pid
check "the guest's heartbeat goes on ($b1 then $b2 beats)" [ "$b2" -gt "$b1" ]
wait_for "$WORK/run" VMMD-IO-ERR 20
RC=0
result "the guest's reads of the disk fail with an I/O error now, not hang" run 0 \
	"VMMD-IO-OK" "VMMD-IO-ERR" "vmm: info: data: answering its requests with I/O errors"
st=$(ctl '{"cmd":"status"}')
check "vmm still answers on its control socket" says "$st" '"ok":true'
ctl '{"cmd":"stop"}' >/dev/null
wait $pid
RC=$?
exec 8>&-
diag "vmm exit code after stop: $RC"
grep -E 'error|warning' "$WORK/run" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
check "vmm stops cleanly afterwards, no sanitizer report" sanitizer_clean "$WORK/run"

# --- 3. Snapshot a running guest, restore it onto a new paravisor.
img3=$WORK/disk3.img
snap=$WORK/snap
truncate -s 16M "$img3"
machine="--memory 256M --stop-timeout 0 --disk path=$img3,backend=paravisor,id=data"
# Typed into the guest's shell; the console echoes what is typed, so markers
# are split with "" and only the output has them whole.
type_in() { printf '%s\n' "$1" >&8; }
field() { sed -n "s/.*$2 \([^ ]*\).*/\1/p" "$1" | tr -d '\r' | tail -n 1; }
# shellcheck disable=SC2086
vmm_start "$WORK/s-orig" $machine --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--cmdline "$CMDLINE_BASE"
wait_for "$WORK/s-orig" "VMMD-GUEST-READY" 300
sleep 1
type_in 'echo "BOOT""ID $(cat /proc/sys/kernel/random/boot_id)"'
type_in 'echo before-snapshot | dd of=/dev/vda bs=512 conv=fsync 2>/dev/null; echo "DISK""DONE"'
type_in '(i=0; while :; do echo "TI""CK $i"; i=$((i + 1)); sleep 1; done) &'
wait_for "$WORK/s-orig" "DISKDONE" 60
wait_for "$WORK/s-orig" "TICK 2" 60
boot_id=$(field "$WORK/s-orig" BOOTID)
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$snap\",\"resume\":false}")
last=$(field "$WORK/s-orig" TICK)
check "snapshot of a running guest on a paravisor disk" says "$r" '"ok":true'
diag "snapshot: $r"
pv=$(pv_pid "$WORK/s-orig")
vmm_finish
RC=0
result "saving stopped the paravisor's queue and started it again" s-orig 0 \
	"paravisor: info: data: queue 0 stopped at avail index [1-9]"
check "the original's paravisor is gone with its vmm" sh -c "[ -n '$pv' ] && ! kill -0 '$pv' 2>/dev/null"

# restore_run NAME SECTOR [ARGS]: vmm --restore $snap ARGS (serial in
# $WORK/NAME); the guest prints its boot_id (AFTERID) and sector 0 (DISKREAD)
# and writes "after-NAME" to SECTOR; sets first and now (its counter) and
# after (the boot_id).
restore_run() {
	_n=$1 _seek=$2
	shift 2
	# shellcheck disable=SC2086
	vmm_start "$WORK/$_n" $machine --restore "$snap" "$@"
	wait_for "$WORK/$_n" "TICK" 60
	type_in 'echo "AFTER""ID $(cat /proc/sys/kernel/random/boot_id)"'
	type_in 'echo "DISK""READ $(dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 15)"'
	type_in "echo after-$_n | dd of=/dev/vda bs=512 seek=$_seek oflag=direct 2>/dev/null; echo \"WRITE\"\"DONE\""
	wait_for "$WORK/$_n" "DISKREAD" 60
	wait_for "$WORK/$_n" "WRITEDONE" 60
	sleep 2
	first=$(sed -n 's/.*TICK \([0-9]*\).*/\1/p' "$WORK/$_n" | tr -d '\r' | head -n 1)
	now=$(field "$WORK/$_n" TICK)
	after=$(field "$WORK/$_n" AFTERID)
}
# written NAME SECTOR: the image holds "after-NAME" there.
written() { dd if="$img3" bs=512 skip="$2" count=1 2>/dev/null | head -c ${#1} | grep -q "$1"; }

restore_run s-rest 1
check "restore: the same boot (boot_id ${boot_id:-none}, after: ${after:-none})" \
	[ -n "$boot_id" -a "$after" = "$boot_id" ]
check "restore: the guest's counter goes on (${last:-?} before, ${first:-?}..${now:-?} after)" \
	[ "${first:-0}" -ge "${last:-99999}" -a "${now:-0}" -gt "${first:-0}" ]
check "restore: the guest reads through the new paravisor what it wrote before" \
	has "$WORK/s-rest" "DISKREAD before-snapshot"
result "restore: the new paravisor resumes the queue at the saved index" s-rest 0 \
	"paravisor: info: data: queue 0 started: size [0-9]*, avail index [1-9]"
grep -E 'paravisor: info: data: queue|restored' "$WORK/s-rest" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
vmm_finish
RC=0
check "restore: the guest's write after restore is in the image" written after-s-rest 1
check "restore: no sanitizer report" sanitizer_clean "$WORK/s-rest"

# The same snapshot restored lazily: RAM stays the memfd the paravisor maps,
# filled through userfaultfd as the guest touches it (and in order
# meanwhile); the paravisor gets RAM and the rings once all of it is in.
restore_run s-lazy 2 --restore-mode lazy
check "lazy restore: the same boot (boot_id ${boot_id:-none}, after: ${after:-none}), the counter goes on (${last:-?} before, ${first:-?}..${now:-?} after)" \
	[ -n "$boot_id" -a "$after" = "$boot_id" -a "${first:-0}" -ge "${last:-99999}" -a "${now:-0}" -gt "${first:-0}" ]
result "lazy restore: RAM loads through userfaultfd, then the paravisor starts and reads what the guest wrote before" \
	s-lazy 0 "restored .* (lazy mode" \
	"lazy restore: RAM loaded ([0-9]* pages filled) [0-9]* ms after the restore began; the paravisor devices start" \
	"paravisor: info: data: queue 0 started: size [0-9]*, avail index [1-9]" "DISKREAD before-snapshot"
# The paravisor got RAM and the rings only after it was loaded: its queue
# starts on a later line of the log than the loader's end.
loaded_at=$(grep -n 'lazy restore: RAM loaded' "$WORK/s-lazy" | head -n 1 | cut -d: -f1)
started_at=$(grep -n 'paravisor: info: data: queue 0 started' "$WORK/s-lazy" | head -n 1 | cut -d: -f1)
check "lazy restore: the paravisor's queue started after RAM was loaded (log lines ${loaded_at:-none}, ${started_at:-none})" \
	[ -n "$loaded_at" -a -n "$started_at" -a "${started_at:-0}" -gt "${loaded_at:-0}" ]
grep -E 'lazy restore|restored' "$WORK/s-lazy" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
vmm_finish
RC=0
check "lazy restore: the guest's write is in the image" written after-s-lazy 2
check "lazy restore: no sanitizer report" sanitizer_clean "$WORK/s-lazy"

tap_plan
