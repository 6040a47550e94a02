#!/bin/sh
# virtio-blk under a Linux guest (natively or inside the nested lab): the disk
# appears with the image's size, guest writes land in the image byte for byte
# (cache=writeback and cache=none), a read-only disk refuses writes, two disks
# and two queues work, `sync` reaches the file before vmm exits, discard
# punches holes, and bad --disk options end vmm with exit code 2.
. "$(dirname "$0")/lib.sh"

CMDLINE_BASE="console=ttyS0 panic=-1 quiet"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }

# Images need a file system with O_DIRECT (cache=none): the build tree's,
# not a tmpfs /tmp.
IMGS=$(mktemp -d "$VMMD_BUILDDIR/.vmmd-blk-test.XXXXXX")
trap 'rm -rf "$WORK" "$IMGS"' EXIT

# boot OUT SECS GUEST_CMD VMM_ARGS...
boot() {
	out=$1
	secs=$2
	cmd=$3
	shift 3
	run_vmm "$WORK/$out" "$secs" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
		--memory 256M --cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$cmd")" "$@"
}


md5() { md5sum | cut -d' ' -f1; }
# first N bytes of FILE
head_md5() { head -c "$2" "$1" | md5; }

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ]; then
	not_ok "Linux guest artifacts exist (run tests/guest/linux/build)"
	tap_plan
	exit 1
fi

# --- 1. size, a 4 MiB pattern written through the page cache (cache=writeback)
img=$IMGS/wb.img
truncate -s 64M "$img"
expect=$(yes vmmd-pattern | head -c 4194304 | md5)
g='echo VMMD-SIZE $(cat /sys/block/vda/size) RO $(cat /sys/block/vda/ro);
yes vmmd-pattern | head -c 4194304 > /dev/vda; sync; echo 3 > /proc/sys/vm/drop_caches;
echo VMMD-MD5 $(head -c 4194304 /dev/vda | md5sum | cut -d" " -f1)'
boot wb 300 "$g" --disk "path=$img,cache=writeback"
result "a 64 MiB image appears as /dev/vda with 131072 sectors" wb 0 \
	"VMMD-SIZE 131072 RO 0" "VMMD-GUEST-EXIT rc=0"
check "cache=writeback: the guest's 4 MiB pattern is in the image byte for byte" \
	[ "$(head_md5 "$img" 4194304)" = "$expect" ]
result "the guest reads the pattern back from the disk" wb 0 "VMMD-MD5 $expect"
size=$(stat -c %s "$img")
check "the image keeps its size ($size)" [ "$size" -eq 67108864 ]

# --- 2. cache=none with O_DIRECT from the guest, 1 MiB requests
img=$IMGS/direct.img
truncate -s 64M "$img"
expect=$(yes vmmd-direct | head -c 8388608 | md5)
g='yes vmmd-direct | head -c 8388608 | dd of=/dev/vda bs=1M iflag=fullblock oflag=direct 2>&1 | tail -n1;
echo VMMD-MD5 $(dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | md5sum | cut -d" " -f1)'
boot direct 300 "$g" --disk "path=$img,cache=none"
result "cache=none: O_DIRECT writes and reads from the guest work" direct 0 "VMMD-MD5 $expect"
check "cache=none: the pattern is in the image byte for byte" \
	[ "$(head_md5 "$img" 8388608)" = "$expect" ]

# --- 3. read-only: the guest sees it and writes fail; the image is unchanged
img=$IMGS/ro.img
yes vmmd-readonly | head -c 1048576 > "$img"
before=$(md5 < "$img")
g='echo VMMD-RO $(cat /sys/block/vda/ro);
dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync 2>&1; echo VMMD-DD-RC=$?;
echo VMMD-MD5 $(md5sum < /dev/vda | cut -d" " -f1)'
boot ro 300 "$g" --disk "path=$img,readonly=on"
result "readonly=on: the guest sees a read-only disk" ro 0 "VMMD-RO 1" "VMMD-MD5 $before"
if has "$WORK/ro" "VMMD-DD-RC=0"; then
	not_ok "readonly=on: dd to the disk fails"
	show "$WORK/ro"
