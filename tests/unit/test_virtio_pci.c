/* tests/unit/test_virtio_pci.c — the virtio-pci transport without KVM: the
 * capability layout, feature negotiation and the status machine, queue set
 * up (including a guest writing garbage), MSI-X masking with the PBA, and
 * ioeventfds following the BAR.  KVM is replaced by a recording fake. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/virtio_pci.h"

/* --- a fake KVM --- */

static struct {
	int next_gsi;
	int routes, irqfd_assigned[8], signals;
	uint64_t last_msi_addr;
	uint32_t last_msi_data;
	int irqfd_gsi_of_call0; /* gsi call_fd[0] is bound to, -1 */
	bool watching[8];
	void (*watch_fn[8])(int, uint32_t, void *);
	void *watch_opaque[8];
	int watch_fd[8];
	uint64_t ioevent_addr[8];
	int ioevents;
} hw;

static struct virtio_pci vp;
static struct pci_host host;
static int call0_fd;

static int fake_msi_route(void *ctx, int gsi, uint64_t addr, uint32_t data)
{
	hw.routes++;
	return gsi < 0 ? hw.next_gsi++ : gsi;
}

static int fake_irqfd(void *ctx, int efd, int gsi, bool assign)
{
	if (efd == call0_fd)
		hw.irqfd_gsi_of_call0 = assign ? gsi : -1;
	return 0;
}

static int fake_signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
	hw.signals++;
	hw.last_msi_addr = addr;
	hw.last_msi_data = data;
	return 0;
}

static int fake_watch(void *ctx, int efd, bool on, void (*fn)(int, uint32_t, void *), void *opaque)
{
	for (int i = 0; i < 8; i++) {
		if (on && !hw.watching[i]) {
			hw.watching[i] = true;
			hw.watch_fn[i] = fn;
			hw.watch_opaque[i] = opaque;
			hw.watch_fd[i] = efd;
			return 0;
		}
		if (!on && hw.watching[i] && hw.watch_fd[i] == efd) {
			hw.watching[i] = false;
			return 0;
		}
	}
	return -ENOENT;
}

static int fake_ioeventfd(void *ctx, uint64_t addr, uint32_t len, int efd, bool assign)
{
	assert_int_equal(len, 2);
	if (assign) {
		hw.ioevent_addr[hw.ioevents++] = addr;
	} else {
		for (int i = 0; i < hw.ioevents; i++)
			if (hw.ioevent_addr[i] == addr)
				hw.ioevent_addr[i] = hw.ioevent_addr[--hw.ioevents];
	}
	return 0;
}

static const struct virtio_pci_hw fake_hw = {
    .msi_route = fake_msi_route,
    .irqfd = fake_irqfd,
    .signal_msi = fake_signal_msi,
    .watch = fake_watch,
    .ioeventfd = fake_ioeventfd,
};

/* Runs the event loop callbacks of watched fds that are readable. */
static void fake_loop_run(void)
{
	for (int i = 0; i < 8; i++)
		if (hw.watching[i])
			hw.watch_fn[i](hw.watch_fd[i], 0, hw.watch_opaque[i]);
}

/* --- a fake model with two queues, and guest RAM --- */

static struct virtio_device vdev;
static int starts, stops;
static uint8_t ram[1 << 16];
static struct guest_mem mem = {.nr = 1, .r = {{.gpa = 0x100000, .size = sizeof(ram), .hva = ram}}};

static uint64_t m_features(struct virtio_device *d)
{
	return 1ULL << 5;
}
static uint16_t m_qmax(struct virtio_device *d, unsigned int q)
{
	return 128;
}
static int m_start(struct virtio_device *d)
{
	starts++;
	return 0;
}
static void m_stop(struct virtio_device *d)
{
	stops++;
}
static void m_config_read(struct virtio_device *d, uint32_t off, void *data, uint32_t len)
{
	memset(data, 0xab, len);
}

static const struct virtio_device_ops m_ops = {
    .type = "virtio-test",
    .device_id = VIRTIO_ID_BLOCK,
    .features = m_features,
    .queue_max_size = m_qmax,
    .config_size = 8,
    .config_read = m_config_read,
    .start = m_start,
    .stop = m_stop,
};

