/*
 * tests/guest/tiny/vblk.c — virtio-blk: a write, read-back and flush of one
 * 4 KiB block, and the malicious requests that a VMM must survive (a
 * descriptor loop, a buffer outside RAM, a zero-length header, a queue size
 * that is not a power of two).  The contract is in tiny.c.
 */
#include "virtio.h"
#include "rtc.h"
#include "tiny.h"
#include "uart.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_CFG_CAPACITY 0

#define VBLK_SECTOR 8
#define VBLK_LEN 4096u
#define VBLK_TIMEOUT_S 5
#define VBLK_BAD_WAIT_S 2
#define VBLK_STATUS_UNSET 0xff
#define VBLK_OOB_GPA 0xfff00000u

/* Buffers inside the device's area. */
#define VBLK_HDR_OFF (VIRTIO_DATA_OFF + 0x0000)
#define VBLK_STATUS_OFF (VIRTIO_DATA_OFF + 0x0100)
#define VBLK_WBUF_OFF (VIRTIO_DATA_OFF + 0x1000)
#define VBLK_RBUF_OFF (VIRTIO_DATA_OFF + 0x2000)

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static volatile struct virtio_blk_req_hdr *vblk__hdr(struct virtio_dev *vd,
						      uint32_t type)
{
	volatile struct virtio_blk_req_hdr *h =
		(volatile struct virtio_blk_req_hdr *)(vd->mem + VBLK_HDR_OFF);

	h->type = type;
	h->reserved = 0;
	h->sector = VBLK_SECTOR;
	*(volatile uint8_t *)(vd->mem + VBLK_STATUS_OFF) = VBLK_STATUS_UNSET;
	return h;
}

/* One request (data_len 0: header and status only); the status byte, or
 * -1 on a timeout. */
static int vblk__request(struct virtio_dev *vd, uint32_t type, uint32_t data,
			 uint32_t data_len)
{
	struct virtio_buf bufs[3];
	unsigned int n = 0;
	uint32_t id, len;

	vblk__hdr(vd, type);
	bufs[n++] = (struct virtio_buf){ vd->mem + VBLK_HDR_OFF, 16, false };
	if (data_len)
		bufs[n++] = (struct virtio_buf){ data, data_len,
						 type == VIRTIO_BLK_T_IN };
	bufs[n++] = (struct virtio_buf){ vd->mem + VBLK_STATUS_OFF, 1, true };
	virtq__submit(&vd->vq[0], bufs, n);
	virtq__kick(&vd->vq[0]);
	if (!virtq__wait(&vd->vq[0], VBLK_TIMEOUT_S, &id, &len))
		return -1;
	return *(volatile uint8_t *)(vd->mem + VBLK_STATUS_OFF);
}

/* " <what> ok", or " <what> timeout" / " <what> status N": false then. */
static bool vblk__report(const char *what, int status)
{
	uart__putc(' ');
	uart__puts(what);
	if (status == VIRTIO_BLK_S_OK) {
		uart__puts(" ok");
		return true;
	}
	if (status < 0) {
		uart__puts(" timeout");
	} else {
		uart__puts(" status ");
		uart__put_dec((uint32_t)status);
	}
	return false;
}

/* "tiny: virtio-blk capacity N write ok read ok match", flush status. */
static void vblk__exercise(struct virtio_dev *vd)
{
	uint8_t *wbuf = (uint8_t *)(vd->mem + VBLK_WBUF_OFF);
	uint8_t *rbuf = (uint8_t *)(vd->mem + VBLK_RBUF_OFF);
	uint64_t capacity = virtio__cfg32(vd, VIRTIO_BLK_CFG_CAPACITY) |
			    (uint64_t)virtio__cfg32(vd, VIRTIO_BLK_CFG_CAPACITY + 4)
				    << 32;
	uint32_t i;
	int st;

	/* blk_pause=S: the ring runs and nothing is asked of it for S
	 * seconds of the RTC, so a test can do things to the device's
	 * back-end (kill a paravisor) between its start and the requests. */
	if (tiny_opts.blk_pause) {
		uint8_t sec = rtc__raw_seconds();

		uart__puts("tiny: virtio-blk ring up, pausing ");
		uart__put_dec(tiny_opts.blk_pause);
		uart__puts(" s\n");
		for (i = 0; i < tiny_opts.blk_pause;) {
			uint8_t now = rtc__raw_seconds();

			if (now != sec) {
				sec = now;
				i++;
			}
		}
	}
	for (i = 0; i < VBLK_LEN; i++)
		wbuf[i] = (uint8_t)(i * 7 + (i >> 8) + 0x5a);
	memset(rbuf, 0, VBLK_LEN);
	uart__puts("tiny: virtio-blk capacity ");
	uart__put_dec(capacity);
	if (capacity < VBLK_SECTOR + VBLK_LEN / 512) {
		uart__puts(" too small\n");
		return;
	}
	if (!vblk__report("write", vblk__request(vd, VIRTIO_BLK_T_OUT,
						 vd->mem + VBLK_WBUF_OFF, VBLK_LEN)) ||
	    !vblk__report("read", vblk__request(vd, VIRTIO_BLK_T_IN,
						vd->mem + VBLK_RBUF_OFF, VBLK_LEN))) {
		uart__putc('\n');
		return;
	}
	for (i = 0; i < VBLK_LEN && wbuf[i] == rbuf[i]; i++)
		;
	if (i == VBLK_LEN) {
		uart__puts(" match\n");
	} else {
		uart__puts(" MISMATCH at byte ");
		uart__put_dec(i);
		uart__putc('\n');
	}
	st = vblk__request(vd, VIRTIO_BLK_T_FLUSH, 0, 0);
	uart__puts("tiny: virtio-blk flush ");
	if (st < 0) {
		uart__puts("timeout\n");
	} else {
		uart__puts("status ");
		uart__put_dec((uint32_t)st);
		uart__putc('\n');
	}
}

