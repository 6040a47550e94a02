/* tests/unit/test_paravisor_main.c — the paravisor command as vmm runs it:
 * a real paravisor/paravisor process, sandboxed, serving several devices of
 * one VM, each on its own socketpair, with vmm's vhost-user front-end model
 * (virtio/vhost_user_front.c) on the other ends playing vmm and the test
 * playing the guest: rings in a memfd the process maps, real reads from
 * each disk's image, a real frame out of a NIC.  No KVM is needed. */
#include "net/socket.h"
#include "net/tap.h"
#include "tests/unit/pv_proc.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/vhost_user_front.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define RAM_SIZE (1u << 20)
#define QSIZE	 16
/* Queue q's ring and buffers in guest RAM, at q * QUEUE_SPAN. */
#define QUEUE_SPAN 0x8000u
#define DESC_OFF   0x0000u
#define AVAIL_OFF  0x1000u
#define USED_OFF   0x2000u
#define BUF_OFF	   0x3000u

#define F_NEXT	1
#define F_WRITE 2

/* One device's front-end: vmm's model of it and the guest's RAM. */
struct fe {
	int memfd;
	uint8_t *ram;
	struct guest_mem gm;
	struct virtio_device *vdev;
	int kick[2], call[2];
};

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", pv_tmpdir, name);
}

/* An image of 1 MiB whose sector 3 holds seed's pattern (see read_sector3). */
static void make_image(const char *name, uint8_t seed)
{
	uint8_t sector[512];
	char path[300];
	int fd;

	path_of(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	for (int i = 0; i < 512; i++)
		sector[i] = (uint8_t)(i * 5 + seed);
	assert_int_equal(pwrite(fd, sector, sizeof(sector), (off_t)3 * 512), 512);
	close(fd);
}

/* A command line that must be refused: exit 2, want in the log. */
static void pv_refused(const int *fds, int nr_fds, const char *const *args, const char *want)
{
	struct pv p;

	pv_start(&p, fds, nr_fds, args);
	assert_int_equal(pv_exit(&p, 20), 2);
	pv_log_has(&p, want);
}

/* --- the front-ends --- */

static uint8_t *at(struct fe *f, unsigned int q, uint32_t off)
{
	return f->ram + (size_t)q * QUEUE_SPAN + off;
}

static void desc(struct fe *f, unsigned int q, uint16_t i, uint32_t off, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	uint8_t *d = at(f, q, DESC_OFF) + (size_t)16 * i;
	uint64_t gpa = (uint64_t)q * QUEUE_SPAN + off;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static struct vhost_user_front_cfg fe_cfg(const char *id, bool net)
{
	return (struct vhost_user_front_cfg){
	    .id = id,
	    .type = net ? "virtio-net" : "virtio-blk",
	    .device_id = net ? VIRTIO_ID_NET : VIRTIO_ID_BLOCK,
	    .config_size =
		net ? sizeof(struct virtio_net_config) : sizeof(struct virtio_blk_config),
	    .queue_size = net ? VIRTIO_NET_QUEUE_SIZE : VIRTIO_BLK_QUEUE_SIZE,
	    .nr_queues = net ? 2 : 1,
	    .timeout_ms = 5000,
	};
}

/* vmm's model of device id on sock, with guest RAM of its own. */
static void fe_open(struct fe *f, int sock, const char *id, bool net)
{
	struct vhost_user_front_cfg cfg = fe_cfg(id, net);
	char why[256] = "";

	memset(f, 0, sizeof(*f));
	f->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, RAM_SIZE), 0);
	f->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->ram != MAP_FAILED);
	f->gm.nr = 1;
	f->gm.r[0] = (struct guest_mem_region){0, RAM_SIZE, f->ram};
	cfg.mem_fd = f->memfd;
	cfg.mem_base = f->ram;
	f->vdev = vhost_user_front__create(sock, &cfg, why, sizeof(why));
	if (!f->vdev)
		fail_msg("%s: front-end set-up: %s", id, why);
	f->vdev->mem = &f->gm;
	f->vdev->config_call_fd = -1;
	for (unsigned int q = 0; q < f->vdev->nr_queues && q < 2; q++) {
		f->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		f->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(f->kick[q] >= 0 && f->call[q] >= 0);
		f->vdev->kick_fd[q] = f->kick[q];
		f->vdev->call_fd[q] = f->call[q];
	}
}

