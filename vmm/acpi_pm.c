/*
 * vmm/acpi_pm.c — ACPI fixed hardware: PM1a event and control blocks, the
 * 3.579545 MHz PM timer and the SCI (IRQ 9, level, active high).
 *
 * ACPI is always enabled (SMI_CMD is 0), so SCI_EN reads as 1.  The power
 * button is a fixed feature: vm->power_button sets PWRBTN_STS, and the SCI
 * is asserted while any enabled status bit is set.  Sleeping in S5 is the
 * only sleep state there is: it powers the VM off.
 *
 * The unit test includes this file, so everything here stays static.
 */
#include "common/log.h"
#include "vmm/layout.h"
#include "vmm/state.pb-c.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PM_TIMER_HZ 3579545ULL

#define STS_TMR	   0x0001
#define STS_BM	   0x0010
#define STS_GBL	   0x0020
#define STS_PWRBTN 0x0100
#define STS_RTC	   0x0400
#define STS_WAK	   0x8000
#define STS_MASK   (STS_TMR | STS_BM | STS_GBL | STS_PWRBTN | STS_RTC | STS_WAK)
#define EN_MASK	   (STS_TMR | STS_GBL | STS_PWRBTN | STS_RTC)

#define CNT_SCI_EN	  0x0001
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP_MASK  (7 << CNT_SLP_TYP_SHIFT)
#define CNT_SLP_EN	  0x2000

struct acpi_pm {
	pthread_mutex_t lock;
	struct vm *vm;
	uint64_t (*clock_ns)(void); /* CLOCK_MONOTONIC; unit tests set their own */
	void (*set_irq)(struct acpi_pm *pm, int level);
	uint16_t sts, en, cnt;
	uint32_t timer_offset; /* added to the tick count, for restore */
	int irq_level;
};

static struct acpi_pm pm0;

static uint64_t acpi_pm__monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void acpi_pm__vm_irq(struct acpi_pm *pm, int level)
{
	vm__set_irq(pm->vm, ACPI_SCI_IRQ, level);
}

/* 128-bit product: ns * 3.58 MHz overflows 64 bits after 85 minutes. */
static uint32_t acpi_pm__ticks(struct acpi_pm *pm)
{
	unsigned __int128 t = (unsigned __int128)pm->clock_ns() * PM_TIMER_HZ;

	return (uint32_t)(t / 1000000000ULL) + pm->timer_offset;
}

static void acpi_pm__update_sci(struct acpi_pm *pm)
{
	int level = !!(pm->sts & pm->en & EN_MASK);

	if (level != pm->irq_level) {
		pm->irq_level = level;
		pm->set_irq(pm, level);
	}
}

static void acpi_pm__write_cnt(struct acpi_pm *pm, uint16_t val)
{
	unsigned int typ = (val & CNT_SLP_TYP_MASK) >> CNT_SLP_TYP_SHIFT;

	/* SLP_EN is write-only and SCI_EN is fixed at 1. */
	pm->cnt = (uint16_t)((val & ~CNT_SLP_EN) | CNT_SCI_EN);
	if (!(val & CNT_SLP_EN))
		return;
	if (typ == ACPI_S5_SLP_TYP)
		vm__request_stop(pm->vm, VM_STOP_POWEROFF, "guest powered off (ACPI S5)");
	else
		pr_warn_once("acpi: guest asked for sleep type %u; only S5 exists", typ);
}

/* PM1a_EVT: status at +0 (write 1 to clear), enable at +2.  Both 16 bit;
 * any byte of them can be accessed alone. */
