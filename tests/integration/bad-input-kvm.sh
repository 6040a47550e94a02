#!/bin/sh
# Bad --disk options that vmm finds when it sets its devices up, after
# /dev/kvm is opened: one line naming the problem, exit code 2, no crash.
# No guest code runs, but they need a KVM, so kvm-suite.sh runs them
# (directly or in the lab).
. "$(dirname "$0")/lib.sh"

: >"$WORK/disk.img"
expect_refused "an unknown --disk backend= is named" 'backend=qemu: expected vmm or paravisor' \
	--kernel "$TINY" --disk "path=$WORK/disk.img,backend=qemu"
expect_refused "restart= on a disk vmm serves itself is refused" \
	'disk "disk0": restart= applies to backend=paravisor only' \
	--kernel "$TINY" --disk "path=$WORK/disk.img,restart=on"
expect_refused "restart= with a value that is not on or off is named" \
	'disk "disk0": restart=sometimes: expected on or off' \
	--kernel "$TINY" --disk "path=$WORK/disk.img,backend=paravisor,restart=sometimes"
expect_refused "a missing --paravisor binary is named with the disk" \
	'disk "disk0": cannot start the paravisor: --paravisor /nonexistent/paravisor: no such file' \
	--kernel "$TINY" --disk "path=$WORK/disk.img,backend=paravisor" \
	--paravisor /nonexistent/paravisor
expect_refused "a --paravisor that is not executable is refused" 'not an executable file' \
	--kernel "$TINY" --disk "path=$WORK/disk.img,backend=paravisor" \
	--paravisor "$WORK/disk.img"
# vmm opens the image (every paravisor of the disk is handed it).
expect_refused "a missing image of a paravisor disk is named with the disk" \
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

tap_plan