/* The connection closes: the paravisor's device sees its front-end go. */
static void fe_close(struct fe *f)
{
	if (f->vdev)
		f->vdev->ops->destroy(f->vdev);
	f->vdev = NULL;
	for (unsigned int q = 0; q < 2; q++) {
		if (f->kick[q] > 0)
			close(f->kick[q]);
		if (f->call[q] > 0)
			close(f->call[q]);
		f->kick[q] = f->call[q] = 0;
	}
	if (f->ram)
		munmap(f->ram, RAM_SIZE);
	f->ram = NULL;
	if (f->memfd > 0)
		close(f->memfd);
	f->memfd = 0;
}

/* The transport's part of DRIVER_OK: every queue, VIRTIO_F_VERSION_1. */
static void fe_start(struct fe *f)
{
	char why[128];

	f->vdev->driver_features = 1ULL << VIRTIO_F_VERSION_1;
	for (unsigned int q = 0; q < f->vdev->nr_queues && q < 2; q++) {
		struct virtq *vq = &f->vdev->vqs[q];

		vq->size = QSIZE;
		vq->desc_gpa = q * QUEUE_SPAN + DESC_OFF;
		vq->avail_gpa = q * QUEUE_SPAN + AVAIL_OFF;
		vq->used_gpa = q * QUEUE_SPAN + USED_OFF;
		vq->mem = &f->gm;
		assert_int_equal(virtq__enable(vq, why, sizeof(why)), 0);
	}
	assert_int_equal(f->vdev->ops->start(f->vdev), 0);
}

/* Offers chain head 0 at avail slot idx of queue q, kicks, and waits for
 * the used index to pass it. */
static void fe_submit(struct fe *f, unsigned int q, uint16_t idx)
{
	struct pollfd p = {f->call[q], POLLIN, 0};
	uint64_t v = 1;

	if (read(f->call[q], &v, 8) < 0)
		assert_int_equal(errno, EAGAIN);
	v = 1;
	*(uint16_t *)(at(f, q, AVAIL_OFF) + 4 + (size_t)2 * (idx % QSIZE)) = 0;
	__atomic_store_n((uint16_t *)(at(f, q, AVAIL_OFF) + 2), (uint16_t)(idx + 1),
			 __ATOMIC_RELEASE);
	assert_int_equal(write(f->kick[q], &v, 8), 8);
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(read(f->call[q], &v, 8), 8);
	assert_int_equal(__atomic_load_n((uint16_t *)(at(f, q, USED_OFF) + 2), __ATOMIC_ACQUIRE),
			 idx + 1);
}

/* Reads sector 3 at avail slot idx; it must hold seed's pattern. */
static void read_sector3(struct fe *f, uint16_t idx, uint8_t seed)
{
	uint32_t hdr[4] = {0 /* VIRTIO_BLK_T_IN */, 0, 3 /* sector */, 0};
	uint8_t want[512];

	memcpy(at(f, 0, BUF_OFF), hdr, 16);
	memset(at(f, 0, BUF_OFF + 0x100), 0, 512);
	*at(f, 0, BUF_OFF + 0x400) = 0xff;
	desc(f, 0, 0, BUF_OFF, 16, F_NEXT, 1);
	desc(f, 0, 1, BUF_OFF + 0x100, 512, F_NEXT | F_WRITE, 2);
	desc(f, 0, 2, BUF_OFF + 0x400, 1, F_WRITE, 0);
	fe_submit(f, 0, idx);
	assert_int_equal(*at(f, 0, BUF_OFF + 0x400), 0); /* VIRTIO_BLK_S_OK */
	for (int i = 0; i < 512; i++)
		want[i] = (uint8_t)(i * 5 + seed);
	assert_memory_equal(at(f, 0, BUF_OFF + 0x100), want, 512);
}

/* Sends a frame on the NIC's transmit queue (1) at avail slot idx; the
 * netstack's end of its socket (stack) must receive it. */
