#!/bin/sh
# vmmd's REST API over its Unix socket with real curl: every error path with
# its status and JSON error shape, the OpenAPI document against the routes
# the server really has, /metrics, server-sent events, and TCP with TLS and
# client certificates.  Needs no KVM: no VM is started.
. "$(dirname "$0")/lib.sh"
VMMD="$VMMD_BUILDDIR/daemon/vmmd"
if [ ! -x "$VMMD" ] || ! command -v curl >/dev/null 2>&1; then
	echo "1..0 # SKIP needs $VMMD and curl"
	exit 0
fi
sock=$WORK/run/vmmd.sock
log=$WORK/vmmd.log
body=$WORK/body
hdrs=$WORK/hdrs

# req METHOD PATH [CURL ARGS...]: the status into $ST, the body into $body.
req() {
	m=$1
	p=$2
	shift 2
	ST=$(curl -s -X "$m" --unix-socket "$sock" -D "$hdrs" -o "$body" -w '%{http_code}' \
		"$@" "http://localhost$p")
}
# has_json TEXT...: the last response's body holds each TEXT.
has_json() {
	for t; do grep -q -F -- "$t" "$body" || return 1; done
}
# err STATUS CODE: the response is an error of that status and code.
err() {
	[ "$ST" = "$1" ] && has_json "{\"error\":{\"code\":\"$2\",\"message\":\""
}
# err_has STATUS CODE TEXT...: err, and the body holds each TEXT.
err_has() {
	err "$1" "$2" || return 1
	shift 2
	has_json "$@"
}
# st_has STATUS TEXT...: the status, and the body holds each TEXT.
st_has() {
	[ "$ST" = "$1" ] || return 1
	shift
	has_json "$@"
}
# st_and STATUS CMD...: the status, and CMD succeeds.
st_and() {
	[ "$ST" = "$1" ] || return 1
	shift
	"$@"
}

cp "$TINY" "$WORK/tiny.elf" 2>/dev/null || : >"$WORK/tiny.elf"
spec() { printf '{"spec":{"name":"%s","memory_mib":"64","kernel":"%s"}}' "$1" "$WORK/tiny.elf"; }

"$VMMD" --state-dir "$WORK/var" --run-dir "$WORK/run" --allow-dir "$WORK" \
	--vmm "$VMM" >"$log" 2>&1 &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ] && kill -0 $pid 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
check "vmmd serves REST on $sock" [ -S "$sock" ]
mode=$(stat -c %a "$sock" 2>/dev/null)
check "the socket is mode 660 ($mode)" [ "$mode" = 660 ]

req GET /v1/version
check "GET /v1/version ($ST)" st_has 200 '"api":"vmmd.v1"'
grep -q -i '^content-type: application/json' "$hdrs"
check "JSON replies say application/json" [ $? -eq 0 ]

# -- routing errors --
req GET /v1/nothing
check "unknown path: 404 NOT_FOUND naming the path ($(cat "$body"))" \
	err_has 404 NOT_FOUND 'no such path: GET /v1/nothing'
req PUT /v1/vms/web
grep -q -i '^allow: GET, DELETE' "$hdrs"
g=$?
check "wrong verb: 405 with Allow ($ST $(cat "$body"))" st_and 405 [ $g -eq 0 ]
req GET /v1/vms/web:start
check "an action by GET is a wrong verb, not an id ($ST)" [ "$ST" = 405 ]
req POST /metrics
check "POST /metrics: 405 ($ST)" st_has 405 '"error":{"code":"'

# -- decoding errors --
req POST /v1/vms -d "{\"spec\":{\"name\":\"a\"},\"colour\":\"red\"}"
check "unknown field: 400 INVALID_ARGUMENT naming it ($(cat "$body"))" \
	err_has 400 INVALID_ARGUMENT '"field":"colour"'
req POST /v1/vms -d '{"spec":{"name":"a","wheels":4}}'
check "unknown nested field is named by its path ($(cat "$body"))" \
	err_has 400 INVALID_ARGUMENT '"field":"spec.wheels"'
