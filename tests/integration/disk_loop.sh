# shellcheck shell=sh
# tests/integration/disk_loop.sh — a Linux guest's O_DIRECT write / read-back
# / compare loop on its /dev/vda, for tests that disturb the disk's back-end
# while the guest uses it (paravisor-service.sh, paravisor-restart.sh).
# Sourced after lib.sh; the guest's console input is fd 8 (vmm_start).
#
# Pass i writes 64 KiB of "vmmd-loop-i" to slot i % SLOTS, reads it back
# past the page cache and compares: LOOPOK i or LOOPERR i on the console;
# the loop ends with LOOPEND N (N passes) once /tmp/stop appears.

SLOTS=32 # 64 KiB slots the guest's loop cycles through

disk_loop_start() {
	printf '%s\n' "(i=0; while [ ! -e /tmp/stop ]; do o=\$((i % $SLOTS)); yes vmmd-loop-\$i | head -c 65536 >/tmp/p; if dd if=/tmp/p of=/dev/vda bs=65536 seek=\$o oflag=direct conv=notrunc 2>/dev/null && dd if=/dev/vda bs=65536 skip=\$o count=1 iflag=direct 2>/dev/null | cmp -s - /tmp/p; then echo \"LOOP\"\"OK \$i\"; else echo \"LOOP\"\"ERR \$i\"; fi; i=\$((i + 1)); done; echo \"LOOP\"\"END \$i\") &" >&8
}

# disk_loop_check IMG LAST: after poweroff, each slot of IMG holds the last
# of the LAST passes that wrote it.
disk_loop_check() {
	_bad=0
	_s=0
	while [ -n "$2" ] && [ $_s -lt $SLOTS ] && [ $_s -lt "$2" ]; do
		_i=$((_s + (($2 - 1 - _s) / SLOTS) * SLOTS))
		_want=$(yes "vmmd-loop-$_i" | head -c 65536 | md5sum | cut -d' ' -f1)
		_got=$(dd if="$1" bs=65536 skip=$_s count=1 2>/dev/null | md5sum | cut -d' ' -f1)
		[ "$_want" = "$_got" ] || _bad=$((_bad + 1))
		_s=$((_s + 1))
	done
	check "after poweroff the image holds the guest's last pass in each of $_s slots ($_bad wrong)" \
		[ -n "$2" -a "$_bad" -eq 0 -a "$_s" -gt 0 ]
}
