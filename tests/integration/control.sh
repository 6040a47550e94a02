#!/bin/sh
# vmm's control socket (what vmmd drives): status, pause/resume with the
# guest really stopped, errors for bad requests, stop, and the status file.
. "$(dirname "$0")/lib.sh"
UXSEND="$VMMD_BUILDDIR/tests/tools/uxsend"
sock=$WORK/ctl.sock
ctl() { "$UXSEND" "$sock" "$1" 2>&1; }
beats() { grep -c "tiny: heartbeat" "$WORK/out"; }
says() { printf '%s\n' "$1" | grep -q -- "$2"; }

"$VMM" --kernel "$TINY" --cmdline "heartbeat=14" --control "$sock" \
	--status-file "$WORK/status.json" --stop-timeout 1 >"$WORK/out" 2>&1 &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

r=$(ctl '{"cmd":"status"}')
says "$r" '"state":"running"' && says "$r" "\"pid\":$pid"
check "status reports a running VM with its pid ($r)" [ $? -eq 0 ]

r=$(ctl '{"cmd":"pause"}')
sleep 0.5
b1=$(beats)
sleep 1.5
b2=$(beats)
says "$r" '"state":"paused"' && [ "$b1" -eq "$b2" ]
check "pause stops the vCPUs (heartbeat $b1 -> $b2 while paused)" [ $? -eq 0 ]

r=$(ctl '{"cmd":"resume"}')
sleep 1.5
b3=$(beats)
says "$r" '"state":"running"' && [ "$b3" -gt "$b2" ]
check "resume runs them again (heartbeat $b2 -> $b3)" [ $? -eq 0 ]

r=$(ctl 'not json')
check "malformed request gets an error reply ($r)" says "$r" '"ok":false.*bad request'
r=$(ctl '{"cmd":"fly"}')
check "unknown command is named ($r)" says "$r" "unknown command 'fly'"
r=$(ctl '{"cmd":"status"}')
check "the VM survives bad requests" says "$r" '"ok":true'

ctl '{"cmd":"stop"}' >/dev/null
wait $pid
RC=$?
check "stop ends vmm with exit code 4" [ "$RC" -eq 4 ]
check "the status file records why ($(cat "$WORK/status.json" 2>/dev/null))" \
	sh -c "grep -q '\"reason\":\"killed\"' '$WORK/status.json' && grep -q 'control request' '$WORK/status.json'"
check "the control socket is removed on exit" sh -c "[ ! -e '$sock' ]"
check "no sanitizer report" sanitizer_clean "$WORK/out"

tap_plan
