#!/bin/sh
# vmm as the vhost-user front-end of the paravisor (on a real KVM: natively or
# inside the nested lab): `--disk path=IMG,backend=paravisor` boots the Linux
# test guest with its disk served by a paravisor process that vmm started.
# The guest reads what the host wrote, writes its own pattern, syncs and
# powers off; the image holds it.  While the guest runs, the paravisor is a
# live process holding the disk's io_uring and vmm holds none (the data path
# is not in vmm); migrate and snapshot are refused with the reason; and after
# kill -9 of the paravisor vmm names the failed device and why, keeps running
# and the guest's heartbeat goes on.
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
	"paravisor: info: exiting (front-end gone)"
grep -E 'paravisor|handed' "$WORK/boot" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
pv=$(pv_pid "$WORK/boot")
check "no paravisor process is left after vmm exits" sh -c "[ -n '$pv' ] && ! kill -0 '$pv' 2>/dev/null"

# --- 2. A running guest: the paravisor has the data path; kill -9 it.
img2=$WORK/disk2.img
truncate -s 16M "$img2"
g='head -c 4096 /dev/vda >/dev/null; echo VMMD-READY;
i=0; while [ $i -lt 900 ]; do echo VMMD-BEAT $i; i=$((i + 1)); sleep 1; done'
vmm_start "$WORK/run" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$g")" --disk "path=$img2,backend=paravisor,id=data"
wait_for "$WORK/run" VMMD-READY 300
RC=0
result "a guest on a paravisor disk runs (it read the disk)" run 0 VMMD-READY
pv=$(pv_pid "$WORK/run")
check "the paravisor is a live process while the guest runs (pid ${pv:-?})" \
	sh -c "[ -n '$pv' ] && kill -0 '$pv' && grep -q paravisor /proc/$pv/cmdline"
check "the disk's io_uring is in the paravisor ($(urings "$pv")), none in vmm ($(urings $pid))" \
	sh -c "[ $(urings "$pv") -ge 1 ] && [ $(urings $pid) -eq 0 ]"
diag "the paravisor's descriptors: $(for f in /proc/"$pv"/fd/*; do printf '%s:%s ' "${f##*/}" "$(readlink "$f")"; done 2>/dev/null)"
r=$(ctl '{"cmd":"migrate","destination":"127.0.0.1:9"}')
check "migrate is refused: the paravisor's dirty pages are not logged yet" says "$r" \
	'disk data is served by the paravisor; live migration of its dirty pages is not implemented yet'
diag "migrate: $r"
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$WORK/snap\"}")
check "snapshot is refused with the reason" says "$r" '"ok":false.*disk data is served by the paravisor'
diag "snapshot: $r"

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
st=$(ctl '{"cmd":"status"}')
check "vmm still answers on its control socket" says "$st" '"ok":true'
ctl '{"cmd":"stop"}' >/dev/null
wait $pid
RC=$?
exec 8>&-
diag "vmm exit code after stop: $RC"
grep -E 'error|warning' "$WORK/run" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
check "vmm stops cleanly afterwards, no sanitizer report" sanitizer_clean "$WORK/run"

tap_plan