req POST /v1/vms -d '{"spec":'
check "malformed JSON: 400 ($(cat "$body"))" err_has 400 INVALID_ARGUMENT 'invalid JSON'
req POST /v1/vms -d '[1,2]'
check "a body that is no object: 400 ($ST)" err 400 INVALID_ARGUMENT
req POST /v1/vms -d '{"spec":{"name":"a","vcpus":"many"}}'
check "wrong type: 400 naming the field ($(cat "$body"))" \
	err_has 400 INVALID_ARGUMENT '"field":"spec.vcpus"'
head -c 2097152 /dev/zero | tr '\0' ' ' >"$WORK/big"
req POST /v1/vms --data-binary @"$WORK/big"
check "2 MiB body: 413 RESOURCE_EXHAUSTED ($ST)" err 413 RESOURCE_EXHAUSTED
req POST /v1/vms -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big"
check "2 MiB chunked body: 413 RESOURCE_EXHAUSTED ($ST)" err 413 RESOURCE_EXHAUSTED
req GET '/v1/vms?colour=red'
check "unknown query parameter: 400 naming it ($(cat "$body"))" \
	err_has 400 INVALID_ARGUMENT '"field":"colour"'
req GET '/v1/vms/web/console?tail_kib=lots'
check "query parameter of the wrong type: 400 naming it ($(cat "$body"))" \
	err_has 400 INVALID_ARGUMENT '"field":"tail_kib"'
req DELETE '/v1/vms/web?force=perhaps'
check "bool query parameter: 400 naming it ($(cat "$body"))" \
	err_has 400 INVALID_ARGUMENT '"field":"force"'
req GET /v1/vms/nope
! has_json 'no such path'
g=$?
err 404 NOT_FOUND
e=$?
check "GET unknown VM: 404 NOT_FOUND, not an unknown path ($(cat "$body"))" \
	[ $e -eq 0 -a $g -eq 0 ]

# -- a VM's life without running it, watched over server-sent events --
curl -s -N --unix-socket "$sock" -D "$WORK/sse.hdrs" "http://localhost/v1/events" \
	>"$WORK/sse" 2>/dev/null &
sse=$!
sleep 0.5
req POST /v1/vms -d "$(spec web)"
check "create: 200 with an Operation ($(cat "$body"))" \
	st_has 200 '"kind":"OPERATION_KIND_CREATE"'
i=0
while ! grep -q EVENT_KIND_VM_CREATED "$WORK/sse" && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill $sse 2>/dev/null
wait $sse 2>/dev/null
grep -q -i '^content-type: text/event-stream' "$WORK/sse.hdrs"
check "GET /v1/events is text/event-stream" [ $? -eq 0 ]
check "the event stream delivers the create event ($(head -c 200 "$WORK/sse" | tr "\n" " "))" \
	grep -q '^data: {.*"kind":"EVENT_KIND_VM_CREATED"' "$WORK/sse"
seq=$(sed -n 's/^id: \([0-9]*\)$/\1/p' "$WORK/sse" | head -n 1)
check "events carry their seq as the SSE id ($seq)" [ -n "$seq" ]

i=0
while req GET /v1/vms/web && ! has_json VM_STATE_STOPPED && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "GET /v1/vms/web by name ($ST)" st_has 200 '"name":"web"'
# A reconnecting EventSource sends Last-Event-ID: the events after it are
# replayed (the VM's state change to stopped came after its creation).
curl -s -N --max-time 1 --unix-socket "$sock" -H "Last-Event-ID: $seq" \
	"http://localhost/v1/events" >"$WORK/sse2" 2>/dev/null
first=$(sed -n 's/^id: \([0-9]*\)$/\1/p' "$WORK/sse2" | head -n 1)
check "Last-Event-ID: $seq replays from the next event (first id: $first)" \
	[ "$first" = $((seq + 1)) ]
curl -s -N --max-time 1 --unix-socket "$sock" "http://localhost/v1/events?after_seq=$seq" \
	>"$WORK/sse3" 2>/dev/null
check "?after_seq= replays the same" cmp -s "$WORK/sse2" "$WORK/sse3"
req POST /v1/vms -d "$(spec web)"
check "create a duplicate name: 409 ALREADY_EXISTS ($(cat "$body"))" err 409 ALREADY_EXISTS
req POST /v1/vms/web:pause
check "pause a stopped VM: 409 FAILED_PRECONDITION naming its state ($(cat "$body"))" \
	err_has 409 FAILED_PRECONDITION stopped
