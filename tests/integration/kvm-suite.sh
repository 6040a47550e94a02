#!/bin/sh
# Runs the tests that need a real KVM: natively where the host KVM runs
# guests at native speed, else through the nested lab (one L1 boot for all).
# A host KVM that only emulates instructions runs the tiny guest directly
# but not Linux.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

if [ "${VMMD_KVM_TESTS:-yes}" = no ]; then
	echo "1..0 # SKIP KVM tests disabled (--disable-kvm-tests)"
	exit 0
fi

mode_line=$("$VMMD_SRCDIR/tests/lab/kvm-mode")
mode=${mode_line%% *}
direct=
lab=
tiny="bad-input-kvm.sh tiny-guest.sh control.sh snapshot.sh migrate.sh virtio-malicious.sh paravisor-restart-tiny.sh"
# vmmd-service.sh (20 VMs with a paravisor each) is a group of its own.
daemon="vmmctl-kvm.sh vmmd-lab.sh vmmd-snapshot.sh vmmd-migrate.sh|vmmd-service.sh"
linux="linux-guest.sh|virtio-small.sh vmmd-linux.sh linux-snapshot.sh"
# paravisor-qemu.sh: QEMU as the vhost-user front-end of our paravisor;
# paravisor-vmm.sh: vmm as its front-end (backend=paravisor);
# paravisor-service.sh: live servicing of that paravisor (a group of its
# own: 26 servicings of a disk and a NIC under disk and TCP traffic);
# paravisor-migrate.sh: live migration with it (its own group: two hops);
# paravisor-restart.sh: restarting it when it dies (a group of its own: its
# guest boots twice and waits out a dozen deaths);
# paravisor-net.sh: a NIC served by a paravisor (next to virtio-net.sh).
devices="virtio-blk.sh|virtio-net.sh paravisor-net.sh|paravisor-qemu.sh paravisor-vmm.sh|paravisor-service.sh|paravisor-migrate.sh|paravisor-restart.sh"
# Two L1 hosts on one link (tests/lab/run --hosts 2).
twohost="linux-migrate.sh"
# Lab runs are groups separated by '|', one L1 boot each (~6 s), so that a
# group that meets a stalled L1 (see tests/lab/fetch-qemu) is cheap to retry.
# An emulating KVM (kvm_pvm) runs even the tiny guest a thousand times
# slower than hardware and reports its triple fault as an emulation error,
# so the suites run in the lab there too, where KVM is real.
case $mode in
native) direct=$(echo "$tiny $daemon $linux $devices" | tr '|' ' ') lab=$twohost ;;
*) lab="$tiny|$daemon|$linux|$devices|$twohost" ;;
esac
diag "host KVM: $mode_line"
[ -n "$direct" ] && diag "running directly: $direct"
[ -n "$lab" ] && diag "running in the nested lab (tests/lab/run): $lab"

# Sub-suites print TAP without a plan; renumber their results into ours.
merge() {
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "$(echo "$line" | sed 's/^ok [0-9]* - //')" ;;
		"not ok "*) not_ok "$(echo "$line" | sed 's/^not ok [0-9]* - //')" ;;
		1..*) ;;
		*) echo "# $line" ;;
		esac
	done
}

run_suites() {
	for t in "$@"; do
		echo "# --- $t"
		"$here/$t"
	done
}

for t in $direct; do
	run_suites "$t" >"$WORK/direct.tap" 2>&1
	merge <"$WORK/direct.tap"