static void send_frame(struct fe *f, uint16_t idx, int stack)
{
	uint8_t frame[64], got[128];
	ssize_t n;

	for (unsigned int i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(0xa0 + i + idx);
	memset(at(f, 1, BUF_OFF), 0, NET_VNET_HDR_LEN);
	memcpy(at(f, 1, BUF_OFF + NET_VNET_HDR_LEN), frame, sizeof(frame));
	desc(f, 1, 0, BUF_OFF, NET_VNET_HDR_LEN + sizeof(frame), 0, 0);
	fe_submit(f, 1, idx);
	n = recv(stack, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(n, sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));
}

/* /proc/PID/ns/WHICH's target, in buf (64 bytes). */
static const char *ns_of(pid_t pid, const char *which, char *buf)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, which);
	n = readlink(path, buf, 63);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

/* A paravisor serving two devices, one on each new socketpair: s0[0] and
 * s1[0] are the test's ends, the process's ends are closed here. */
static void pv_start_two(struct pv *p, const char *const *args, int s0[2], int s1[2])
{
	int fds[2];

	pair(s0, SOCK_STREAM);
	pair(s1, SOCK_STREAM);
	fds[0] = s0[1];
	fds[1] = s1[1];
	pv_start(p, fds, 2, args);
	close(s0[1]);
	close(s1[1]);
}

/* --- several devices in one process --- */

/* Two disks on two images, one process: each front-end negotiates and
 * reads its own image; one connection ending leaves the other served, and
 * the process exits 0 once both front-ends closed. */
static void test_paravisor_serves_two_disks_on_their_own_connections(void **state)
{
	const char *const args[] = {"--fd", "3", "--disk", "path=@a.img,id=d0",
				    "--fd", "4", "--disk", "path=@b.img,id=d1",
				    NULL};
	int s0[2], s1[2];
	struct fe f0, f1;
	struct pv p;

	make_image("a.img", 1);
	make_image("b.img", 77);
	pv_start_two(&p, args, s0, s1);
	fe_open(&f0, s0[0], "d0", false);
	fe_open(&f1, s1[0], "d1", false);
	fe_start(&f0);
	fe_start(&f1);
	read_sector3(&f0, 0, 1);
	read_sector3(&f1, 0, 77);
	read_sector3(&f0, 1, 1);

	fe_close(&f0);
	read_sector3(&f1, 1, 77); /* still served, by the same process */
	pv_log_wait(&p, "d0: done (front-end gone); 1 device(s) still served");
	read_sector3(&f1, 2, 77);
	assert_true(pv_alive(&p));
	fe_close(&f1);
	assert_int_equal(pv_exit(&p, 20), 0);
	pv_log_has(&p, "d0: the front-end closed the connection");
	pv_log_has(&p, "d1: done (front-end gone); 0 device(s) still served");
	pv_log_has(&p, "sandbox entered");
}

/* A disk and a NIC whose stack is a netstack, in one sandbox: the union of
 * both devices' calls (the NIC's thread polls, which a disk's list lacks:
 * SIGSYS otherwise) and still no network of the host's. */
static void test_paravisor_serves_a_disk_and_a_socket_nic_in_one_sandbox(void **state)
{
	const char *const args[] = {
	    "--fd", "3", "--disk", "path=@a.img,id=d0",
	    "--fd", "4", "--net",  "socket,fd=5,mac=52:54:00:12:34:99,id=n0",
	    NULL};
	int s0[2], s1[2], stack[2], fds[3];
	char mine[64], its[64];
	uint8_t mac[6];
	struct fe f0, f1;
	struct pv p;

	make_image("a.img", 9);
	pair(s0, SOCK_STREAM);
	pair(s1, SOCK_STREAM);
	pair(stack, SOCK_SEQPACKET);
	fds[0] = s0[1];
	fds[1] = s1[1];
	fds[2] = stack[1];
	pv_start(&p, fds, 3, args);
	close(s0[1]);
	close(s1[1]);
	close(stack[1]);
	fe_open(&f0, s0[0], "d0", false);
	fe_open(&f1, s1[0], "n0", true);
	f1.vdev->ops->config_read(f1.vdev, 0, mac, sizeof(mac));
	assert_memory_equal(mac, ((uint8_t[]){0x52, 0x54, 0x00, 0x12, 0x34, 0x99}), 6);
	fe_start(&f0);
	fe_start(&f1);
	read_sector3(&f0, 0, 9);
	send_frame(&f1, 0, stack[0]);
	/* Where the host let it have namespaces, a network of its own. */
	if (strcmp(ns_of(getpid(), "mnt", mine), ns_of(p.pid, "mnt", its)))
		assert_string_not_equal(ns_of(getpid(), "net", mine), ns_of(p.pid, "net", its));

	fe_close(&f1); /* the NIC goes; the disk serves on */
	pv_log_wait(&p, "n0: done (front-end gone); 1 device(s) still served");
	read_sector3(&f0, 1, 9);
	assert_true(pv_alive(&p));
	fe_close(&f0);
	assert_int_equal(pv_exit(&p, 20), 0);
	close(stack[0]);
}

