#!/bin/sh
# Snapshot and restore of the tiny guest through vmm's control socket and
# vmm --restore: the guest carries on where it was (its heartbeat counter
# keeps counting, no second boot, its memory pattern verifies) with RAM
# copied in or mapped lazily (with a paravisor disk: loaded through
# userfaultfd); a corrupt or mismatched snapshot is refused
# with the reason and nothing runs.
. "$(dirname "$0")/lib.sh"
snap=$WORK/snap
args="--memory 128M --cpus 2 --stop-timeout 0"
says() { printf '%s\n' "$1" | grep -q -- "$2"; }
beats() { grep -c "tiny: heartbeat" "$1"; }
# shellcheck disable=SC2086
start() { _o=$1; shift; vmm_start "$_o" $args "$@"; }

# 1. The original VM: pattern in RAM, heartbeat every 2^14 ticks.
start "$WORK/orig" --kernel "$TINY" --cmdline "heartbeat=14 pattern=77 dirty_size=32"
wait_for "$WORK/orig" "tiny: pattern 77 sum" 20
wait_for "$WORK/orig" "tiny: heartbeat 32768" 30
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$snap\",\"resume\":false}")
saved=$(last_beat "$WORK/orig")
check "snapshot of a running VM succeeds and leaves it paused on request ($r)" \
	sh -c "printf '%s' '$r' | grep -q '\"ok\":true' && printf '%s' '$r' | grep -q '\"state\":\"paused\"'"
check "the snapshot directory holds a state file and a sparse memory file" \
	sh -c "[ -s '$snap/state' ] && [ \$(stat -c %s '$snap/memory') -eq 134217728 ] &&
		[ \$(du -k '$snap/memory' | cut -f1) -lt 131072 ]"
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$snap\"}")
check "a second snapshot into the same directory is refused ($r)" says "$r" "already holds a snapshot"
b1=$(beats "$WORK/orig")
ctl '{"cmd":"resume"}' >/dev/null
wait_for "$WORK/orig" "tiny: heartbeat $((saved + 2 * 16384))" 20
b2=$(beats "$WORK/orig")
check "the original VM resumes after the snapshot (heartbeats $b1 -> $b2)" [ "$b2" -gt "$b1" ]
vmm_finish

# 2. Restore, RAM copied: no boot, the counter continues, the pattern holds.
for mode in copy lazy; do
	start "$WORK/$mode" --restore "$snap" --restore-mode "$mode"
	wait_for "$WORK/$mode" "tiny: heartbeat" 20
	sleep 1 # a whole line: the first may still be being written
	first=$(first_beat "$WORK/$mode")
	check "restore ($mode): the guest continues from heartbeat $saved (first after restore: $first)" \
		sh -c "[ '${first:-0}' -gt '$saved' ] && ! grep -q 'tiny: hello' '$WORK/$mode'"
	printf 'v' >&8
	wait_for "$WORK/$mode" "tiny: verify" 20
	check "restore ($mode): guest RAM holds the pattern written before the snapshot" \
		has "$WORK/$mode" "tiny: verify ok"
	check "restore ($mode): vmm says what it restored" has "$WORK/$mode" "restored .* ($mode"
	vmm_finish
	RC=0
	check "restore ($mode): no sanitizer report" sanitizer_clean "$WORK/$mode"
done

# 2b. A lazily restored VM snapshotted again and migrated: its RAM is the
# first snapshot's file plus what it wrote since, not what its memfd holds.
start "$WORK/lz" --restore "$snap" --restore-mode lazy
wait_for "$WORK/lz" "tiny: heartbeat" 20
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$WORK/snap2\"}")
pages=$(printf '%s' "$r" | sed -n 's/.*"memory_pages":\([0-9]*\).*/\1/p')
check "a lazily restored VM snapshots again with all its RAM (${pages:-?} pages; the pattern alone is 8192)" \
	sh -c "printf '%s' '$r' | grep -q '\"ok\":true' && [ '${pages:-0}' -ge 8192 ]"
# ...and migrates with all of it (round 0 looks at every page).
rm -f "$WORK/din"
mkfifo "$WORK/din"
exec 9<>"$WORK/din"
# shellcheck disable=SC2086
"$VMM" $args --incoming 127.0.0.1:47950 <"$WORK/din" >"$WORK/lzd" 2>&1 &
dpid=$!
wait_for "$WORK/lzd" "waiting for a migration" 10
vmm_migrate 127.0.0.1:47950 "" 60
check "a lazily restored VM migrates" sh -c "printf '%s' '$st' | grep -q '\"migration\":\"completed\"'"
printf 'v' >&9
wait_for "$WORK/lzd" "tiny: verify" 20
check "...with the pattern intact at the destination" has "$WORK/lzd" "tiny: verify ok"
kill -TERM $dpid
wait $dpid
exec 9>&-
vmm_finish
start "$WORK/cp2" --restore "$WORK/snap2"
wait_for "$WORK/cp2" "tiny: heartbeat" 20
printf 'v' >&8
wait_for "$WORK/cp2" "tiny: verify" 20
check "...and that snapshot restores with the pattern intact" has "$WORK/cp2" "tiny: verify ok"
vmm_finish