req GET /v1/vms
check "list has the VM ($ST)" st_has 200 '"name":"web"'

# -- servicing: refusals that need no running VM --
req POST /v1/vms/web:service -d '{"paravisor":"bin/paravisor"}'
check "service with a relative paravisor path: 400 on paravisor ($(cat "$body"))" \
	err_has 400 INVALID_ARGUMENT '"field":"paravisor"'
req POST /v1/vms/web:service -d '{"paravisor":"/nonexistent/paravisor"}'
check "service with a missing paravisor binary: 409 naming it ($(cat "$body"))" \
	err_has 409 FAILED_PRECONDITION '/nonexistent/paravisor' '"field":"paravisor"'
req POST /v1/vms/web:service
check "service of a VM without paravisor disks: 409 saying so ($(cat "$body"))" \
	err_has 409 FAILED_PRECONDITION 'no device served by a paravisor'
req POST /v1/paravisor:service -d '{"max_parallel":2}'
check "fleet service with no VM to service: 200, no operations ($(cat "$body"))" \
	sh -c "[ '$ST' = 200 ] && ! grep -q operations '$body'"

# -- the OpenAPI document against the server --
req GET /v1/openapi.json
cmp -s "$body" "$VMMD_SRCDIR/api/openapi.json"
g=$?
check "GET /v1/openapi.json serves api/openapi.json ($ST)" st_and 200 [ $g -eq 0 ]
if command -v python3 >/dev/null 2>&1; then
	python3 - "$body" >"$WORK/routes" 2>"$WORK/py.err" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["openapi"].startswith("3.0"), doc["openapi"]
for path, ops in doc["paths"].items():
    for verb in ops:
        print(verb.upper(), path)
EOF
	g=$?
	check "openapi.json is an OpenAPI 3.0 document ($(cat "$WORK/py.err"))" [ $g -eq 0 ]
	# Every route of api/routes.c is in the document...
	missing=
	for r in $(grep -o '"\(GET\|POST\|DELETE\|PUT\|PATCH\)", "[^"]*"' "$VMMD_SRCDIR/api/routes.c" |
		sed 's/"\([A-Z]*\)", "\([^"]*\)"/\1@\2/'); do
		grep -q -x -F "$(echo "$r" | tr @ ' ')" "$WORK/routes" || missing="$missing $r"
	done
	check "every route of api/routes.c is documented (missing:$missing)" [ -z "$missing" ]
	# ...and every documented route is one the server has.
	bad=
	while read -r verb path; do
		p=$(echo "$path" | sed 's/{[a-z_]*}/no-such-vm-0/g')
		ST=$(curl -s -X "$verb" --max-time 2 --unix-socket "$sock" -o "$body" \
			-w '%{http_code}' "http://localhost$p")
		if [ "$ST" = 405 ] || grep -q 'no such path' "$body"; then
			bad="$bad $verb:$path=$ST"
		fi
	done <"$WORK/routes"
	check "every documented route is served (not served:$bad)" [ -z "$bad" ]
	"$VMMD_SRCDIR/scripts/openapi-gen" --check >"$WORK/gen.err" 2>&1
	g=$?
	check "api/openapi.json is what scripts/openapi-gen makes of api/vmm.proto ($(cat "$WORK/gen.err"))" \
		[ $g -eq 0 ]
else
	skip "openapi.json is an OpenAPI 3.0 document (no python3)"
	skip "every route of api/routes.c is documented (no python3)"
	skip "every documented route is served (no python3)"
	skip "api/openapi.json is what scripts/openapi-gen makes of api/vmm.proto (no python3)"
fi

# -- metrics --
req GET /metrics
grep -q -i '^content-type: text/plain; version=0.0.4' "$hdrs"
g=$?
check "GET /metrics is Prometheus text ($ST)" st_and 200 [ $g -eq 0 ]
missing=
for m in vmmd_vm_state vmmd_vm_vcpus vmmd_vm_memory_bytes vmmd_api_requests_total \
	vmmd_api_request_duration_seconds_bucket; do
	grep -q "^$m{" "$body" || missing="$missing $m"