/* Puts the bad chain of this mode in queue 0 and kicks. */
static void vblk__send_bad(struct virtio_dev *vd, enum tiny_virtio mode)
{
	struct virtq *vq = &vd->vq[0];
	volatile struct virtq_desc *d = vq->desc;
	uint32_t hdr = vd->mem + VBLK_HDR_OFF;
	uint32_t status = vd->mem + VBLK_STATUS_OFF;

	switch (mode) {
	case VIRTIO_BLK_LOOP: /* 0 -> 1 -> 0 -> ... */
		vblk__hdr(vd, VIRTIO_BLK_T_OUT);
		d[0] = (struct virtq_desc){ hdr, 16, VIRTQ_DESC_F_NEXT, 1 };
		d[1] = (struct virtq_desc){ vd->mem + VBLK_WBUF_OFF, VBLK_LEN,
					    VIRTQ_DESC_F_NEXT, 0 };
		virtq__publish(vq, 0);
		break;
	case VIRTIO_BLK_OOB: /* the device would write outside RAM */
		vblk__hdr(vd, VIRTIO_BLK_T_IN);
		virtq__submit(vq, (const struct virtio_buf[]){
			{ hdr, 16, false },
			{ VBLK_OOB_GPA, VBLK_LEN, true },
			{ status, 1, true } }, 3);
		break;
	case VIRTIO_BLK_ZERO: /* a zero-length header and nothing else */
		vblk__hdr(vd, VIRTIO_BLK_T_IN);
		virtq__submit(vq, (const struct virtio_buf[]){ { hdr, 0, false } }, 1);
		break;
	default: /* VIRTIO_BLK_QSIZE: an honest write on a queue of size 3 */
		vblk__hdr(vd, VIRTIO_BLK_T_OUT);
		virtq__submit(vq, (const struct virtio_buf[]){
			{ hdr, 16, false },
			{ vd->mem + VBLK_WBUF_OFF, VBLK_LEN, false },
			{ status, 1, true } }, 3);
		break;
	}
	virtq__kick(vq);
}

/* "tiny: device status 0x<hex> needs-reset=<yes|no>" after up to 2 s. */
static void vblk__malicious(struct virtio_dev *vd, enum tiny_virtio mode)
{
	static const char *const names[] = {
		[VIRTIO_BLK_LOOP] = "descriptor loop",
		[VIRTIO_BLK_OOB] = "buffer outside RAM",
		[VIRTIO_BLK_ZERO] = "zero-length header",
		[VIRTIO_BLK_QSIZE] = "queue size 3",
	};
	struct deadline d;
	uint8_t status;

	if (!virtio__negotiate(vd) ||
	    !virtio__setup_queue(vd, 0, mode == VIRTIO_BLK_QSIZE ? 3 : 0))
		return;
	virtio__driver_ok(vd);
	uart__puts("tiny: virtio-blk sending a bad request: ");
	uart__puts(names[mode]);
	uart__putc('\n');
	vblk__send_bad(vd, mode);
	deadline__start(&d, VBLK_BAD_WAIT_S);
	do {
		status = virtio__status(vd);
	} while (!(status & VIRTIO_STATUS_NEEDS_RESET) && !deadline__passed(&d));
	uart__puts("tiny: device status ");
	uart__put_hex(status);
	uart__puts(status & VIRTIO_STATUS_NEEDS_RESET ? " needs-reset=yes\n" :
							" needs-reset=no\n");
	if (vd->vq[0].used->idx != vd->vq[0].last_used) {
		uart__puts("tiny: virtio-blk bad request completed, status byte ");
		uart__put_dec(*(volatile uint8_t *)(vd->mem + VBLK_STATUS_OFF));
		uart__putc('\n');
	}
}

void vblk__run(enum tiny_virtio mode)
{
	struct virtio_dev vd;

	if (!virtio__find(VIRTIO_ID_BLK, 0, &vd)) {
		uart__puts("tiny: no virtio-blk device\n");
		tiny__poweroff();
	}
	if (mode == VIRTIO_BLK) {
		if (virtio__start(&vd, 1))
			vblk__exercise(&vd);
		tiny__poweroff();
	}
	vblk__malicious(&vd, mode);
	/* The other disk must not have noticed. */
	if (!virtio__find(VIRTIO_ID_BLK, 1, &vd))
		uart__puts("tiny: no second virtio-blk device\n");
	else if (virtio__start(&vd, 1))
		vblk__exercise(&vd);
	tiny__poweroff();
}
