#!/bin/sh
# virtio-rng and virtio-console on the virtio-pci transport, seen by Debian's
# cloud kernel: the guest's /dev/hwrng, its hvc0 reaching the host's file and
# stdio, and MSI-X interrupts delivered through irqfds.
. "$(dirname "$0")/lib.sh"

CMDLINE_BASE="console=ttyS0 panic=-1"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }

if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ]; then
	not_ok "Linux guest artifacts exist (run tests/guest/linux/build)"
	tap_plan
	exit 1
fi

result() {
	name=$1
	out=$2
	shift 2
	good=1
	[ "$RC" -eq 0 ] || good=0
	for p in "$@"; do has "$out" "$p" || good=0; done
	sanitizer_clean "$out" || good=0
	if [ $good -eq 1 ]; then ok "$name"; else not_ok "$name"; show "$out"; fi
}

# 1. rng + console to a file.
probe='echo VMMD-RNG $(cat /sys/class/misc/hw_random/rng_current);
echo VMMD-RNG-BYTES $(head -c 64 /dev/hwrng | wc -c);
echo VMMD-RNG-DISTINCT $(head -c 256 /dev/hwrng | od -An -v -tx1 | tr -s " " "\n" | sort -u | grep -c .);
echo hello-from-hvc0 >/dev/hvc0;
grep -E "PCI-MSI.*virtio" /proc/interrupts | tr -s " " | sed "s/^/VMMD-IRQ /";
dmesg | grep -c -E "BAR 4.*(assigned|no space|failed)" | sed "s/^/VMMD-BAR-REASSIGN /"'
out=$WORK/file
run_vmm "$out" 300 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--rng --console "file:$WORK/console.txt" \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$probe")"
result "Linux boots with --rng --console file: and powers off" "$out" "VMMD-GUEST-EXIT rc=0"
result "the guest's hw_random uses virtio_rng.0" "$out" "VMMD-RNG virtio_rng.0"
result "/dev/hwrng delivers 64 bytes" "$out" "VMMD-RNG-BYTES 64"
distinct=$(sed -n 's/.*VMMD-RNG-DISTINCT \([0-9]*\).*/\1/p' "$out" | head -n1)
check "the bytes look random (${distinct:-0} distinct values in 256)" [ "${distinct:-0}" -gt 100 ]
if grep -q "hello-from-hvc0" "$WORK/console.txt" 2>/dev/null; then
	ok "a line written to /dev/hvc0 reaches the host file"
else
	not_ok "a line written to /dev/hvc0 reaches the host file"
	show "$out"
fi
msi=$(grep -c "VMMD-IRQ.*PCI-MSI" "$out")
check "virtio interrupts are PCI-MSI ($msi vectors)" [ "$msi" -ge 4 ]
delivered=$(sed -n 's/^VMMD-IRQ *[0-9]*: *\([0-9]*\) .*virtio.*-input.*/\1/p' "$out" | awk '{s += $1} END {print s + 0}')
check "queue interrupts arrive ($delivered on the input queues)" [ "$delivered" -gt 0 ]
result "Linux keeps the pre-assigned BARs" "$out" "VMMD-BAR-REASSIGN 0"

# 2. console on stdio, serial elsewhere: output and input.
mkfifo "$WORK/in"
( i=0
  while ! grep -q "VMMD-GUEST-READY" "$WORK/serial.txt" 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.5; i=$((i + 1))
  done
  sleep 2
  printf 'typed-into-hvc0\n'
  sleep 30 ) >"$WORK/in" &
writer=$!
probe='echo stdio-from-hvc0 >/dev/hvc0; read -r line </dev/hvc0; echo "VMMD-HVC-IN $line"'
timeout -s KILL 300 "$VMM" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--serial "file:$WORK/serial.txt" --console stdio \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$probe")" <"$WORK/in" >"$WORK/stdio" 2>&1
RC=$?
kill $writer 2>/dev/null
result "guest output on hvc0 reaches vmm's stdout" "$WORK/stdio" "stdio-from-hvc0"
result "a line typed on vmm's stdin reaches the guest's hvc0" "$WORK/serial.txt" \
	"VMMD-HVC-IN typed-into-hvc0"

# 3. What a user sees first with a disk and a NIC: the guest's init names
# /dev/vda with the image's size and prints its DHCP lease from slirp.
truncate -s 1M "$WORK/disk.img"
out=$WORK/disknet
run_vmm "$out" 300 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--disk "path=$WORK/disk.img" --net "slirp,hostfwd=tcp:127.0.0.1:${VMMD_NET_HOSTPORT2:-18022}-:22" \
	--serial stdio --cmdline "$CMDLINE_BASE vmmd.dhcp=1 vmmd.run=true"
result "the guest's init sees /dev/vda with the image's 2048 sectors" "$out" \
	"guest: disk /dev/vda 2048 sectors"
result "the guest's init gets a DHCP lease from slirp (10.0.2.15)" "$out" \
	"guest: eth0 lease 10.0.2.15 router 10.0.2.2"

tap_plan