else
	ok "readonly=on: dd to the disk fails"
fi
check "readonly=on: the image is unchanged" [ "$(md5 < "$img")" = "$before" ]

# --- 4. two disks, the first with two queues (2 vCPUs)
a=$IMGS/a.img b=$IMGS/b.img
truncate -s 16M "$a"
truncate -s 32M "$b"
g='echo VMMD-MQ $(ls /sys/block/vda/mq | wc -l) $(ls /sys/block/vdb/mq | wc -l);
echo VMMD-SIZES $(cat /sys/block/vda/size) $(cat /sys/block/vdb/size);
echo vmmd-disk-b > /tmp/x; dd if=/tmp/x of=/dev/vdb conv=fsync 2>/dev/null;
echo vmmd-disk-a > /tmp/x; dd if=/tmp/x of=/dev/vda conv=fsync 2>/dev/null;
echo VMMD-SERIAL $(cat /sys/block/vda/serial) $(cat /sys/block/vdb/serial)'
boot two 300 "$g" --cpus 2 --disk "path=$a,queues=2,id=alpha" --disk "path=$b,queues=1"
result "two disks: vda has 2 queues, vdb 1" two 0 "VMMD-MQ 2 1" "VMMD-SIZES 32768 65536"
result "GET_ID: the guest reads each disk's id as its serial" two 0 "VMMD-SERIAL alpha disk1"
both_landed() { [ "$(head -c 11 "$a")" = "vmmd-disk-a" ] && [ "$(head -c 11 "$b")" = "vmmd-disk-b" ]; }
check "two disks: each write landed in its own image" both_landed

# --- 5. flush: after `sync` the data is in the file even if vmm dies at once
img=$IMGS/flush.img
truncate -s 16M "$img"
expect=$(yes vmmd-flush | head -c 1048576 | md5)
g='yes vmmd-flush | head -c 1048576 > /dev/vda; sync; echo VMMD-SYNCED; sleep 600'
"$VMM" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$g")" --disk "path=$img" \
	</dev/null >"$WORK/flush" 2>&1 &
pid=$!
i=0
while ! has "$WORK/flush" VMMD-SYNCED && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do
	sleep 0.5
	i=$((i + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
RC=0
result "flush: the guest's sync completed" flush 0 VMMD-SYNCED
check "flush: after sync and kill -9 of vmm the data is in the image" \
	[ "$(head_md5 "$img" 1048576)" = "$expect" ]

# --- 6. discard punches a hole; write zeroes zeroes
img=$IMGS/discard.img
yes vmmd-discard | head -c 8388608 > "$img"
g='echo VMMD-DG $(cat /sys/block/vda/queue/discard_granularity);
blkdiscard -o 0 -l 4194304 /dev/vda && echo VMMD-DISCARD-OK; sync'
boot discard 300 "$g" --disk "path=$img"
result "discard: blkdiscard succeeds in the guest" discard 0 "VMMD-DISCARD-OK"
zero4m=$(head -c 4194304 /dev/zero | md5)
check "discard: the discarded range reads as zeroes in the image" \
	[ "$(head_md5 "$img" 4194304)" = "$zero4m" ]
blocks=$(stat -c %b "$img")
check "discard: the image lost its blocks ($blocks of 512 B allocated, 8 MiB written)" \
	[ "$blocks" -lt 12288 ]

# --- 7. bad --disk options: one line naming the disk and the key, exit 2
run_vmm "$WORK/missing" 60 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--disk "path=$IMGS/no-such.img"
result "a missing image ends vmm with exit 2 naming the file" missing 2 "no-such.img"
run_vmm "$WORK/badkey" 60 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--disk "path=$a,colour=blue"
result "an unknown --disk key ends vmm with exit 2 naming it" badkey 2 "colour"
run_vmm "$WORK/badcache" 60 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--disk "path=$a,cache=sometimes"
result "a bad cache= value ends vmm with exit 2 naming it" badcache 2 "cache=sometimes"
run_vmm "$WORK/badq" 60 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--disk "path=$a,queues=0"
result "queues=0 ends vmm with exit 2" badq 2 "queues=0"

tap_plan
