#!/bin/sh
# Bad command lines and bad kernel/initrd files: one line naming the problem,
# exit code 2, no crash.  These all fail before /dev/kvm is opened, so they
# run on any host.
. "$(dirname "$0")/lib.sh"

# expect NAME PATTERN ARGS...: exit 2 and PATTERN on the single error line.
expect() {
	name=$1
	pat=$2
	shift 2
	run_vmm "$WORK/out" 20 "$@"
	lines=$(grep -c . "$WORK/out")
	if [ "$RC" -eq 2 ] && has "$WORK/out" "$pat" && [ "$lines" -eq 1 ] &&
		sanitizer_clean "$WORK/out"; then
		ok "$name"
	else
		not_ok "$name"
		show "$WORK/out"
	fi
}

printf 'this is not a kernel\n' >"$WORK/text"
head -c 1048576 "$GUEST_KERNEL" >"$WORK/bz-truncated" 2>/dev/null ||
	head -c 600 /dev/zero >"$WORK/bz-truncated"
head -c 200 "$TINY" >"$WORK/elf-truncated"
: >"$WORK/empty"
head -c $((40 * 1024 * 1024)) /dev/zero >"$WORK/big-initrd"

expect "no --kernel is refused" "--kernel is required"
expect "unknown option is named" "unknown option '--bogus'" --kernel "$TINY" --bogus
expect "option without a value is named" "option '--memory' needs a value" --kernel "$TINY" --memory
expect "--on-reboot restart with --restore is refused" "cannot go with --restore or --incoming" --restore /nonexistent --on-reboot restart
expect "--cpus 0 is refused" "--cpus '0'" --kernel "$TINY" --cpus 0
expect "--cpus not a number is refused" "--cpus 'two'" --kernel "$TINY" --cpus two
expect "--cpus above 255 is refused" "--cpus '300'" --kernel "$TINY" --cpus 300
expect "--memory too small is refused" "too small" --kernel "$TINY" --memory 4M
expect "--memory not a size is refused" "not a size" --kernel "$TINY" --memory lots
expect "--memory above the host is refused" "larger than" --kernel "$TINY" --memory 400G
expect "--serial with an unknown kind is refused" "--serial 'tcp:1'" --kernel "$TINY" --serial tcp:1
expect "missing kernel file is named" "kernel /nonexistent/vmlinuz: No such file" --kernel /nonexistent/vmlinuz
expect "kernel that is a directory is refused" "not a regular file" --kernel /tmp
expect "text file is not a kernel" "not a bzImage or PVH ELF image" --kernel "$WORK/text"
expect "empty file is not a kernel" "not a bzImage or PVH ELF image" --kernel "$WORK/empty"
if [ -f "$GUEST_KERNEL" ]; then
	expect "truncated bzImage is refused" "truncated" --kernel "$WORK/bz-truncated"
fi
expect "truncated ELF is refused" "not a bootable PVH ELF" --kernel "$WORK/elf-truncated"
expect "ELF without a PVH note is refused" "no PVH entry note" --kernel /bin/true
expect "initrd larger than RAM is refused" "initrd $WORK/big-initrd: larger than" \
	--kernel "$TINY" --initrd "$WORK/big-initrd" --memory 32M
expect "missing initrd file is named" "initrd /nonexistent/initrd: No such file" \
	--kernel "$TINY" --initrd /nonexistent/initrd
expect "--on-reboot with an unknown action is refused" "--on-reboot 'maybe'" --kernel "$TINY" --on-reboot maybe
expect "--dirty-log with an unknown mode is refused" "--dirty-log 'rings'" --kernel "$TINY" --dirty-log rings
expect "stray argument is refused" "unexpected argument 'extra'" --kernel "$TINY" extra
expect "--prefault with a lazy restore is refused" \
	'--prefault cannot go with --restore-mode lazy' --restore "$WORK" --restore-mode lazy --prefault

# --disk backend=: these are found when the devices are set up, after
# /dev/kvm is opened, so they need a KVM (any KVM: no guest code runs).
: >"$WORK/disk.img"
if [ -w /dev/kvm ]; then
	expect "an unknown --disk backend= is named" 'backend=qemu: expected vmm or paravisor' \
		--kernel "$TINY" --disk "path=$WORK/disk.img,backend=qemu"
	expect "restart= on a disk vmm serves itself is refused" \
		'disk "disk0": restart= applies to backend=paravisor only' \
		--kernel "$TINY" --disk "path=$WORK/disk.img,restart=on"
	expect "restart= with a value that is not on or off is named" \
		'disk "disk0": restart=sometimes: expected on or off' \
		--kernel "$TINY" --disk "path=$WORK/disk.img,backend=paravisor,restart=sometimes"
	expect "a missing --paravisor binary is named with the disk" \
		'disk "disk0": cannot start the paravisor: --paravisor /nonexistent/paravisor: no such file' \
		--kernel "$TINY" --disk "path=$WORK/disk.img,backend=paravisor" \
		--paravisor /nonexistent/paravisor
	expect "a --paravisor that is not executable is refused" 'not an executable file' \
		--kernel "$TINY" --disk "path=$WORK/disk.img,backend=paravisor" \
		--paravisor "$WORK/disk.img"
	expect "backend=paravisor with a lazy restore is refused" \
		'backend=paravisor cannot be used with --restore-mode lazy' --restore "$WORK" \
		--restore-mode lazy --disk "path=$WORK/disk.img,backend=paravisor"
	# vmm opens the image (every paravisor of the disk is handed it).
	expect "a missing image of a paravisor disk is named with the disk" \
		"disk \"data\": cannot open $WORK/no-such.img: No such file or directory" \
		--kernel "$TINY" --disk "path=$WORK/no-such.img,backend=paravisor,id=data"
	# A paravisor that ends during set-up: vmm names the disk and how it ended.
	run_vmm "$WORK/pvfail" 20 --kernel "$TINY" \
		--disk "path=$WORK/disk.img,backend=paravisor,id=data" --paravisor /bin/false
	if [ "$RC" -eq 2 ] &&
		has "$WORK/pvfail" 'disk "data": the paravisor (pid [0-9]*) did not start: it exited with status 1' &&
		sanitizer_clean "$WORK/pvfail"; then
		ok "a paravisor that exits during set-up ends vmm with exit 2 naming the disk"
	else
		not_ok "a paravisor that exits during set-up ends vmm with exit 2 naming the disk"
		show "$WORK/pvfail"
	fi
else
	skip "--disk backend= checks (no writable /dev/kvm)"
fi

expect "--paravisor-uid 0 is refused (a paravisor never runs as root)" \
	"--paravisor-uid '0': expected a uid from 1 to 4294967294" --kernel "$TINY" --paravisor-uid 0

run_vmm "$WORK/help" 10 --help
check "--help prints usage and exits 0" sh -c "[ $RC -eq 0 ] && grep -q 'usage: vmm' '$WORK/help'"

tap_plan