static void acpi_pm__evt_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint8_t regs[4];

	pthread_mutex_lock(&pm->lock);
	memcpy(regs, &pm->sts, 2);
	memcpy(regs + 2, &pm->en, 2);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t o = offset + i;

		if (o >= 4) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (!is_write) {
			data[i] = regs[o];
		} else if (o < 2) {
			uint16_t clear = (uint16_t)(data[i] << (8 * o));

			pm->sts &= (uint16_t) ~(clear & STS_MASK);
		} else {
			uint16_t v = (uint16_t)(data[i] << (8 * (o - 2)));
			uint16_t keep = (uint16_t)(0xff00 >> (8 * (o - 2)));

			pm->en = (uint16_t)((pm->en & keep) | (v & EN_MASK));
		}
	}
	acpi_pm__update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm__cnt_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint16_t v;

	pthread_mutex_lock(&pm->lock);
	v = pm->cnt;
	for (uint32_t i = 0; i < len; i++) {
		uint64_t o = offset + i;

		if (o >= 2) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			v = (uint16_t)((v & ~(0xff << (8 * o))) | data[i] << (8 * o));
		else
			data[i] = (uint8_t)(v >> (8 * o));
	}
	/* A byte write of the high half alone still carries SLP_EN. */
	if (is_write)
		acpi_pm__write_cnt(pm, v);
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm__tmr_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint32_t t;

	if (is_write)
		return; /* read-only */
	t = acpi_pm__ticks(pm);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < 4 ? (uint8_t)(t >> (8 * (offset + i))) : 0xff;
}

static void acpi_pm__power_button(struct vm *vm)
{
	struct acpi_pm *pm = &pm0;

	pthread_mutex_lock(&pm->lock);
	pm->sts |= STS_PWRBTN;
	acpi_pm__update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static int acpi_pm__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct acpi_pm *pm = opaque;
	Vmmd__State__V1__AcpiPmState s = VMMD__STATE__V1__ACPI_PM_STATE__INIT;

	pthread_mutex_lock(&pm->lock);
	s.pm1_sts = pm->sts;
	s.pm1_en = pm->en;
	s.pm1_cnt = pm->cnt;
	s.pm_timer = acpi_pm__ticks(pm);
	pthread_mutex_unlock(&pm->lock);
	*len = vmmd__state__v1__acpi_pm_state__get_packed_size(&s);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	vmmd__state__v1__acpi_pm_state__pack(&s, *buf);
	return 0;
}

static int acpi_pm__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct acpi_pm *pm = opaque;
	Vmmd__State__V1__AcpiPmState *s = vmmd__state__v1__acpi_pm_state__unpack(NULL, len, buf);

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&pm->lock);
	pm->sts = s->pm1_sts & STS_MASK;
	pm->en = s->pm1_en & EN_MASK;
	pm->cnt = (uint16_t)((s->pm1_cnt & ~CNT_SLP_EN) | CNT_SCI_EN);
	/* The timer continues from the saved value on this host's clock. */
	pm->timer_offset = 0;
	pm->timer_offset = s->pm_timer - acpi_pm__ticks(pm);
	pm->irq_level = -1;
	acpi_pm__update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	vmmd__state__v1__acpi_pm_state__free_unpacked(s, NULL);
	return 0;
}

static const struct state_ops acpi_pm_state_ops = {
    .section = "acpi_pm",
    .save = acpi_pm__save,
    .restore = acpi_pm__restore,
};

static void acpi_pm__setup(struct acpi_pm *pm, struct vm *vm)
{
	pthread_mutex_init(&pm->lock, NULL);
	pm->vm = vm;
	pm->clock_ns = acpi_pm__monotonic_ns;
	pm->set_irq = acpi_pm__vm_irq;
	pm->sts = pm->en = 0;
	pm->cnt = CNT_SCI_EN;
	pm->timer_offset = 0;
	pm->irq_level = 0;
}

static int acpi_pm__init(struct vm *vm)
{
	struct acpi_pm *pm = &pm0;
	int err;

	acpi_pm__setup(pm, vm);
	err = bus__register(&vm->pio_bus, ACPI_PM1A_EVT_PORT, 4, acpi_pm__evt_io, pm,
			    "acpi pm1a_evt");
	if (!err)
		err = bus__register(&vm->pio_bus, ACPI_PM1A_CNT_PORT, 2, acpi_pm__cnt_io, pm,
				    "acpi pm1a_cnt");
	if (!err)
		err = bus__register(&vm->pio_bus, ACPI_PM_TMR_PORT, 4, acpi_pm__tmr_io, pm,
				    "acpi pm_tmr");
	if (!err)
		err = vm__register_state(vm, &acpi_pm_state_ops, pm);
	if (err < 0)
		return err;
	vm->power_button = acpi_pm__power_button;
	return 0;
}

static void acpi_pm__exit(struct vm *vm)
{
	if (vm->power_button == acpi_pm__power_button)
		vm->power_button = NULL;
}

device_init(acpi_pm__init, acpi_pm__exit);
