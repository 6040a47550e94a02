#!/bin/sh
# Bad command lines and bad kernel/initrd files: one line naming the problem,
# exit code 2, no crash.  These all fail before /dev/kvm is opened, so they
# run on any host.
. "$(dirname "$0")/lib.sh"

printf 'this is not a kernel\n' >"$WORK/text"
head -c 1048576 "$GUEST_KERNEL" >"$WORK/bz-truncated" 2>/dev/null ||
	head -c 600 /dev/zero >"$WORK/bz-truncated"
head -c 200 "$TINY" >"$WORK/elf-truncated"
: >"$WORK/empty"
head -c $((40 * 1024 * 1024)) /dev/zero >"$WORK/big-initrd"

expect_refused "no --kernel is refused" "--kernel is required"
expect_refused "unknown option is named" "unknown option '--bogus'" --kernel "$TINY" --bogus
expect_refused "option without a value is named" "option '--memory' needs a value" --kernel "$TINY" --memory
expect_refused "--on-reboot restart with --restore is refused" "cannot go with --restore or --incoming" --restore /nonexistent --on-reboot restart
expect_refused "--cpus 0 is refused" "--cpus '0'" --kernel "$TINY" --cpus 0
expect_refused "--cpus not a number is refused" "--cpus 'two'" --kernel "$TINY" --cpus two
expect_refused "--cpus above 255 is refused" "--cpus '300'" --kernel "$TINY" --cpus 300
expect_refused "--memory too small is refused" "too small" --kernel "$TINY" --memory 4M
expect_refused "--memory not a size is refused" "not a size" --kernel "$TINY" --memory lots
expect_refused "--memory above the host is refused" "larger than" --kernel "$TINY" --memory 400G
expect_refused "--serial with an unknown kind is refused" "--serial 'tcp:1'" --kernel "$TINY" --serial tcp:1
expect_refused "missing kernel file is named" "kernel /nonexistent/vmlinuz: No such file" --kernel /nonexistent/vmlinuz
expect_refused "kernel that is a directory is refused" "not a regular file" --kernel /tmp
expect_refused "text file is not a kernel" "not a bzImage or PVH ELF image" --kernel "$WORK/text"
expect_refused "empty file is not a kernel" "not a bzImage or PVH ELF image" --kernel "$WORK/empty"
if [ -f "$GUEST_KERNEL" ]; then
	expect_refused "truncated bzImage is refused" "truncated" --kernel "$WORK/bz-truncated"
fi
expect_refused "truncated ELF is refused" "not a bootable PVH ELF" --kernel "$WORK/elf-truncated"
expect_refused "ELF without a PVH note is refused" "no PVH entry note" --kernel /bin/true
expect_refused "initrd larger than RAM is refused" "initrd $WORK/big-initrd: larger than" \
	--kernel "$TINY" --initrd "$WORK/big-initrd" --memory 32M
expect_refused "missing initrd file is named" "initrd /nonexistent/initrd: No such file" \
	--kernel "$TINY" --initrd /nonexistent/initrd
expect_refused "--on-reboot with an unknown action is refused" "--on-reboot 'maybe'" --kernel "$TINY" --on-reboot maybe
expect_refused "--dirty-log with an unknown mode is refused" "--dirty-log 'rings'" --kernel "$TINY" --dirty-log rings
expect_refused "stray argument is refused" "unexpected argument 'extra'" --kernel "$TINY" extra
expect_refused "--prefault with a lazy restore is refused" \
	'--prefault cannot go with --restore-mode lazy' --restore "$WORK" --restore-mode lazy --prefault

# The checks that need a KVM (made after /dev/kvm is opened) are in
# bad-input-kvm.sh, which kvm-suite.sh runs where there is one.

expect_refused "--paravisor-uid 0 is refused (a paravisor never runs as root)" \
	"--paravisor-uid '0': expected a uid from 1 to 4294967294" --kernel "$TINY" --paravisor-uid 0

run_vmm "$WORK/help" 10 --help
check "--help prints usage and exits 0" sh -c "[ $RC -eq 0 ] && grep -q 'usage: vmm' '$WORK/help'"

tap_plan