done
# curl for the daemon tests (the lab copies its libraries along).
share=
[ -x /usr/bin/curl ] && share="--share /usr/bin/curl"
# run_group GROUP OUT: one lab group in a fresh L1, retried as below; its
# output in OUT, its exit code in OUT.rc.  Says nothing itself but diag
# lines (the TAP numbering is the parent's, once every lane is done).
run_group() {
	group=$1 out=$2
	# L1 vCPUs: each setting has its own TCG failure. With one, L1 stalls
	# (see tests/lab/run), most of all under Linux L2 guests with two vCPUs
	# (linux-guest.sh, vmmd-linux.sh, linux-snapshot.sh: the Linux group
	# stalled twice running in a row in a clean-clone ./check); with two,
	# L2 guests now and then triple-fault at once (seen in vmmd-lab.sh and
	# virtio-blk.sh). So two for the Linux groups only; both are retried.
	case "|$linux|" in
	*"|$group|"*) l1_cpus=2 ;;
	*) l1_cpus=1 ;;
	esac
	l1_hosts=1 l1_mem=4096
	[ "$group" = "$twohost" ] && l1_hosts=2 l1_mem=2048
	# shellcheck disable=SC2086
	for attempt in 1 2 3; do
		"$VMMD_SRCDIR/tests/lab/run" --hosts $l1_hosts --cpus $l1_cpus --memory $l1_mem \
			--timeout 600 $share -- \
			env VMMD_SRCDIR="$VMMD_SRCDIR" VMMD_BUILDDIR="$VMMD_BUILDDIR" VMMD_CACHE="$VMMD_CACHE" \
			sh "$here/run-list.sh" $group >"$out" 2>&1
		rc=$?
		# A stalled L1 (or the lab's timeout) ends in 124: say so and try
		# the group again in a fresh L1, up to three times in all.  So
		# does an L2 vCPU 0 found at the reset vector (RIP 0xfff0, no
		# firmware there) in a two-vCPU L1: TCG's nested SVM, seen in
		# unrelated groups; it is logged, never silent.
		if [ $rc -ne 0 ] && [ $attempt -lt 3 ] && grep -q 'triple fault at RIP 0xfff0\([^0-9a-f]\|$\)' "$out"; then
			grep 'triple fault at RIP 0xfff0' "$out" | head -n 3 | sed 's/^/# /'
			diag "lab: an L2 vCPU was reset under $group (TCG nested SVM); retrying in a fresh L1"
			continue
		fi
		[ $rc -eq 124 ] && [ $attempt -lt 3 ] || break
		grep '^lab: ' "$out" | sed 's/^/# /'
		diag "lab: running $group ended with 124 (a stalled L1 or the timeout); retrying in a fresh L1"
	done
	echo $rc >"$out.rc"
}

# The groups run in VMMD_LAB_LANES lanes at once (default: 2 on a host
# with 2 or more CPUs), one L1 each, so two L1s share the host's cores
# rather than one leaving a core idle; each lane takes the next group in
# order.  Groups whose L1 has two vCPUs (Linux) or that have two L1s (two
# hosts) would overcommit the cores: they run afterwards, alone.
solo() { [ "$1" = "$twohost" ] || case "|$linux|" in *"|$1|"*) true ;; *) false ;; esac; }
lanes=${VMMD_LAB_LANES:-$([ "$(nproc)" -ge 2 ] && echo 2 || echo 1)}
old_ifs=$IFS
IFS='|'
set -- $lab
IFS=$old_ifs
n=0
for group in "$@"; do
	printf '%s\n' "$group" >"$WORK/group.$n"
	n=$((n + 1))
done
[ -n "$lab" ] && diag "lab: $n groups in $lanes lane(s)"
# What every lab run builds first (L1's QEMU, the guest, L1's initramfs),
# made once here, so that two lanes never race to write the same files.
if [ -n "$lab" ] && [ "$lanes" -gt 1 ]; then
	for b in "$VMMD_SRCDIR/tests/lab/fetch-qemu" "$VMMD_SRCDIR/tests/guest/linux/build" \
		"$VMMD_SRCDIR/tests/lab/build-l1"; do
		VMMD_CACHE="$VMMD_CACHE" "$b" 2>&1 | grep -v 'up to date' | sed 's/^/# lab: /'
	done
fi
lane=0
while [ $lane -lt "$lanes" ]; do
	(
		i=$lane
		while [ $i -lt $n ]; do
			g=$(cat "$WORK/group.$i")
			solo "$g" || run_group "$g" "$WORK/lab.$i.tap"
			i=$((i + lanes))
		done
	) &
	lane=$((lane + 1))
done
wait
i=0
while [ $i -lt $n ]; do
	g=$(cat "$WORK/group.$i")
	! solo "$g" || run_group "$g" "$WORK/lab.$i.tap"
	i=$((i + 1))
done
i=0
while [ $i -lt $n ]; do
	group=$(cat "$WORK/group.$i") out=$WORK/lab.$i.tap
	rc=$(cat "$out.rc" 2>/dev/null || echo 1)
	merge <"$out"
	if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$out"; then
		not_ok "the nested lab ran $group (exit $rc)"
		tail -n 20 "$out" | sed 's/^/#   /'
	fi
	i=$((i + 1))
done
tap_plan
