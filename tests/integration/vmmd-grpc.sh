#!/bin/sh
# vmmd's gRPC API driven by a real grpcio client (grpc_client.py): health,
# version, the create/list/get/delete round trip, the error statuses with
# the field at fault, WatchEvents and ConsoleStream argument checks.  No VM
# runs (creating one needs no KVM), so this runs on any host.
. "$(dirname "$0")/lib.sh"

: "${VMMD:=$VMMD_BUILDDIR/daemon/vmmd}"
PY=/usr/bin/python3 # Debian's python3-grpcio is for this one, not a pyenv python3
CLIENT="$VMMD_SRCDIR/tests/integration/grpc_client.py"

if ! "$PY" -c 'import grpc, grpc_tools' 2>/dev/null; then
	echo "1..0 # SKIP $PY has no grpc/grpc_tools (apt-get install python3-grpcio python3-grpc-tools)"
	exit 0
fi

cd "$WORK" || exit 1
SOCK="$WORK/run/vmmd.grpc.sock"
TINY_DIR=$(cd "$(dirname "$TINY")" && pwd)

# g ARGS...: one client call, stdout+stderr into $WORK/g.out, exit code in $RC.
g() {
	timeout -s KILL 30 "$PY" "$CLIENT" --socket "$SOCK" --srcdir "$VMMD_SRCDIR" "$@" \
		>"$WORK/g.out" 2>&1
	RC=$?
}

# expect NAME PATTERN ARGS...: the call's output matches PATTERN (grep -E).
expect() {
	name=$1
	pat=$2
	shift 2
	g "$@"
	if grep -q -E -- "$pat" "$WORK/g.out"; then
		ok "$name"
	else
		not_ok "$name"
		show "$WORK/g.out"
	fi
}

# No arguments: ./run and ./var in the cwd, as documented for vmmd.
"$VMMD" --allow-dir "$TINY_DIR" $VMMD_ARGS >"$WORK/vmmd.log" 2>&1 &
VMMD_PID=$!
i=0
while [ ! -S "$SOCK" ] && [ $i -lt 100 ] && kill -0 "$VMMD_PID" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
RC=0
if [ -S "$SOCK" ]; then
	ok "vmmd serves gRPC on ./run/vmmd.grpc.sock"
else
	not_ok "vmmd serves gRPC on ./run/vmmd.grpc.sock"
	show "$WORK/vmmd.log"
	kill -9 "$VMMD_PID" 2>/dev/null
	tap_plan
	exit 1
fi

expect "Health/Check of the server is SERVING" '^SERVING$' health
expect "Health/Check of vmmd.v1.Vmm is SERVING" '^SERVING$' health vmmd.v1.Vmm
expect "Health/Check of an unknown service is NOT_FOUND" '^ERROR NOT_FOUND ' health no.such.Service
expect "Health/Watch streams SERVING" '^SERVING$' health-watch
expect "GetVersion names the API package" '"api": "vmmd.v1"' call GetVersion

SPEC='"vcpus": 1, "memory_mib": 64, "kernel": "'"$TINY_DIR/tiny.elf"'"'
# Subscribed before the create: the create event must come on the stream.
g watch --count 1 --timeout 20 --then CreateVm '{"spec": {"name": "g1", '"$SPEC"'}}'
cp "$WORK/g.out" "$WORK/watch.out"
VM_ID=$(sed -n 's/^# then: .*"vm_id": "\([^"]*\)".*/\1/p' "$WORK/watch.out")
if [ -n "$VM_ID" ]; then ok "CreateVm returns an operation on the new VM"; else
	not_ok "CreateVm returns an operation on the new VM"
	show "$WORK/watch.out"
fi
if grep -q '"kind": "EVENT_KIND_VM_CREATED"' "$WORK/watch.out" &&
	grep -q "\"vm_id\": \"$VM_ID\"" "$WORK/watch.out"; then
	ok "WatchEvents streams the VM's creation"
