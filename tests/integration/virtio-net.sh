#!/bin/sh
# virtio-net under vmm with Debian's cloud kernel (natively or inside the
# nested lab): slirp DHCP, the guest fetching a page from a host HTTP server
# through 10.0.2.2, a name resolved through slirp's 10.0.2.3, a host client
# reaching a guest server through hostfwd, and a tap device with a static address on both ends.
. "$(dirname "$0")/lib.sh"

CMDLINE_BASE="console=ttyS0 panic=-1 quiet"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
HOSTPORT=${VMMD_NET_HOSTPORT:-18080}
HTTPPORT=${VMMD_NET_HTTPPORT:-8000}


if [ ! -r "$GUEST_KERNEL" ] || [ ! -r "$GUEST_INITRD" ]; then
	not_ok "Linux guest artifacts exist (run tests/guest/linux/build)"
	tap_plan
	exit 1
fi

# Bad --net values fail with one line naming the NIC and the key, exit 2.
for bad in "slirp,hostfwd=tcp:1.2.3:80-:80" "slirp,mac=01:00:5e:00:00:01" "slirp,bogus=1" \
	"vde" "tap=thisnameiswaytoolongforlinux"; do
	run_vmm "$WORK/bad" 30 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 128M \
		--net "$bad"
	lines=$(grep -c . "$WORK/bad")
	if [ "$RC" -eq 2 ] && [ "$lines" -eq 1 ] && has "$WORK/bad" "net0"; then
		ok "--net $bad is refused with one line and exit 2"
	else
		not_ok "--net $bad is refused with one line and exit 2"
		show "$WORK/bad"
	fi
done

# A host HTTP server for the guest (10.0.2.2 is the host's loopback).
slirp_www "$HTTPPORT"
# The guest: DHCP, print the lease, fetch the host page, then serve one
# line on 8080 until a host client has it.
# And resolve a name through slirp's 10.0.2.3 (answered by dnsreply).
slirp_dns_start
guest=$(slirp_guest "$HTTPPORT" "$DNS_GUEST")
"$WORK/vmm-resolv" "$WORK/resolv.conf" "$VMM" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
	--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$guest")" \
	--net "slirp,hostfwd=tcp:127.0.0.1:$HOSTPORT-:8080" </dev/null >"$WORK/slirp" 2>&1 &
vmm=$!
# Connect through hostfwd once the guest listens.
slirp_listening "$WORK/slirp"
slirp_client "$WORK/slirp" "$HOSTPORT"
i=0
while kill -0 $vmm 2>/dev/null && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
kill -KILL $vmm 2>/dev/null
wait $vmm
RC=$?
kill $httpd $dnsd 2>/dev/null
diag "guest address: $(sed -n 's/.*VMMD-LEASE //p' "$WORK/slirp" | head -n1)"
result "the guest gets 10.0.2.15 by DHCP from slirp" slirp 0 "VMMD-LEASE 10.0.2.15 router 10.0.2.2"
result "the guest fetches a page from the host's HTTP server at 10.0.2.2" slirp 0 \
	"GOT VMMD-HOST-PAGE $$"
slirp_dns_check "$WORK/slirp" "the guest"
if [ "$got" = "VMMD-GUEST-SERVER hello" ] && has "$WORK/slirp" "VMMD-HOST-CLIENT hi"; then
	ok "a host client reaches the guest's server through hostfwd 127.0.0.1:$HOSTPORT"
else
	not_ok "a host client reaches the guest's server through hostfwd (got '$got')"
	show "$WORK/slirp"
fi

# tap: vmm opens (creates) tap0; the host side gets 192.168.77.1.
if [ -e /dev/net/tun ] || modprobe tun 2>/dev/null; then
	guest="ip link set eth0 up; ip addr add 192.168.77.2/24 dev eth0
sleep 2
ping -c 3 -W 5 192.168.77.1 | grep -E 'packets|bytes from' | head -n 2
timeout 20 wget -q -O - http://192.168.77.1:$HTTPPORT/index.html | sed 's/^/GOT /'"
	"$VMM" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --memory 256M \
		--cmdline "$CMDLINE_BASE vmmd.run64=$(b64 "$guest")" \
		--net "tap=vmmdtap0" </dev/null >"$WORK/tap" 2>&1 &
	vmm=$!
	i=0
	while ! ip link show vmmdtap0 >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	ip addr add 192.168.77.1/24 dev vmmdtap0
	ip link set vmmdtap0 up
	sleep 1
	busybox httpd -f -p "192.168.77.1:$HTTPPORT" -h "$WORK/www" &
	httpd=$!
	i=0
	while kill -0 $vmm 2>/dev/null && [ $i -lt 600 ]; do sleep 0.5; i=$((i + 1)); done
	RC=0
	if kill -0 $vmm 2>/dev/null; then
		RC=124 # never wait() on a worker that did not finish: it may not die
		kill -KILL $vmm 2>/dev/null
	else
		wait $vmm
		RC=$?
	fi
	kill $httpd 2>/dev/null
	result "the guest pings the host over tap" tap 0 "bytes from 192.168.77.1"
	result "the guest fetches a page from the host over tap" tap 0 "GOT VMMD-HOST-PAGE $$"
else
	ok "# SKIP tap: no /dev/net/tun"
fi

tap_plan
