/*
 * tests/guest/tiny/vnet.c — virtio-net: one DHCP DISCOVER out (broadcast,
 * from the MAC in the device config), then the first frame that comes back
 * (user networking answers with an OFFER).  The contract is in tiny.c.
 */
#include "virtio.h"
#include "uart.h"

#define VNET_RXQ 0
#define VNET_TXQ 1
#define VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1: always with VERSION_1 */
#define VNET_RX_BUFS 4
#define VNET_RX_BUF_LEN 2048u
#define VNET_TX_OFF VIRTIO_DATA_OFF
#define VNET_RX_OFF (VIRTIO_DATA_OFF + 0x1000)
#define VNET_TIMEOUT_S 5

#define ETH_HLEN 14
#define IP_HLEN 20
#define UDP_HLEN 8
#define BOOTP_LEN 548 /* 236 fixed + 312 options, as BOOTP servers expect */
#define DHCP_XID 0x54494e59u /* "TINY" */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t ip_checksum(const uint8_t *p, uint32_t len)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Ethernet + IPv4 + UDP 68 -> 255.255.255.255:67 + DHCP DISCOVER: length. */
static uint32_t vnet__build_discover(uint8_t *f, const uint8_t mac[6])
{
	uint8_t *ip = f + ETH_HLEN, *udp = ip + IP_HLEN, *bootp = udp + UDP_HLEN;
	uint8_t *opt = bootp + 236;
	uint32_t len = ETH_HLEN + IP_HLEN + UDP_HLEN + BOOTP_LEN;

	memset(f, 0, len);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, IP_HLEN + UDP_HLEN + BOOTP_LEN);
	put16(ip + 4, 1);
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	put32(ip + 16, 0xffffffffu);
	put16(ip + 10, ip_checksum(ip, IP_HLEN));
	put16(udp, 68);
	put16(udp + 2, 67);
	put16(udp + 4, UDP_HLEN + BOOTP_LEN); /* checksum 0: none */
	bootp[0] = 1; /* BOOTREQUEST */
	bootp[1] = 1; /* Ethernet */
	bootp[2] = 6;
	put32(bootp + 4, DHCP_XID);
	put16(bootp + 10, 0x8000); /* answer by broadcast */
	memcpy(bootp + 28, mac, 6);
	put32(opt, 0x63825363); /* magic cookie */
	opt += 4;
	*opt++ = 53, *opt++ = 1, *opt++ = 1; /* DHCP DISCOVER */
	*opt++ = 55, *opt++ = 3, *opt++ = 1, *opt++ = 3, *opt++ = 6;
	*opt = 255;
	return len;
}

static void vnet__print_mac(const uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		if (i)
			uart__putc(':');
		virtio__put_hex_bytes(&mac[i], 1);
	}
}

void vnet__run(void)
{
	static const uint8_t fallback_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct virtio_dev vd;
	uint8_t mac[6], *tx, *rx = NULL;
	uint32_t sent, received = 0, id, len, i;
	bool zero = true;

	if (!virtio__find(VIRTIO_ID_NET, 0, &vd)) {
		uart__puts("tiny: no virtio-net device\n");
		tiny__poweroff();
	}
	if (!virtio__start(&vd, 2))
		tiny__poweroff();
	for (i = 0; i < 6; i++) {
		mac[i] = virtio__cfg8(&vd, i);
		zero = zero && !mac[i];
	}
	if (zero)
		memcpy(mac, fallback_mac, 6);
	uart__puts("tiny: virtio-net mac ");
	vnet__print_mac(mac);
	uart__putc('\n');

	for (i = 0; i < VNET_RX_BUFS; i++) {
		struct virtio_buf b = { vd.mem + VNET_RX_OFF + i * VNET_RX_BUF_LEN,
					VNET_RX_BUF_LEN, true };

		virtq__submit(&vd.vq[VNET_RXQ], &b, 1);
	}
	virtq__kick(&vd.vq[VNET_RXQ]);

	tx = (uint8_t *)(vd.mem + VNET_TX_OFF);
	memset(tx, 0, VNET_HDR_LEN);
	sent = vnet__build_discover(tx + VNET_HDR_LEN, mac);
	virtq__submit(&vd.vq[VNET_TXQ],
		      &(struct virtio_buf){ vd.mem + VNET_TX_OFF,
					    VNET_HDR_LEN + sent, false }, 1);
	virtq__kick(&vd.vq[VNET_TXQ]);
	if (!virtq__wait(&vd.vq[VNET_TXQ], VNET_TIMEOUT_S, &id, &len)) {
		uart__puts("tiny: virtio-net tx timeout\n");
		sent = 0;
	}
	if (virtq__wait(&vd.vq[VNET_RXQ], VNET_TIMEOUT_S, &id, &len) &&
	    id < VNET_RX_BUFS && len > VNET_HDR_LEN && len <= VNET_RX_BUF_LEN) {
		received = len - VNET_HDR_LEN;
		rx = (uint8_t *)(vd.mem + VNET_RX_OFF + id * VNET_RX_BUF_LEN) +
		     VNET_HDR_LEN;
	}
	uart__puts("tiny: virtio-net sent ");
	uart__put_dec(sent);
	uart__puts(" bytes, received ");
	uart__put_dec(received);
	uart__puts(" bytes\n");
	if (rx && received >= ETH_HLEN) {
		uart__puts("tiny: virtio-net rx from ");
		vnet__print_mac(rx + 6);
		uart__puts(" type 0x");
		virtio__put_hex_bytes(rx + 12, 2);
		if (received >= ETH_HLEN + IP_HLEN + UDP_HLEN &&
		    rx[12] == 0x08 && rx[13] == 0x00 && rx[ETH_HLEN + 9] == 17) {
			const uint8_t *udp = rx + ETH_HLEN + (rx[ETH_HLEN] & 0xf) * 4;

			if (udp + UDP_HLEN <= rx + received) {
				uart__puts(" udp ");
				uart__put_dec((uint32_t)udp[0] << 8 | udp[1]);
				uart__puts("->");
				uart__put_dec((uint32_t)udp[2] << 8 | udp[3]);
			}
		}
		uart__putc('\n');
	}
	/* A test that services the NIC with its rings running keeps us. */
	if (tiny_opts.heartbeat_print)
		return;
	tiny__poweroff();
}