else
	not_ok "WatchEvents streams the VM's creation"
	show "$WORK/watch.out"
fi

expect "ListVms lists the VM" '"name": "g1"' call ListVms
expect "GetVm by name finds it" "\"id\": \"$VM_ID\"" call GetVm '{"id": "g1"}'
# creating may still be finishing: wait for the stopped state
i=0
while :; do
	g call GetVm '{"id": "g1"}'
	grep -q VM_STATE_STOPPED "$WORK/g.out" || [ $i -ge 50 ] && break
	sleep 0.2
	i=$((i + 1))
done
check "a created VM is stopped" grep -q VM_STATE_STOPPED "$WORK/g.out"

expect "a duplicate name is ALREADY_EXISTS naming spec.name" \
	'^ERROR ALREADY_EXISTS field=spec\.name' call CreateVm '{"spec": {"name": "g1", '"$SPEC"'}}'
expect "memory_mib 1 is INVALID_ARGUMENT naming the field" \
	'^ERROR INVALID_ARGUMENT field=spec\.memory_mib' \
	call CreateVm '{"spec": {"name": "g2", "vcpus": 1, "memory_mib": 1, "kernel": "'"$TINY_DIR/tiny.elf"'"}}'
expect "an unknown VM is NOT_FOUND" '^ERROR NOT_FOUND ' call GetVm '{"id": "no-such-vm"}'
expect "pausing a stopped VM is FAILED_PRECONDITION naming the state" \
	'^ERROR FAILED_PRECONDITION .*stopped' call PauseVm '{"id": "g1"}'
# SnapshotVm and RestoreVm are served from the descriptors like the rest
# (a snapshot that succeeds needs KVM: vmmd-snapshot.sh).
expect "SnapshotVm of a stopped VM is FAILED_PRECONDITION naming the state" \
	'^ERROR FAILED_PRECONDITION .*stopped' call SnapshotVm '{"id": "g1", "path": "'"$TINY_DIR/snap"'"}'
expect "SnapshotVm with a relative path is INVALID_ARGUMENT naming path" \
	'^ERROR INVALID_ARGUMENT field=path: snap: must be an absolute path' \
	call SnapshotVm '{"id": "g1", "path": "snap"}'
expect "RestoreVm of a directory without a snapshot is INVALID_ARGUMENT naming path" \
	'^ERROR INVALID_ARGUMENT field=path: .*holds no snapshot' \
	call RestoreVm '{"path": "'"$TINY_DIR"'", "name": "g3", "memory_mode": "MEMORY_MODE_LAZY"}'
expect "an unknown method is UNIMPLEMENTED" '^ERROR UNIMPLEMENTED ' raw /vmmd.v1.Vmm/NoSuchMethod ""
expect "an unknown service is UNIMPLEMENTED" '^ERROR UNIMPLEMENTED ' raw /no.Such/Method ""
expect "a malformed request is INVALID_ARGUMENT" '^ERROR INVALID_ARGUMENT ' \
	raw /vmmd.v1.Vmm/GetVm ffffffffff
expect "ConsoleStream without vm_id is INVALID_ARGUMENT naming vm_id" \
	'^ERROR INVALID_ARGUMENT field=vm_id' console "" hello
expect "ConsoleStream of an unknown VM is NOT_FOUND" '^ERROR NOT_FOUND ' console no-such-vm hello

expect "DeleteVm returns an operation" "\"vm_id\": \"$VM_ID\"" call DeleteVm '{"id": "g1"}'
i=0
while :; do
	g call GetVm '{"id": "g1"}'
	grep -q '^ERROR NOT_FOUND' "$WORK/g.out" || [ $i -ge 50 ] && break
	sleep 0.2
	i=$((i + 1))
done
check "a deleted VM is gone" grep -q '^ERROR NOT_FOUND' "$WORK/g.out"

