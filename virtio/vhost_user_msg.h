/* virtio/vhost_user_msg.h — the vhost-user wire protocol (QEMU's
 * docs/interop/vhost-user.rst): message layouts, request codes, feature bits,
 * and sending/receiving one message with its file descriptors.
 *
 * It lives in virtio/ rather than paravisor/ because both ends of the socket
 * are ours eventually: the paravisor is the back-end, and vmm will be a
 * front-end, and neither may include the other's layer.  Every number is in
 * the host's byte order, as the protocol says. */
#ifndef VMMD_VIRTIO_VHOST_USER_MSG_H
#define VMMD_VIRTIO_VHOST_USER_MSG_H

#include <stddef.h>
#include <stdint.h>

enum vhost_user_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SEND_RARP = 19,
	VHOST_USER_NET_SET_MTU = 20,
	VHOST_USER_SET_BACKEND_REQ_FD = 21,
	VHOST_USER_IOTLB_MSG = 22,
	VHOST_USER_SET_VRING_ENDIAN = 23,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_SET_STATUS = 39,
	VHOST_USER_GET_STATUS = 40,
	VHOST_USER_SET_DEVICE_STATE_FD = 42,
	VHOST_USER_CHECK_DEVICE_STATE = 43,
};

/* Header flags. */
#define VHOST_USER_VERSION	   0x1u
#define VHOST_USER_VERSION_MASK	   0x3u
#define VHOST_USER_FLAG_REPLY	   (1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3)

/* Virtio feature bits that belong to vhost(-user) itself. */
#define VHOST_F_LOG_ALL		       26
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ	     0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD	     1
#define VHOST_USER_PROTOCOL_F_REPLY_ACK	     3
#define VHOST_USER_PROTOCOL_F_CONFIG	     9
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHOST_USER_PROTOCOL_F_DEVICE_STATE   19

/* SET_VRING_KICK/CALL/ERR payload: ring index and "no fd" flag. */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD	  (1u << 8)

/* SET_VRING_ADDR flags: the used ring is dirty-logged. */
#define VHOST_VRING_F_LOG 0x1u

#define VHOST_USER_MAX_REGIONS	   8 /* SET_MEM_TABLE regions (and fds) */
#define VHOST_USER_MAX_FDS	   8
#define VHOST_USER_MAX_CONFIG_SIZE 256

struct vhost_user_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes that follow */
} __attribute__((packed));

struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
} __attribute__((packed));

struct vhost_user_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr; /* the front-end's mapping of it */
	uint64_t mmap_offset;	 /* into the region's fd */
} __attribute__((packed));

struct vhost_user_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_mem_region regions[VHOST_USER_MAX_REGIONS];
} __attribute__((packed));

struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VHOST_USER_MAX_CONFIG_SIZE];
} __attribute__((packed));

/* GET_INFLIGHT_FD / SET_INFLIGHT_FD: the region's fd travels with it.
 * 24 bytes: QEMU and libvhost-user send their struct unpacked, padded to
 * its 8-byte alignment, and check that size in answers. */
struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint8_t padding[4];
} __attribute__((packed));

#define VHOST_USER_CONFIG_HDR_SIZE 12u

/* SET_LOG_BASE payload: where in the attached fd the dirty log is. */
struct vhost_user_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
} __attribute__((packed));

/* SET_DEVICE_STATE_FD payload (with one fd: the pipe end to write or read). */
struct vhost_user_device_state {
	uint32_t direction; /* VHOST_USER_TRANSFER_SAVE or _LOAD */
	uint32_t phase;	    /* only VHOST_USER_PHASE_STOPPED */
} __attribute__((packed));

#define VHOST_USER_TRANSFER_SAVE 0u
#define VHOST_USER_TRANSFER_LOAD 1u
#define VHOST_USER_PHASE_STOPPED 0u
/* SET_DEVICE_STATE_FD's answer: bits 0-7 an error code, bit 8 "no fd of
 * the back-end's own comes with it" (the front-end's pipe is used). */
#define VHOST_USER_STATE_NO_FD (1ull << 8)
/* Larger than any payload we accept; a message that claims more is refused. */
#define VHOST_USER_MAX_PAYLOAD 512u

struct vhost_user_msg {
	struct vhost_user_hdr hdr;
	union {
		uint64_t u64;
		struct vhost_user_vring_state state;
		struct vhost_user_vring_addr addr;
		struct vhost_user_mem_table mem;
		struct vhost_user_config cfg;
		struct vhost_user_inflight inflight;
		struct vhost_user_log log;
		struct vhost_user_device_state dstate;
		uint8_t raw[VHOST_USER_MAX_PAYLOAD];
	} p;
	/* Received alongside the header (SCM_RIGHTS); the receiver owns them. */
	int fds[VHOST_USER_MAX_FDS];
	unsigned int nr_fds;
};

/*
 * Reads one whole message.  0: m is filled; -ECONNRESET: the peer closed the
 * connection between messages; -EPROTO: the message is malformed (why says
 * how; the stream cannot be trusted any more); other negative errno: the
 * socket failed.  On any error no fd is left open.
 */
int vhost_user_msg__recv(int sock, struct vhost_user_msg *m, char *why, size_t whylen);
/* The same for the front-end's side: a back-end's answer, REPLY bit set. */
int vhost_user_msg__recv_reply(int sock, struct vhost_user_msg *m, char *why, size_t whylen);
/* Sends header and hdr.size bytes of payload, with fds if nr_fds.  0 or -errno. */
int vhost_user_msg__send(int sock, const struct vhost_user_msg *m, const int *fds,
			 unsigned int nr_fds);
/* Closes the fds a message carried. */
void vhost_user_msg__close_fds(struct vhost_user_msg *m);
/* "SET_MEM_TABLE", or "request 77" for codes we do not know. */
const char *vhost_user_msg__name(uint32_t request, char *buf, size_t len);

#endif