done
check "metrics has per-VM and API series (missing:$missing)" [ -z "$missing" ]
check "REST requests are counted by route and status" \
	grep -q '^vmmd_api_requests_total{transport="rest",route="CreateVm",code="409"} [1-9]' "$body"
check "unknown paths are counted as route \"unknown\"" \
	grep -q '^vmmd_api_requests_total{transport="rest",route="unknown",code="404"} [1-9]' "$body"

req DELETE /v1/vms/web
check "delete: 200 with an Operation ($(cat "$body"))" \
	st_has 200 OPERATION_KIND_DELETE
i=0
while req GET /v1/vms/web && [ "$ST" = 200 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "the deleted VM is gone ($ST)" err 404 NOT_FOUND

kill -TERM $pid
wait $pid
RC=$?
check "vmmd exits 0 on SIGTERM ($RC)" [ $RC -eq 0 ]
check "... and removes its socket" [ ! -e "$sock" ]
sanitizer_clean "$log" || show "$log"
check "no sanitizer report" sanitizer_clean "$log"

# -- TCP: TLS with client certificates, or nothing --
port=$((20000 + $$ % 20000))
"$VMMD" --state-dir "$WORK/var" --run-dir "$WORK/run2" --rest-listen "127.0.0.1:$port" \
	>"$WORK/notls.log" 2>&1 &
p2=$!
sleep 1
kill -0 $p2 2>/dev/null && kill -TERM $p2
wait $p2
RC=$?
grep -q -i tls "$WORK/notls.log"
g=$?
check "TCP without TLS is refused at start naming TLS ($RC: $(tail -n 1 "$WORK/notls.log"))" \
	[ $RC -ne 0 -a $g -eq 0 ]
if command -v openssl >/dev/null 2>&1; then
	t=$WORK/tls
	mkdir -p "$t"
	cd "$t" || exit 1
	for n in ca other; do
		openssl req -x509 -newkey rsa:2048 -nodes -keyout $n.key -out $n.pem -days 2 \
			-subj "/CN=$n" 2>/dev/null
	done
	echo 'subjectAltName=IP:127.0.0.1' >ext
	for n in srv:ca cli:ca bad:other; do
		c=${n%:*}
		a=${n#*:}
		openssl req -newkey rsa:2048 -nodes -keyout $c.key -out $c.csr -subj "/CN=$c" 2>/dev/null
		openssl x509 -req -in $c.csr -CA $a.pem -CAkey $a.key -CAcreateserial -out $c.pem \
			-days 2 -extfile ext 2>/dev/null
	done
	cd - >/dev/null || exit 1
	"$VMMD" --state-dir "$WORK/var" --run-dir "$WORK/run3" --rest-listen "127.0.0.1:$port" \
		--tls-cert "$t/srv.pem" --tls-key "$t/srv.key" --tls-ca "$t/ca.pem" \
		>"$WORK/tls.log" 2>&1 &
	p3=$!
	i=0
	while [ ! -S "$WORK/run3/vmmd.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	u="https://127.0.0.1:$port/v1/version"
	ST=$(curl -s --cacert "$t/ca.pem" --cert "$t/cli.pem" --key "$t/cli.key" -o "$body" \
		-w '%{http_code}' "$u")
	check "TLS with a client certificate of the CA: 200 ($ST)" [ "$ST" = 200 ]
	ST=$(curl -s --cacert "$t/ca.pem" -o "$body" -w '%{http_code}' "$u")
	check "TLS without a client certificate: 403 PERMISSION_DENIED ($ST)" \
		err 403 PERMISSION_DENIED
	ST=$(curl -s --cacert "$t/ca.pem" --cert "$t/bad.pem" --key "$t/bad.key" -o "$body" \
		-w '%{http_code}' "$u")
	check "TLS with a certificate of another CA: refused ($ST)" [ "$ST" != 200 ]
	ST=$(curl -s -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/v1/version")
	check "plain HTTP on the TLS port: no answer ($ST)" [ "$ST" != 200 ]
	kill -TERM $p3
	wait $p3
	RC=$?
	check "vmmd with TLS exits 0 on SIGTERM ($RC)" [ $RC -eq 0 ]
	sanitizer_clean "$WORK/tls.log" || show "$WORK/tls.log"
else
	skip "TLS tests (no openssl)"
fi

tap_plan