static int setup(void **state)
{
	memset(&hw, 0, sizeof(hw));
	hw.next_gsi = 24;
	hw.irqfd_gsi_of_call0 = -1;
	memset(&vdev, 0, sizeof(vdev));
	vdev.ops = &m_ops;
	vdev.nr_queues = 2;
	vdev.mem = &mem;
	strcpy(vdev.id, "t0");
	starts = stops = 0;
	assert_int_equal(virtio_pci__init(&vp, &vdev, &fake_hw, NULL), 0);
	call0_fd = vdev.call_fd[0];
	pci_host__init(&host, NULL);
	assert_int_equal(pci_host__add(&host, &vp.pci, PCI_DEVFN(3, 0)), 0);
	return 0;
}

static int teardown(void **state)
{
	virtio_pci__exit(&vp);
	pci_host__destroy(&host);
	return 0;
}

static uint32_t bar_read(uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	virtio_pci__bar_io(&vp, off, (uint8_t *)&v, len, false);
	return v;
}

static void bar_write(uint32_t off, uint32_t len, uint32_t v)
{
	virtio_pci__bar_io(&vp, off, (uint8_t *)&v, len, true);
}

static uint32_t cfg_read(uint32_t reg, uint32_t len)
{
	return pci_host__cfg_read(&host, 0, PCI_DEVFN(3, 0), reg, len);
}

static void cfg_write(uint32_t reg, uint32_t len, uint32_t v)
{
	pci_host__cfg_write(&host, 0, PCI_DEVFN(3, 0), reg, len, v);
}

static uint8_t status(void)
{
	return (uint8_t)bar_read(0x14, 1);
}

