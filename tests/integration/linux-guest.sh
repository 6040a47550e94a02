#!/bin/sh
# Debian's cloud kernel + busybox initramfs under vmm on a real KVM (natively
# or inside the nested lab): SMP, the 8250 on its IRQ, serial input, the
# guest clock, and the exit codes of poweroff, reboot and the power button.
. "$(dirname "$0")/lib.sh"

CMDLINE_BASE="console=ttyS0 panic=-1"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }

# boot OUT SECS EXTRA_CMDLINE VMM_ARGS...
boot() {
	out=$1
	secs=$2
	extra=$3
	shift 3
	run_vmm "$WORK/$out" "$secs" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
		--memory 256M --cmdline "$CMDLINE_BASE $extra" "$@"
}


if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ]; then
	not_ok "Linux guest artifacts exist (run tests/guest/linux/build)"
	tap_plan
	exit 1
fi

# One boot checks several things: 2 vCPUs, the UART's IRQ, the clock.
probe='echo VMMD-CPUS $(grep -c ^processor /proc/cpuinfo); echo VMMD-CLOCK $(date +%s); dmesg | grep -m1 "ttyS0 at I/O"; grep -E "^ *4:" /proc/interrupts | tr -s " "; echo VMMD-CLOCKSOURCE $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)'
start=$(date +%s)
boot smp 300 "vmmd.run64=$(b64 "$probe")" --cpus 2
host_end=$(date +%s)
result "Linux boots to its init with 2 vCPUs and powers off with exit 0" smp 0 \
	"VMMD-GUEST-READY" "VMMD-GUEST-EXIT rc=0"
result "the guest sees both vCPUs" smp 0 "VMMD-CPUS 2" "cpus=2"
result "Linux's 8250 driver finds a 16550A on IRQ 4" smp 0 "ttyS0 at I/O 0x3f8 (irq = 4" "16550A"
result "the guest uses kvmclock (KVM paravirt CPUID leaves work)" smp 0 "VMMD-CLOCKSOURCE kvm-clock"
irqs=$(sed -n 's/^ *4: \([0-9]*\) \([0-9]*\).*/\1 \2/p' "$WORK/smp" | head -n1)
total=0
for n in $irqs; do total=$((total + n)); done
check "the console runs interrupt-driven ($total interrupts on IRQ 4)" [ "$total" -gt 0 ]
gclock=$(sed -n 's/.*VMMD-CLOCK \([0-9]*\).*/\1/p' "$WORK/smp" | head -n1)
gclock=${gclock:-0}
if [ "$gclock" -ge $((start - 5)) ] && [ "$gclock" -le $((host_end + 5)) ]; then
	ok "guest clock is within 5 s of the host's"
else
	not_ok "guest clock is within 5 s of the host's (guest $gclock, host $start..$host_end)"
fi
diag "boot with 2 vCPUs took $((host_end - start)) s"

# Serial input: type a line once the guest is waiting for it.
mkfifo "$WORK/in"
( i=0
  while ! grep -q "VMMD-GUEST-READY" "$WORK/echo" 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.5; i=$((i + 1))
  done
  sleep 2
  printf 'hello-from-host\n'
  sleep 30 ) >"$WORK/in" &
writer=$!
timeout -s KILL 300 "$VMM" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.test=echo" <"$WORK/in" >"$WORK/echo" 2>&1
RC=$?
kill $writer 2>/dev/null
result "a line typed into the serial console reaches the guest shell" echo 0 \
	"VMMD-ECHO hello-from-host"

boot reboot 300 "vmmd.test=uptime vmmd.after=reboot"
result "guest reboot ends vmm with exit code 3" reboot 3 "VMMD-GUEST-READY"

# SIGTERM presses the ACPI power button; the guest's init powers off.
"$VMM" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 'sleep 600')" --stop-timeout 120 \
	>"$WORK/term" 2>&1 &
pid=$!
i=0
while ! has "$WORK/term" "VMMD-GUEST-READY" && [ $i -lt 600 ]; do sleep 0.5; i=$((i + 1)); done
sleep 2
kill -TERM $pid
wait $pid
RC=$?
result "SIGTERM presses the power button and the guest powers off (exit 0)" term 0 \
	"guest: power button pressed"

tap_plan
