#!/bin/sh
# vmmctl against a real vmmd started in a temp dir: finding the socket the
# way vmmd chooses it (./run/vmmd.sock), create/list/get/--json/operations/
# delete, API errors printed with their field and exit code 1, usage errors
# exit 2, and a daemon that is not there exit 3 naming the socket tried.
# No VM runs (creating one needs no KVM), so this runs on any host.
. "$(dirname "$0")/lib.sh"

: "${VMMD:=$VMMD_BUILDDIR/daemon/vmmd}"
VMMCTL="$VMMD_BUILDDIR/cli/vmmctl"

if [ ! -x "$VMMD" ]; then
	echo "1..0 # SKIP $VMMD is not built"
	exit 0
fi

cd "$WORK" || exit 1
TINY_DIR=$(cd "$(dirname "$TINY")" && pwd)
KERNEL="$TINY_DIR/$(basename "$TINY")"
unset VMMD_SOCKET

# c ARGS...: one vmmctl run; stdout in $WORK/c.out, stderr in $WORK/c.err,
# exit code in $RC.
c() {
	timeout -s KILL 30 "$VMMCTL" "$@" >"$WORK/c.out" 2>"$WORK/c.err"
	RC=$?
}

# expect NAME CODE STREAM PATTERN ARGS...: vmmctl exits with CODE and its
# STREAM (out or err) matches PATTERN (grep -E); ASan/UBSan stay quiet.
expect() {
	name=$1
	code=$2
	stream=$3
	pat=$4
	shift 4
	c "$@"
	if [ "$RC" -eq "$code" ] && grep -q -E -- "$pat" "$WORK/c.$stream" &&
		sanitizer_clean "$WORK/c.err"; then
		ok "$name"
	else
		not_ok "$name"
		diag "vmmctl $*: exit $RC, wanted $code and /$pat/ on std$stream"
		sed 's/^/#   out: /' "$WORK/c.out" | tail -n 15
		sed 's/^/#   err: /' "$WORK/c.err" | tail -n 15
	fi
}

# Before the daemon runs: nothing at ./run/vmmd.sock nor /run/vmmd.
expect "no daemon: exit 3 naming the socket given" 3 err "cannot reach vmmd at $WORK/none.sock" \
	--socket "$WORK/none.sock" list
VMMD_SOCKET="$WORK/env.sock" expect "\$VMMD_SOCKET is used and named" 3 err "$WORK/env.sock" list
expect "unknown command: exit 2" 2 err 'unknown command "frobnicate"' frobnicate
expect "create without --kernel: exit 2" 2 err "--kernel is required" \
	create --name web --memory 64M
expect "bad size: exit 2 naming the value" 2 err "--memory lots" \
	create --name web --memory lots --kernel /k
expect "option of another command: exit 2" 2 err "--force does not apply" list --force
expect "--help prints the usage" 0 out "usage: vmmctl" --help

"$VMMD" --allow-dir "$TINY_DIR" $VMMD_ARGS >"$WORK/vmmd.log" 2>&1 &
VMMD_PID=$!
i=0
while [ ! -S run/vmmd.sock ] && [ $i -lt 100 ] && kill -0 "$VMMD_PID" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if [ -S run/vmmd.sock ]; then
	ok "vmmd serves REST on ./run/vmmd.sock"
else
	not_ok "vmmd serves REST on ./run/vmmd.sock"
	RC=0
	show "$WORK/vmmd.log"
	kill -9 "$VMMD_PID" 2>/dev/null
	tap_plan
	exit 1
fi

# From here vmmctl finds ./run/vmmd.sock by itself.
expect "version names the daemon's API" 0 out "vmmd .*api vmmd.v1" version
expect "list with no VMs prints the header" 0 out "^NAME +STATE +VCPUS +MEMORY +ID$" list
expect "create --wait succeeds" 0 out "create web: operation .* succeeded" \
	create --name web --memory 64M --cpus 2 --kernel "$KERNEL" --cmdline heartbeat=16 --wait
expect "list shows the VM in a table" 0 out "^web +stopped +2 +64M +[0-9a-f-]+$" list
expect "get by name" 0 out "^memory: +64M" get web
expect "get --json is the API's JSON" 0 out '"memory_mib": "64"' get --json web
ID=$(sed -n 's/^ *"id": "\(.*\)",*$/\1/p' "$WORK/c.out" | head -n 1)
expect "get by id" 0 out "^name: +web" get "$ID"
expect "list --json for scripts" 0 out "\"id\": \"$ID\"" --json list
expect "operations --vm lists the create" 0 out "create +web +succeeded" operations --vm web
OP=$(awk '$2 == "create" { print $1; exit }' "$WORK/c.out")
expect "operation ID" 0 out "^kind: +create" operation "$OP"
expect "wait on a finished operation" 0 out "succeeded" wait "$OP"
expect "create with a taken name: exit 1, API message" 1 err "^vmmctl: create: .*web" \
	create --name web --memory 64M --kernel "$KERNEL"
expect "invalid spec: exit 1 naming the field" 1 err "^vmmctl: create: spec.memory_mib: " \
	create --name small --memory 1M --kernel "$KERNEL"
expect "kernel outside --allow-dir: refused naming the path" 1 err "^vmmctl: create: .*/etc/hostname" \
	create --name evil --memory 64M --kernel /etc/hostname
expect "unknown VM: exit 1 with the API's message" 1 err "^vmmctl: get: .*nosuch" get nosuch
expect "action on an unknown VM: exit 1" 1 err "^vmmctl: start: .*nosuch" start nosuch
expect "pause a stopped VM: exit 1, says the state" 1 err "^vmmctl: pause: .*(stopped|STOPPED)" pause web
expect "unknown operation: exit 1" 1 err "^vmmctl: operation: " operation no-such-op
expect "delete --wait succeeds" 0 out "delete web: operation .* succeeded" delete web --wait
expect "deleted VM is gone from the list" 0 out "^NAME" list
if grep -q "^web " "$WORK/c.out"; then not_ok "list no longer shows web"; else ok "list no longer shows web"; fi
expect "get after delete: exit 1" 1 err "^vmmctl: get: " get web

kill -9 "$VMMD_PID" 2>/dev/null
wait "$VMMD_PID" 2>/dev/null
expect "daemon gone: exit 3 naming ./run/vmmd.sock" 3 err "cannot reach vmmd at \./run/vmmd\.sock" list
tap_plan
