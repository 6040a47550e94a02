#!/bin/sh
# virtio devices under vmm driven by the tiny guest's polled drivers: blk
# write/read/flush, rng, net (DHCP through slirp), and hostile requests (a
# descriptor loop, a buffer outside RAM, a zero-length header, a queue size
# that is not a power of two).  A hostile request must cost the guest only
# that device: vmm logs it, sets DEVICE_NEEDS_RESET, and keeps running; the
# second disk still works.  Needs /dev/kvm (skips without it).
. "$(dirname "$0")/lib.sh"

if [ ! -e /dev/kvm ]; then
	echo "1..0 # SKIP no /dev/kvm"
	exit 0
fi

# run_tiny OUT CMDLINE ARGS...: guest serial (vmm's stdout) in $WORK/OUT,
# vmm's own log (stderr) in $WORK/OUT.err, both in $WORK/OUT.all.
run_tiny() {
	out=$WORK/$1
	cmdline=$2
	shift 2
	timeout -s KILL 60 "$VMM" --kernel "$TINY" --cmdline "$cmdline" "$@" \
		</dev/null >"$out" 2>"$out.err"
	RC=$?
	cat "$out" "$out.err" >"$out.all"
}

# expect_run NAME OUT WANT_RC PATTERN...: patterns are looked for in the
# guest's serial output; sanitizers in everything.
expect_run() {
	name=$1
	out=$WORK/$2
	want=$3
	shift 3
	good=1
	[ "$RC" -eq "$want" ] || good=0
	for p in "$@"; do has "$out" "$p" || good=0; done
	sanitizer_clean "$out.all" || good=0
	if [ $good -eq 1 ]; then ok "$name"; else not_ok "$name (want exit $want)"; show "$out.all"; fi
}

# The tiny guest writes its pattern at sector 8: bytes 5a 61 68 6f first.
wrote_pattern() {
	[ "$(od -A n -t x1 -j 4096 -N 4 "$1" | tr -d ' \n')" = "5a61686f" ]
}

not_has() {
	! has "$@"
}

new_disks() {
	head -c 1048576 /dev/zero >"$WORK/disk0.img"
	head -c 1048576 /dev/zero >"$WORK/disk1.img"
}

BLK_OK="tiny: virtio-blk capacity 2048 write ok read ok match"

new_disks
run_tiny blk "virtio=blk" --disk "path=$WORK/disk0.img"
expect_run "virtio-blk writes, reads back and flushes a block" blk 0 \
	"$BLK_OK" "tiny: virtio-blk flush status 0" "tiny: poweroff"
check "virtio-blk's write reached the image file" wrote_pattern "$WORK/disk0.img"

run_tiny rng "virtio=rng" --rng
expect_run "virtio-rng returns 32 bytes" rng 0 \
	"tiny: virtio-rng 32 bytes [0-9a-f]\{64\}" "tiny: poweroff"
check "virtio-rng's bytes are not all zero" not_has "$WORK/rng" "virtio-rng 32 bytes 0\{64\}"

run_tiny net "virtio=net" --net slirp
expect_run "virtio-net sends a DHCP DISCOVER and slirp answers" net 0 \
	"tiny: virtio-net sent 590 bytes, received [1-9][0-9]* bytes" \
	"tiny: virtio-net rx from .* type 0x0800 udp 67->68" "tiny: poweroff"

# mode, what it is, what vmm's log must say about it (grep -i, basic RE)
for t in \
	"blk-loop|a descriptor loop|loop\|cycle\|chain too long\|too many descriptors" \
	"blk-oob|a buffer outside guest RAM|outside\|beyond\|not in guest ram\|out of range\|unmapped\|invalid address\|bad address" \
	"blk-zero|a zero-length request header|zero\|too short\|header\|length\|status byte" \
	"blk-qsize|queue size 3|power of \(two\|2\)\|queue size\|queue_size\|size 3"; do
	mode=${t%%|*}
	rest=${t#*|}
	what=${rest%%|*}
	logpat=${rest#*|}

	new_disks
	run_tiny "$mode" "virtio=$mode" \
		--disk "path=$WORK/disk0.img" --disk "path=$WORK/disk1.img"
	expect_run "$mode: $what marks the disk NEEDS_RESET; the VM runs on to poweroff" \
		"$mode" 0 "tiny: virtio-blk sending a bad request" \
		"tiny: device status 0x[0-9a-f]* needs-reset=yes" "tiny: poweroff"
	expect_run "$mode: the second disk still writes, reads back and flushes" \
		"$mode" 0 "$BLK_OK" "tiny: virtio-blk flush status 0"
	check "$mode: the second disk's write reached its image" \
		wrote_pattern "$WORK/disk1.img"
	if grep -qi -- "$logpat" "$WORK/$mode.err"; then
		ok "$mode: vmm's log names the problem"
	else
		not_ok "$mode: vmm's log names the problem (want /$logpat/)"
		show "$WORK/$mode.err"
	fi
done

tap_plan