# A stream left open must not keep vmmd from stopping.
timeout -s KILL 30 "$PY" "$CLIENT" --socket "$SOCK" --srcdir "$VMMD_SRCDIR" \
	watch --count 1 --timeout 25 >"$WORK/open.out" 2>&1 &
WATCH_PID=$!
sleep 1.5
kill -TERM "$VMMD_PID"
i=0
while kill -0 "$VMMD_PID" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 "$VMMD_PID" 2>/dev/null; then
	not_ok "vmmd stops on SIGTERM with a WatchEvents stream open"
	kill -9 "$VMMD_PID"
	show "$WORK/vmmd.log"
	RC=0
else
	wait "$VMMD_PID"
	RC=$?
	check "vmmd stops on SIGTERM with a WatchEvents stream open" [ "$RC" -eq 0 ]
fi
wait "$WATCH_PID"
check "the open stream ends with UNAVAILABLE" grep -q '^ERROR UNAVAILABLE' "$WORK/open.out"
check "vmmd removed its gRPC socket" [ ! -e "$SOCK" ]
if sanitizer_clean "$WORK/vmmd.log"; then ok "vmmd log has no sanitizer report"; else
	not_ok "vmmd log has no sanitizer report"
	show "$WORK/vmmd.log"
fi

# TCP with TLS: a client certificate signed by --tls-ca is required.
if command -v openssl >/dev/null 2>&1; then
	mkdir -p "$WORK/tls" && cd "$WORK/tls" || exit 1
	{
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 \
			-subj /CN=vmmd-test-ca &&
			openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr \
				-subj /CN=localhost &&
			printf 'subjectAltName=DNS:localhost\n' >srv.ext &&
			openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-out srv.pem -days 1 -extfile srv.ext &&
			openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=client &&
			openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-out cli.pem -days 1
	} >"$WORK/openssl.log" 2>&1
	PORT=$((20000 + $$ % 20000))
	"$VMMD" --allow-dir "$TINY_DIR" --grpc-listen "127.0.0.1:$PORT" --tls-cert srv.pem \
		--tls-key srv.key --tls-ca ca.pem $VMMD_ARGS >"$WORK/vmmd-tls.log" 2>&1 &
	VMMD_PID=$!
	i=0
	while [ ! -S run/vmmd.grpc.sock ] && [ $i -lt 100 ] && kill -0 "$VMMD_PID" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	tls() {
		timeout -s KILL 30 "$PY" "$CLIENT" --tcp "localhost:$PORT" --tls-ca ca.pem \
			--srcdir "$VMMD_SRCDIR" --deadline 5 "$@" >"$WORK/g.out" 2>&1
	}
	tls --tls-cert cli.pem --tls-key cli.key call GetVersion
	if grep -q '"api": "vmmd.v1"' "$WORK/g.out"; then
		ok "gRPC over TCP+TLS with a client certificate"
	else
		not_ok "gRPC over TCP+TLS with a client certificate"
		show "$WORK/g.out"
		show "$WORK/vmmd-tls.log"
	fi
	tls call GetVersion
	check "gRPC over TCP+TLS without a client certificate is refused" \
		grep -q '^ERROR UNAVAILABLE' "$WORK/g.out"
	kill -TERM "$VMMD_PID"
	wait "$VMMD_PID"
	cd "$WORK" || exit 1
	# TCP without TLS is refused at start, naming the reason
	timeout -s KILL 20 "$VMMD" --grpc-listen "127.0.0.1:$PORT" >"$WORK/notls.log" 2>&1
	RC=$?
	if [ "$RC" -ne 0 ] && grep -q -i 'tls' "$WORK/notls.log"; then
		ok "gRPC over TCP without TLS files is refused"
	else
		not_ok "gRPC over TCP without TLS files is refused"
		show "$WORK/notls.log"
	fi
else
	ok "# SKIP no openssl to make certificates"
fi

tap_plan
