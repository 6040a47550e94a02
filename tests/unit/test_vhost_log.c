/* tests/unit/test_vhost_log.c — the paravisors' dirty log (vmm/vhost_log.c)
 * when a vhost-user back-end cannot log the pages it writes: the refusal
 * names the device and says why, so that a migration's status does too.
 *
 * The project's paravisor always offers logging, so the back-end here is
 * a minimal one on a thread, over a real socketpair, that answers the
 * front-end's handshake (vhost_user_front__create) and offers neither
 * LOG_SHMFD nor VHOST_F_LOG_ALL, as some vhost-user back-ends do. */
#include "virtio/device.h"
#include "virtio/vhost_user_front.h"
#include "virtio/vhost_user_msg.h"
#include "vmm/vhost_log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define RAM_SIZE (1u << 20)

/* Answers what the handshake asks until the front-end hangs up. */
static void *no_log_back_end(void *arg)
{
	int sock = *(int *)arg;
	struct vhost_user_msg m, r;
	char why[128];

	while (!vhost_user_msg__recv(sock, &m, why, sizeof(why))) {
		vhost_user_msg__close_fds(&m);
		memset(&r, 0, sizeof(r));
		r.hdr.request = m.hdr.request;
		r.hdr.flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY;
		switch (m.hdr.request) {
		case VHOST_USER_GET_FEATURES:
			r.p.u64 =
			    1ULL << VIRTIO_F_VERSION_1 | 1ULL << VHOST_USER_F_PROTOCOL_FEATURES;
			r.hdr.size = 8;
			break;
		case VHOST_USER_GET_PROTOCOL_FEATURES:
			r.p.u64 = 1ULL << VHOST_USER_PROTOCOL_F_CONFIG;
			r.hdr.size = 8;
			break;
		case VHOST_USER_GET_CONFIG:
			r.p.cfg.size = m.p.cfg.size;
			r.hdr.size = VHOST_USER_CONFIG_HDR_SIZE + m.p.cfg.size;
			break;
		default: continue; /* no REPLY_ACK: nothing to answer */
		}
		if (vhost_user_msg__send(sock, &r, NULL, 0))
			break;
	}
	close(sock);
	return NULL;
}

static void test_vhost_log_names_the_device_that_cannot_log(void **state)
{
	static struct vm vm;
	struct vhost_user_front_cfg cfg = {
	    .id = "data",
	    .type = "virtio-blk",
	    .device_id = 2,
	    .config_size = 60,
	    .queue_size = 128,
	    .nr_queues = 1,
	    .timeout_ms = 5000,
	};
	struct virtio_device *vdev;
	char why[400] = "";
	pthread_t thread;
	int sv[2], memfd;

	memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, RAM_SIZE), 0);
	vm.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(vm.ram != MAP_FAILED);
	vm.ram_size = vm.low_ram_size = RAM_SIZE;
	vm.mem.nr = 1;
	vm.mem.r[0] = (struct guest_mem_region){0, RAM_SIZE, vm.ram};
	cfg.mem_fd = memfd;
	cfg.mem_base = vm.ram;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pthread_create(&thread, NULL, no_log_back_end, &sv[1]), 0);
	vdev = vhost_user_front__create(sv[0], &cfg, why, sizeof(why));
	if (!vdev)
		fail_msg("front-end set-up: %s", why);
	assert_int_equal(vhost_log__register(&vm, vdev), 0);

	assert_int_equal(vhost_log__enable(&vm, true, why, sizeof(why)), -ENOTSUP);
	assert_non_null(strstr(why, "virtio-blk \"data\""));
	assert_non_null(strstr(why, "no LOG_SHMFD or VHOST_F_LOG_ALL"));
	/* Nothing was left half started: the same refusal again. */
	why[0] = '\0';
	assert_int_equal(vhost_log__enable(&vm, true, why, sizeof(why)), -ENOTSUP);
	assert_non_null(strstr(why, "virtio-blk \"data\""));
	vhost_log__enable(&vm, false, NULL, 0);

	vhost_log__unregister(&vm, vdev);
	vhost_log__release(&vm);
	vdev->ops->destroy(vdev); /* closes sv[0]: the back-end sees EOF */
	pthread_join(thread, NULL);
	munmap(vm.ram, RAM_SIZE);
	close(memfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vhost_log_names_the_device_that_cannot_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