/* Negotiates features like Linux does; returns the final status. */
static uint8_t negotiate(uint32_t lo, uint32_t hi)
{
	bar_write(0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	bar_write(0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	bar_write(0x08, 4, 0);
	bar_write(0x0c, 4, lo);
	bar_write(0x08, 4, 1);
	bar_write(0x0c, 4, hi);
	bar_write(0x14, 1,
		  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return status();
}

static void setup_queue(uint16_t q, uint16_t size, uint64_t base)
{
	bar_write(0x16, 2, q);
	bar_write(0x18, 2, size);
	bar_write(0x20, 4, (uint32_t)base);
	bar_write(0x24, 4, (uint32_t)(base >> 32));
	bar_write(0x28, 4, (uint32_t)(base + 0x1000));
	bar_write(0x2c, 4, 0);
	bar_write(0x30, 4, (uint32_t)(base + 0x2000));
	bar_write(0x34, 4, 0);
	bar_write(0x1c, 2, 1);
}

/* --- tests --- */

static void test_virtio_pci_ids_and_capabilities(void **state)
{
	unsigned int seen = 0, off;
	int guard = 0;

	assert_int_equal(cfg_read(PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(cfg_read(PCI_REVISION_ID, 1), 1);
	assert_int_equal(cfg_read(PCI_REVISION_ID, 4) >> 8, 0x018000);
	assert_int_equal(cfg_read(PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(PCI_INTERRUPT_PIN, 1), 0);
	assert_int_equal(cfg_read(PCI_BAR0 + 16, 4) & 0xf, PCI_BAR_MEM64 | PCI_BAR_PREFETCH);
	/* BAR sizing: all ones reads back the size mask. */
	cfg_write(PCI_BAR0 + 16, 4, 0xffffffff);
	assert_int_equal(cfg_read(PCI_BAR0 + 16, 4) & ~0xfu, (uint32_t) ~(VIRTIO_PCI_BAR_SIZE - 1));
	cfg_write(PCI_BAR0 + 16, 4, 0);

	assert_true(cfg_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (off = cfg_read(PCI_CAPABILITY_LIST, 1); off && guard < 16;
	     off = cfg_read(off + 1, 1), guard++) {
		uint8_t id = (uint8_t)cfg_read(off, 1);

		if (id == 0x11) {
			assert_int_equal(cfg_read(off + 2, 2) & 0x7ff, 2); /* 3 vectors */
			assert_int_equal(cfg_read(off + 4, 4), VIRTIO_PCI_MSIX_TABLE_OFF | 4);
			assert_int_equal(cfg_read(off + 8, 4), VIRTIO_PCI_MSIX_PBA_OFF | 4);
			seen |= 1u << 0;
			continue;
		}
		assert_int_equal(id, 0x09);
		assert_int_equal(cfg_read(off + 4, 1), VIRTIO_PCI_BAR);
		switch (cfg_read(off + 3, 1)) {
		case 1:
			assert_int_equal(cfg_read(off + 8, 4), VIRTIO_PCI_COMMON_OFF);
			assert_true(cfg_read(off + 12, 4) >= 0x38);
			break;
		case 2:
			assert_int_equal(cfg_read(off + 2, 1), 20);
			assert_int_equal(cfg_read(off + 8, 4), VIRTIO_PCI_NOTIFY_OFF);
			assert_int_equal(cfg_read(off + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
			break;
		case 3: assert_int_equal(cfg_read(off + 8, 4), VIRTIO_PCI_ISR_OFF); break;
		case 4:
			assert_int_equal(cfg_read(off + 8, 4), VIRTIO_PCI_DEVICE_OFF);
			assert_int_equal(cfg_read(off + 12, 4), 8);
			break;
		default: fail_msg("unexpected cfg_type");
		}
		seen |= 1u << cfg_read(off + 3, 1);
	}
	assert_int_equal(seen, 0x1f);
	assert_int_equal(bar_read(0x12, 2), 2);		   /* num_queues */
	assert_int_equal(bar_read(0x2000, 4), 0xabababab); /* device config */
	assert_int_equal(bar_read(0x2008, 4), 0);	   /* past config_size */
}

static void test_virtio_pci_offers_version_1_and_ring_features(void **state)
{
	bar_write(0x00, 4, 0);
	assert_int_equal(bar_read(0x04, 4), (1u << 5) | (1u << 28) | (1u << 29));
	bar_write(0x00, 4, 1);
	assert_int_equal(bar_read(0x04, 4), 1u); /* VERSION_1 */
	bar_write(0x00, 4, 7);
	assert_int_equal(bar_read(0x04, 4), 0);
}

static void test_virtio_pci_refuses_features_without_version_1(void **state)
{
	assert_false(negotiate(1u << 5, 0) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_virtio_pci_refuses_features_not_offered(void **state)
{
	assert_false(negotiate(1u << 6, 1) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_virtio_pci_accepts_offered_features(void **state)
{
	assert_true(negotiate((1u << 5) | (1u << 29), 1) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_device__has(&vdev, VIRTIO_F_VERSION_1));
	assert_true(virtio_device__has(&vdev, VIRTIO_F_EVENT_IDX));
	/* Features are frozen after FEATURES_OK. */
	bar_write(0x08, 4, 0);
	bar_write(0x0c, 4, 0);
	assert_true(virtio_device__has(&vdev, VIRTIO_F_EVENT_IDX));
}

static void test_virtio_pci_driver_ok_starts_and_reset_stops(void **state)
{
	negotiate(0, 1);
	setup_queue(0, 64, 0x100000);
	assert_true(vdev.vqs[0].enabled);
	assert_int_equal(vdev.vqs[0].size, 64);
	assert_int_equal(bar_read(0x1c, 2), 1);
	bar_write(0x14, 1, 0x0f);
	assert_int_equal(starts, 1);
	assert_int_equal(status(), 0x0f);

	bar_write(0x14, 1, 0);
	assert_int_equal(stops, 1);
	assert_int_equal(status(), 0);
	assert_false(vdev.vqs[0].enabled);
	assert_int_equal(vdev.driver_features, 0);
	bar_write(0x16, 2, 0);
	assert_int_equal(bar_read(0x18, 2), 128); /* back to the maximum */
	assert_int_equal(bar_read(0x1c, 2), 0);
	assert_int_equal(bar_read(0x1a, 2), VIRTIO_MSI_NO_VECTOR);
}

static void test_virtio_pci_fails_device_on_bad_queue_size(void **state)
{
	uint64_t v = 0;

	negotiate(0, 1);
	bar_write(0x16, 2, 0);
	bar_write(0x18, 2, 3);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(bar_read(0x18, 2), 128); /* not taken */
	/* The config interrupt was raised. */
	assert_int_equal(read(vdev.config_call_fd, &v, sizeof(v)), sizeof(v));
	/* Larger than the maximum is refused too; a reset clears it all. */
	bar_write(0x18, 2, 256);
	assert_int_equal(bar_read(0x18, 2), 128);
	bar_write(0x14, 1, 0);
	assert_int_equal(status(), 0);
}

static void test_virtio_pci_fails_device_on_rings_outside_ram(void **state)
{
	negotiate(0, 1);
	setup_queue(1, 64, 0x40000000);
	assert_false(vdev.vqs[1].enabled);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_virtio_pci_fails_driver_ok_without_features_ok(void **state)
{
	bar_write(0x14, 1,
		  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(starts, 0);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_virtio_pci_ignores_out_of_range_accesses(void **state)
{
	uint8_t big[8] = {0};

	bar_write(0x16, 2, 999); /* no such queue */
	assert_int_equal(bar_read(0x18, 2), 0);
	bar_write(0x18, 2, 16);
	bar_write(0x1c, 2, 1);
	bar_write(0x1a, 2, 5); /* no such vector: reads back NO_VECTOR */
	bar_write(0x16, 2, 0);
	bar_write(0x1a, 2, 5);
	assert_int_equal(bar_read(0x1a, 2), VIRTIO_MSI_NO_VECTOR);
	bar_write(0x10, 2, 3);
	assert_int_equal(bar_read(0x10, 2), VIRTIO_MSI_NO_VECTOR);
	virtio_pci__bar_io(&vp, 0x36, big, 8, true);	/* straddles the end */
	virtio_pci__bar_io(&vp, 0x7ff8, big, 8, false); /* unused space */
	virtio_pci__bar_io(&vp, VIRTIO_PCI_MSIX_TABLE_OFF + 1, big, 2, true);
	assert_int_equal(status(), 0);
}

static void test_virtio_pci_notify_write_kicks_without_ioeventfd(void **state)
{
	uint64_t v = 0;

	bar_write(VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT, 2, 1);
	assert_int_equal(read(vdev.kick_fd[1], &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	assert_int_equal(read(vdev.kick_fd[0], &v, sizeof(v)), -1);
}

static void test_virtio_pci_ioeventfds_follow_bar_and_decode(void **state)
{
	cfg_write(PCI_BAR0 + 16, 4, 0x00000000);
	cfg_write(PCI_BAR0 + 20, 4, 0x80);
	assert_int_equal(hw.ioevents, 0); /* memory decode off */
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(hw.ioevents, 2);
	assert_true(hw.ioevent_addr[0] == 0x8000000000ULL + VIRTIO_PCI_NOTIFY_OFF ||
		    hw.ioevent_addr[1] == 0x8000000000ULL + VIRTIO_PCI_NOTIFY_OFF);
	cfg_write(PCI_BAR0 + 16, 4, 0x00010000);
	assert_int_equal(hw.ioevents, 2);
	for (int i = 0; i < 2; i++)
		assert_true(hw.ioevent_addr[i] >= 0x8000010000ULL + VIRTIO_PCI_NOTIFY_OFF);
	cfg_write(PCI_COMMAND, 2, 0);
	assert_int_equal(hw.ioevents, 0);
}

/* MSI-X on, vector 0 for queue 0 at (addr, data). */
static void msix_setup(void)
{
	uint32_t cap = (uint32_t)vp.msix_cap;

	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 0, 4, 0xfee00000);
	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 4, 4, 0);
	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 8, 4, 0x4041);
	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4, 0); /* unmask */
	cfg_write(cap + 2, 2, 0x8000);
	bar_write(0x16, 2, 0);
	bar_write(0x1a, 2, 0);
	assert_int_equal(bar_read(0x1a, 2), 0);
}

static void test_virtio_pci_msix_binds_irqfd_when_unmasked(void **state)
{
	assert_int_equal(hw.irqfd_gsi_of_call0, -1); /* MSI-X disabled */
	msix_setup();
	assert_int_equal(hw.irqfd_gsi_of_call0, 24);
	/* Disabling MSI-X unbinds. */
	cfg_write((uint32_t)vp.msix_cap + 2, 2, 0);
	assert_int_equal(hw.irqfd_gsi_of_call0, -1);
}

static void test_virtio_pci_msix_masked_vector_sets_pba_then_fires(void **state)
{
	uint64_t one = 1;

	msix_setup();
	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4, 1); /* mask */
	assert_int_equal(hw.irqfd_gsi_of_call0, -1);
	assert_int_equal(write(vdev.call_fd[0], &one, sizeof(one)), sizeof(one));
	fake_loop_run();
	assert_int_equal(hw.signals, 0);
	assert_int_equal(bar_read(VIRTIO_PCI_MSIX_PBA_OFF, 4), 1);

	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4, 0); /* unmask */
	assert_int_equal(hw.signals, 1);
	assert_int_equal(hw.last_msi_addr, 0xfee00000);
	assert_int_equal(hw.last_msi_data, 0x4041);
	assert_int_equal(bar_read(VIRTIO_PCI_MSIX_PBA_OFF, 4), 0);
	assert_int_equal(hw.irqfd_gsi_of_call0, 24);
}

static void test_virtio_pci_msix_function_mask_holds_interrupts(void **state)
{
	uint32_t cap;
	uint64_t one = 1;

	msix_setup();
	cap = (uint32_t)vp.msix_cap;
	cfg_write(cap + 2, 2, 0xc000); /* enable + function mask */
	assert_int_equal(hw.irqfd_gsi_of_call0, -1);
	assert_int_equal(write(vdev.call_fd[0], &one, sizeof(one)), sizeof(one));
	fake_loop_run();
	assert_int_equal(bar_read(VIRTIO_PCI_MSIX_PBA_OFF, 4), 1);
	cfg_write(cap + 2, 2, 0x8000);
	assert_int_equal(hw.signals, 1);
	assert_int_equal(hw.irqfd_gsi_of_call0, 24);
}

static void test_virtio_pci_msix_table_rejects_odd_accesses(void **state)
{
	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4, 0xfffffffe); /* only bit 0 is writable */
	assert_int_equal(bar_read(VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4), 0);
	bar_write(VIRTIO_PCI_MSIX_TABLE_OFF + 3 * 16, 4, 1); /* vector 3 does not exist */
	assert_int_equal(bar_read(VIRTIO_PCI_MSIX_TABLE_OFF + 3 * 16, 4), 0);
}

static void test_virtio_pci_restore_rejects_garbage(void **state)
{
	uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff, 0x12, 0x34};
	uint8_t *buf;
	size_t len;

	negotiate(0, 1);
	setup_queue(0, 32, 0x100000);
	assert_int_equal(virtio_pci__save(&vp, &buf, &len), 0);
	assert_int_equal(virtio_pci__restore(&vp, junk, sizeof(junk)), -EINVAL);
	/* The saved state goes back in, queue enabled again. */
	bar_write(0x14, 1, 0);
	assert_false(vdev.vqs[0].enabled);
	assert_int_equal(virtio_pci__restore(&vp, buf, len), 0);
	assert_true(vdev.vqs[0].enabled);
	assert_int_equal(vdev.vqs[0].size, 32);
	assert_true(status() & VIRTIO_STATUS_FEATURES_OK);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_virtio_pci_ids_and_capabilities),
	    T(test_virtio_pci_offers_version_1_and_ring_features),
	    T(test_virtio_pci_refuses_features_without_version_1),
	    T(test_virtio_pci_refuses_features_not_offered),
	    T(test_virtio_pci_accepts_offered_features),
	    T(test_virtio_pci_driver_ok_starts_and_reset_stops),
	    T(test_virtio_pci_fails_device_on_bad_queue_size),
	    T(test_virtio_pci_fails_device_on_rings_outside_ram),
	    T(test_virtio_pci_fails_driver_ok_without_features_ok),
	    T(test_virtio_pci_ignores_out_of_range_accesses),
	    T(test_virtio_pci_notify_write_kicks_without_ioeventfd),
	    T(test_virtio_pci_ioeventfds_follow_bar_and_decode),
	    T(test_virtio_pci_msix_binds_irqfd_when_unmasked),
	    T(test_virtio_pci_msix_masked_vector_sets_pba_then_fires),
	    T(test_virtio_pci_msix_function_mask_holds_interrupts),
	    T(test_virtio_pci_msix_table_rejects_odd_accesses),
	    T(test_virtio_pci_restore_rejects_garbage),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