# 2c. A VM with a paravisor disk: the paravisor maps the RAM memfd, so the
# lazy restore fills that memfd through userfaultfd (vCPU faults through
# KVM first) and starts the paravisor's device once RAM is in; a snapshot
# of the restored VM waits for that and holds all of RAM.
truncate -s 1M "$WORK/pv.img"
pvargs="--disk path=$WORK/pv.img,backend=paravisor"
# shellcheck disable=SC2086
start "$WORK/pvo" --kernel "$TINY" --cmdline "heartbeat=14 pattern=77 dirty_size=32" $pvargs
wait_for "$WORK/pvo" "tiny: pattern 77 sum" 20
wait_for "$WORK/pvo" "tiny: heartbeat 32768" 30
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$WORK/pvsnap\",\"resume\":false}")
saved=$(last_beat "$WORK/pvo")
check "paravisor disk: snapshot ($r)" sh -c "printf '%s' '$r' | grep -q '\"ok\":true'"
vmm_finish
# shellcheck disable=SC2086
start "$WORK/pvl" --restore "$WORK/pvsnap" --restore-mode lazy $pvargs
wait_for "$WORK/pvl" "tiny: heartbeat" 20
wait_for "$WORK/pvl" "lazy restore: RAM loaded" 20
first=$(first_beat "$WORK/pvl")
printf 'v' >&8
wait_for "$WORK/pvl" "tiny: verify" 20
r=$(ctl "{\"cmd\":\"snapshot\",\"path\":\"$WORK/pvsnap2\"}")
pages=$(printf '%s' "$r" | sed -n 's/.*"memory_pages":\([0-9]*\).*/\1/p')
RC=0
result "paravisor disk, lazy restore: RAM through userfaultfd, the heartbeat goes on ($saved, then $first), the pattern holds, the paravisor starts after" \
	pvl 0 "lazy restore: RAM loaded ([0-9]* pages filled) [0-9]* ms after the restore began; the paravisor devices start" \
	"restored .* (lazy" "tiny: verify ok"
check "...and a snapshot of it holds all its RAM (${pages:-?} pages; the pattern alone is 8192)" \
	sh -c "[ '${first:-0}' -gt '$saved' ] && ! grep -q 'tiny: hello' '$WORK/pvl' && [ '${pages:-0}' -ge 8192 ]"
vmm_finish
RC=0
check "paravisor disk, lazy restore: no sanitizer report" sanitizer_clean "$WORK/pvl"

# 3. Refusals: vmm exits 2 naming the problem, and no vCPU runs.
refuse() { # refuse NAME DIR PATTERN [ARGS...]
	name=$1 dir=$2 pat=$3
	shift 3
	# shellcheck disable=SC2086
	timeout -s KILL 30 "$VMM" $args --restore "$dir" "$@" </dev/null >"$WORK/refuse" 2>&1
	RC=$?
	result "$name" refuse 2 "$pat" "did not start"
	check "$name: the guest never ran" sh -c "! grep -q 'tiny:' '$WORK/refuse'"
}
cp -r "$snap" "$WORK/bad-state"
flip_byte "$WORK/bad-state/state" 40
refuse "a corrupt state file is refused" "$WORK/bad-state" "checksum mismatch"
cp -r "$snap" "$WORK/bad-mem"
off=$((16 * 1048576 + 4096 * 3 + 100)) # inside the pattern region
flip_byte "$WORK/bad-mem/memory" $off
refuse "a corrupt memory file is refused (copy mode)" "$WORK/bad-mem" "memory file checksum mismatch"
cp -r "$snap" "$WORK/short"
truncate -s 64M "$WORK/short/memory"
refuse "a truncated memory file is refused" "$WORK/short" "memory file is 67108864 bytes"
refuse "a different --memory is refused" "$snap" "128 MiB and 2 vCPUs; this one has 256 MiB" \
	--memory 256M
refuse "a different device set is refused" "$snap" "this VM has" --rng
refuse "a directory that is no snapshot is refused" "$WORK" "no state file"

tap_plan