/* An interface's counter from /sys/class/net/IF/statistics. */
static unsigned long if_stat(const char *ifname, const char *which)
{
	char path[128];
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", ifname, which);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu", &v), 1);
	fclose(f);
	return v;
}

/* A tap NIC on the tap vmm would open and hand over: the sandboxed process
 * holds the tap, sets its offloads when the rings start (ioctl
 * TUNSETOFFLOAD: SIGSYS if the profile lacked it) and writes the guest's
 * frame to it through its io_uring: the interface receives it.  A
 * descriptor that is not a tap is refused, naming it.  Needs CAP_NET_ADMIN
 * for the tap; skipped without. */
static void test_paravisor_serves_a_tap_nic_in_its_sandbox(void **state)
{
	const char *const args[] = {"--fd", "3", "--net", "tap,fd=4,mac=52:54:00:12:34:98,id=n0",
				    NULL};
	struct ifreq ifr = {0};
	char err[160], link[64], path[64];
	unsigned long rx;
	int s1[2], fds[2], tap, up;
	struct fe f1;
	struct pv p;
	ssize_t n;

	tap = net_tap__open("vmmdpt0", err, sizeof(err));
	if (tap == -EPERM || tap == -ENOENT || tap == -ENODEV) {
		print_message("# %s\n", err);
		skip();
	}
	assert_true(tap >= 0);
	/* A tap refuses writes while its interface is down. */
	up = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vmmdpt0");
	assert_int_equal(ioctl(up, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(up, SIOCSIFFLAGS, &ifr), 0);
	close(up);
	rx = if_stat("vmmdpt0", "rx_packets");

	pair(s1, SOCK_STREAM);
	fds[0] = s1[1];
	fds[1] = tap;
	pv_start(&p, fds, 2, args);
	close(s1[1]);
	fe_open(&f1, s1[0], "n0", true);
	fe_start(&f1);
	memset(at(&f1, 1, BUF_OFF), 0, NET_VNET_HDR_LEN + 64);
	memset(at(&f1, 1, BUF_OFF + NET_VNET_HDR_LEN), 0xff, 6); /* broadcast */
	desc(&f1, 1, 0, BUF_OFF, NET_VNET_HDR_LEN + 64, 0, 0);
	fe_submit(&f1, 1, 0);
	assert_int_equal(if_stat("vmmdpt0", "rx_packets"), rx + 1);
	snprintf(path, sizeof(path), "/proc/%d/fd/4", (int)p.pid);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = 0;
	assert_string_equal(link, "/dev/net/tun");
	assert_true(pv_alive(&p));
	pv_log_has(&p, "n0\": the tap on descriptor 4");
	fe_close(&f1);
	assert_int_equal(pv_exit(&p, 20), 0);
	pv_log_has(&p, "sandbox entered");

	/* A socket where the tap should be. */
	pair(s1, SOCK_STREAM);
	fds[0] = s1[1];
	fds[1] = s1[0];
	pv_refused(fds, 2, args, "descriptor 4 is not a tap device");
	close(s1[0]);
	close(s1[1]);
	close(tap);
}

/* A front-end that breaks the protocol ends its own device only; the
 * process ends 1, naming it, once the others are gone too. */
static void test_paravisor_exits_1_naming_the_device_whose_front_end_broke(void **state)
{
	const char *const args[] = {"--fd", "3", "--disk", "path=@a.img,id=d0",
				    "--fd", "4", "--disk", "path=@b.img,id=d1",
				    NULL};
	/* A request header of protocol version 0. */
	const uint32_t bad[3] = {1 /* GET_FEATURES */, 0, 0};
	int s0[2], s1[2];
	struct fe f0;
	struct pv p;

	make_image("a.img", 3);
	make_image("b.img", 4);
	pv_start_two(&p, args, s0, s1);
	fe_open(&f0, s0[0], "d0", false);
	fe_start(&f0);
	read_sector3(&f0, 0, 3);
	assert_int_equal(write(s1[0], bad, sizeof(bad)), sizeof(bad));
	/* d1's end closes: its connection is over. */
	{
		struct pollfd pf = {s1[0], POLLIN, 0};
		char c;

		assert_int_equal(poll(&pf, 1, 10000), 1);
		assert_int_equal(read(s1[0], &c, 1), 0);
	}
	close(s1[0]);
	pv_log_wait(&p, "d1: done (the front-end broke the protocol); 1 device(s) still served");
	read_sector3(&f0, 1, 3);
	assert_true(pv_alive(&p));
	fe_close(&f0);
	assert_int_equal(pv_exit(&p, 20), 1);
	pv_log_has(&p, "d1: malformed message from the front-end");
	pv_log_has(&p, "exiting: the connection of d1 ended on an error");
}

/* --test-fail-restore-id: a servicing of a VM's two disks onto a new
 * process whose second disk refuses its state.  The first moves; the
 * second rolls back to the old process, which serves it on. */
static void test_paravisor_fail_restore_id_refuses_one_device_only(void **state)
{
	const char *const old_args[] = {"--fd", "3", "--disk", "path=@a.img,id=d0",
					"--fd", "4", "--disk", "path=@b.img,id=d1",
					NULL};
	const char *const new_args[] = {"--fd",
					"3",
					"--disk",
					"path=@a.img,id=d0",
					"--fd",
					"4",
					"--disk",
					"path=@b.img,id=d1",
					"--test-fail-restore-id",
					"d1",
					NULL};
	struct vhost_user_front_cfg cfg;
	struct vhost_user_front_swap res;
	struct virtio_device *n0, *n1;
	int s0[2], s1[2], t0[2], t1[2];
	char why[256] = "";
	struct fe f0, f1;
	struct pv old, new;

	make_image("a.img", 5);
	make_image("b.img", 6);
	pv_start_two(&old, old_args, s0, s1);
	fe_open(&f0, s0[0], "d0", false);
	fe_open(&f1, s1[0], "d1", false);
	fe_start(&f0);
	fe_start(&f1);
	read_sector3(&f0, 0, 5);
	read_sector3(&f1, 0, 6);

	pv_start_two(&new, new_args, t0, t1);
	cfg = fe_cfg("d0", false);
	cfg.mem_fd = f0.memfd;
	cfg.mem_base = f0.ram;
	n0 = vhost_user_front__create(t0[0], &cfg, why, sizeof(why));
	if (!n0)
		fail_msg("d0 on the new paravisor: %s", why);
	cfg = fe_cfg("d1", false);
	cfg.mem_fd = f1.memfd;
	cfg.mem_base = f1.ram;
	n1 = vhost_user_front__create(t1[0], &cfg, why, sizeof(why));
	if (!n1)
		fail_msg("d1 on the new paravisor: %s", why);

	if (vhost_user_front__replace(f0.vdev, n0, &res, why, sizeof(why)))
		fail_msg("servicing d0: %s", why);
	assert_true(res.state_us > 0); /* the state moved */
	read_sector3(&f0, 1, 5);       /* on the new process */
	assert_true(vhost_user_front__replace(f1.vdev, n1, &res, why, sizeof(why)) < 0);
	if (!strstr(why, "--test-fail-restore"))
		fail_msg("servicing d1 failed, but not by the test hook: %s", why);
	assert_true(res.old_running);
	read_sector3(&f1, 1, 6); /* on the old one */
	assert_true(pv_alive(&old));
	assert_true(pv_alive(&new));
	pv_log_has(&new, "d1: test hook: refuses any device state offered to it");
	pv_log_has(&new, "d1: device state refused: test hook --test-fail-restore");
	pv_log_has(&new, "d0: pid");
	pv_log_wait(&old, "d0: done (front-end gone); 1 device(s) still served");

	fe_close(&f0);
	fe_close(&f1);
	assert_int_equal(pv_exit(&old, 20), 0);
	assert_int_equal(pv_exit(&new, 20), 0);
}

/* The single-device forms: one disk on its --fd, also after it, as ever. */
static void test_paravisor_still_serves_one_device(void **state)
{
	const char *const before[] = {"--fd", "3", "--disk", "path=@a.img", NULL};
	const char *const after[] = {"--disk", "path=@a.img", "--fd", "3", NULL};
	const char *const *forms[] = {before, after};

	make_image("a.img", 11);
	for (int i = 0; i < 2; i++) {
		struct fe f;
		struct pv p;
		int s[2];

		pair(s, SOCK_STREAM);
		pv_start(&p, &s[1], 1, forms[i]);
		close(s[1]);
		fe_open(&f, s[0], "disk0", false);
		fe_start(&f);
		read_sector3(&f, 0, 11);
		fe_close(&f);
		assert_int_equal(pv_exit(&p, 20), 0);
	}
}

/* --- the command line --- */

static void test_paravisor_refuses_an_fd_without_a_device(void **state)
{
	make_image("a.img", 1);
	pv_refused(NULL, 0, (const char *const[]){"--fd", "3", NULL},
		   "--fd 3: no --disk or --net follows it");
	pv_refused(
	    NULL, 0,
	    (const char *const[]){"--fd", "3", "--disk", "path=@a.img,id=d0", "--fd", "4", NULL},
	    "--fd 4: no --disk or --net follows it");
	pv_refused(NULL, 0,
		   (const char *const[]){"--fd", "3", "--fd", "4", "--disk", "path=@a.img", NULL},
		   "--fd 3: followed by --fd 4");
}

static void test_paravisor_refuses_a_device_without_an_fd(void **state)
{
	make_image("a.img", 1);
	make_image("b.img", 2);
	pv_refused(NULL, 0,
		   (const char *const[]){"--fd", "3", "--disk", "path=@a.img,id=d0", "--disk",
					 "path=@b.img,id=d1", NULL},
		   "no --fd before it names the socket of its front-end");
	pv_refused(NULL, 0,
		   (const char *const[]){"--fd", "3", "--disk", "path=@a.img,id=d0", "--fd", "3",
					 "--disk", "path=@b.img,id=d1", NULL},
		   "--fd 3: given to two devices");
}

static void test_paravisor_refuses_two_devices_with_one_id(void **state)
{
	int s0[2], s1[2], fds[2];

	make_image("a.img", 1);
	make_image("b.img", 2);
	pair(s0, SOCK_STREAM);
	pair(s1, SOCK_STREAM);
	fds[0] = s0[1];
	fds[1] = s1[1];
	pv_refused(fds, 2,
		   (const char *const[]){"--fd", "3", "--disk", "path=@a.img,id=d0", "--fd", "4",
					 "--disk", "path=@b.img,id=d0", NULL},
		   "id \"d0\" is taken by --disk");
	/* Without id=, both would be "disk0". */
	pv_refused(fds, 2,
		   (const char *const[]){"--fd", "3", "--disk", "path=@a.img", "--fd", "4",
					 "--disk", "path=@b.img", NULL},
		   "id \"disk0\" is taken by --disk");
	pv_refused(fds, 2,
		   (const char *const[]){"--fd", "3", "--disk", "path=@a.img,id=d0", "--fd", "4",
					 "--disk", "path=@b.img,id=d1", "--test-fail-restore-id",
					 "d2", NULL},
		   "--test-fail-restore-id d2: no device has that id");
	close(s0[0]);
	close(s0[1]);
	close(s1[0]);
	close(s1[1]);
}

static void test_paravisor_refuses_socket_with_two_devices(void **state)
{
	make_image("a.img", 1);
	make_image("b.img", 2);
	pv_refused(NULL, 0,
		   (const char *const[]){"--socket", "@x.sock", "--disk", "path=@a.img,id=d0",
					 "--disk", "path=@b.img,id=d1", NULL},
		   "serves one device, not 2");
	pv_refused(NULL, 0,
		   (const char *const[]){"--netstack", "--fd", "3", "--net", "slirp", "--fd", "4",
					 "--net", "slirp,id=n1", NULL},
		   "--netstack runs the stack of one --net");
}

static void test_paravisor_refuses_more_than_16_devices(void **state)
{
	static const char *const fdn[] = {"3",	"4",  "5",  "6",  "7",	"8",  "9",  "10", "11",
					  "12", "13", "14", "15", "16", "17", "18", "19"};
	const char *args[PV_MAX_ARGS];
	char opt[17][64];
	int n = 0;

	make_image("a.img", 1);
	for (int i = 0; i < 17; i++) {
		snprintf(opt[i], sizeof(opt[i]), "path=@a.img,id=d%d", i);
		args[n++] = "--fd";
		args[n++] = fdn[i];
		args[n++] = "--disk";
		args[n++] = opt[i];
	}
	args[n] = NULL;
	pv_refused(NULL, 0, args, "more than 16 devices in one paravisor");
}

/* --- the netstack's control socket --- */

/* paravisor --netstack --control-fd: libslirp's state comes out and goes
 * back in; a state it cannot read, an unknown request and a short message
 * are each answered with an error, and the stack serves on (the next
 * request is answered); it exits 0 once its frame socket's other end is
 * closed, whatever the control socket does. */
static void test_netstack_saves_and_loads_slirp_state_on_its_control_socket(void **state)
{
	const char *const args[] = {"--netstack", "--fd",  "3",		  "--control-fd",
				    "4",	  "--net", "slirp,id=n0", NULL};
	static uint8_t st[NET_CTL_STATE_MAX], again[NET_CTL_STATE_MAX];
	const uint8_t junk[] = {4, 0, 0, 0, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
	int frames[2], ctl[2], fds[2];
	size_t len, len2;
	char ready[64];
	struct pv p;

	(void)state;
	pair(frames, SOCK_SEQPACKET);
	pair(ctl, SOCK_SEQPACKET);
	fds[0] = frames[1];
	fds[1] = ctl[1];
	pv_start(&p, fds, 2, args);
	close(frames[1]);
	close(ctl[1]);
	assert_int_equal(recv(frames[0], ready, sizeof(ready), 0), strlen(NET_SOCKET_READY));

	assert_int_equal(ns_ask(ctl[0], NET_CTL_SAVE, NULL, 0, -1, st, &len), 0);
	assert_true(len > 4); /* slirp's version, then its stream */
	assert_int_equal(ns_ask(ctl[0], NET_CTL_LOAD, st, len, -1, NULL, NULL), 0);
	assert_int_equal(ns_ask(ctl[0], NET_CTL_LOAD, junk, sizeof(junk), -1, NULL, NULL), -EINVAL);
	assert_int_equal(ns_ask(ctl[0], 77, NULL, 0, -1, NULL, NULL), -EOPNOTSUPP);
	assert_int_equal(send(ctl[0], "x", 1, 0), 1);
	assert_int_equal(recv(ctl[0], ready, sizeof(ready), 0),
			 (ssize_t)sizeof(struct net_ctl_msg));
	assert_int_equal(ns_ask(ctl[0], NET_CTL_SAVE, NULL, 0, -1, again, &len2), 0);
	assert_int_equal(len2, len);
	pv_log_has(&p, "netstack: slirp state saved");
	pv_log_has(&p, "netstack: slirp state loaded");
	pv_log_has(&p, "control request 2 failed: Invalid argument");

	close(ctl[0]); /* the stack runs on without it */
	usleep(100000);
	assert_true(pv_alive(&p));
	close(frames[0]);
	assert_int_equal(pv_exit(&p, 20), 0);
}

static int setup(void **state)
{
	snprintf(pv_tmpdir, sizeof(pv_tmpdir), "%s/test_paravisor_main.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(pv_tmpdir))
		return -1;
	/* The sandboxed paravisor (nobody, when started as root) reads its
	 * images only before it is confined; it writes its log to an fd. */
	chmod(pv_tmpdir, 0755);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pv_tmpdir);
	return system(cmd) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paravisor_serves_two_disks_on_their_own_connections),
	    cmocka_unit_test(test_paravisor_serves_a_disk_and_a_socket_nic_in_one_sandbox),
	    cmocka_unit_test(test_paravisor_serves_a_tap_nic_in_its_sandbox),
	    cmocka_unit_test(test_paravisor_exits_1_naming_the_device_whose_front_end_broke),
	    cmocka_unit_test(test_paravisor_fail_restore_id_refuses_one_device_only),
	    cmocka_unit_test(test_paravisor_still_serves_one_device),
	    cmocka_unit_test(test_paravisor_refuses_an_fd_without_a_device),
	    cmocka_unit_test(test_paravisor_refuses_a_device_without_an_fd),
	    cmocka_unit_test(test_paravisor_refuses_two_devices_with_one_id),
	    cmocka_unit_test(test_paravisor_refuses_socket_with_two_devices),
	    cmocka_unit_test(test_paravisor_refuses_more_than_16_devices),
	    cmocka_unit_test(test_netstack_saves_and_loads_slirp_state_on_its_control_socket),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
