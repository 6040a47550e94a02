/*
 * tests/guest/tiny/vrng.c — virtio-rng: 32 bytes from the device's one
 * queue, printed in hex.  The contract is in tiny.c.
 */
#include "virtio.h"
#include "uart.h"

#define VRNG_WANT 32u
#define VRNG_TIMEOUT_S 5

void vrng__run(void)
{
	struct virtio_dev vd;
	uint32_t buf, got = 0, id, len, tries = 0;

	if (!virtio__find(VIRTIO_ID_RNG, 0, &vd)) {
		uart__puts("tiny: no virtio-rng device\n");
		tiny__poweroff();
	}
	if (!virtio__start(&vd, 1))
		tiny__poweroff();
	buf = vd.mem + VIRTIO_DATA_OFF;
	/* The device may fill less than asked: ask again for the rest. */
	while (got < VRNG_WANT && tries++ < VRNG_WANT) {
		struct virtio_buf b = { buf + got, VRNG_WANT - got, true };

		virtq__submit(&vd.vq[0], &b, 1);
		virtq__kick(&vd.vq[0]);
		if (!virtq__wait(&vd.vq[0], VRNG_TIMEOUT_S, &id, &len)) {
			uart__puts("tiny: virtio-rng timeout after ");
			uart__put_dec(got);
			uart__puts(" bytes\n");
			tiny__poweroff();
		}
		if (len > VRNG_WANT - got) {
			uart__puts("tiny: virtio-rng used length too big\n");
			tiny__poweroff();
		}
		got += len;
	}
	uart__puts("tiny: virtio-rng ");
	uart__put_dec(got);
	uart__puts(" bytes ");
	virtio__put_hex_bytes((const uint8_t *)buf, got);
	uart__putc('\n');
	tiny__poweroff();
}
