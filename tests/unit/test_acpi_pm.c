/* tests/unit/test_acpi_pm.c — PM1 registers, SCI, power button, S5 and the
 * PM timer.  Includes the device file for its static model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vmm/acpi_pm.c"

static struct vm vm;
/* The power-button hook works on the device instance itself. */
#define pm pm0
static uint64_t fake_ns;
static int sci;

static uint64_t fake_clock(void)
{
	return fake_ns;
}

static void fake_irq(struct acpi_pm *p, int level)
{
	sci = level;
}

static int setup(void **state)
{
	memset(&vm, 0, sizeof(vm));
	pthread_mutex_init(&vm.stop_lock, NULL);
	pthread_cond_init(&vm.stop_cond, NULL);
	vm.stop_efd = -1;
	acpi_pm__setup(&pm, &vm);
	pm.clock_ns = fake_clock;
	pm.set_irq = fake_irq;
	fake_ns = 0;
	sci = 0;
	return 0;
}

static uint16_t rd16(bus_io_fn fn, uint64_t off)
{
	uint8_t d[2];

	fn(&pm, off, d, 2, false);
	return (uint16_t)(d[0] | d[1] << 8);
}

static void wr16(bus_io_fn fn, uint64_t off, uint16_t v)
{
	uint8_t d[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	fn(&pm, off, d, 2, true);
}

static void test_acpi_pm_sci_en_reads_one(void **state)
{
	assert_int_equal(rd16(acpi_pm__cnt_io, 0) & CNT_SCI_EN, CNT_SCI_EN);
	wr16(acpi_pm__cnt_io, 0, 0);
	assert_int_equal(rd16(acpi_pm__cnt_io, 0) & CNT_SCI_EN, CNT_SCI_EN);
}

static void test_acpi_pm_power_button_raises_sci(void **state)
{
	acpi_pm__power_button(&vm);
	assert_int_equal(sci, 0); /* not enabled yet */
	assert_int_equal(rd16(acpi_pm__evt_io, 0), STS_PWRBTN);
	wr16(acpi_pm__evt_io, 2, STS_PWRBTN); /* PWRBTN_EN */
	assert_int_equal(sci, 1);
	assert_int_equal(rd16(acpi_pm__evt_io, 2), STS_PWRBTN);
	wr16(acpi_pm__evt_io, 0, 0); /* writing 0 clears nothing */
	assert_int_equal(sci, 1);
	wr16(acpi_pm__evt_io, 0, STS_PWRBTN); /* write 1 to clear */
	assert_int_equal(sci, 0);
	assert_int_equal(rd16(acpi_pm__evt_io, 0), 0);
}

static void test_acpi_pm_s5_powers_off(void **state)
{
	wr16(acpi_pm__cnt_io, 0, 3 << CNT_SLP_TYP_SHIFT | CNT_SLP_EN);
	assert_int_equal(vm.stop_reason, VM_RUNNING); /* S3 ignored */
	wr16(acpi_pm__cnt_io, 0, ACPI_S5_SLP_TYP << CNT_SLP_TYP_SHIFT);
	assert_int_equal(vm.stop_reason, VM_RUNNING); /* no SLP_EN yet */
	assert_int_equal(rd16(acpi_pm__cnt_io, 0) & CNT_SLP_EN, 0);
	wr16(acpi_pm__cnt_io, 0, ACPI_S5_SLP_TYP << CNT_SLP_TYP_SHIFT | CNT_SLP_EN);
	assert_int_equal(vm.stop_reason, VM_STOP_POWEROFF);
}

static void test_acpi_pm_timer_runs_at_3_58_mhz(void **state)
{
	uint8_t d[4];
	uint32_t t;

	fake_ns = 1000000000ULL; /* 1 s */
	acpi_pm__tmr_io(&pm, 0, d, 4, false);
	memcpy(&t, d, 4);
	assert_int_equal(t, 3579545);
	fake_ns = 2ULL * 3600 * 1000000000ULL; /* past 64-bit overflow of ns*Hz */
	acpi_pm__tmr_io(&pm, 0, d, 4, false);
	memcpy(&t, d, 4);
	assert_int_equal(t, (uint32_t)(7200ULL * 3579545ULL));
}

static void test_acpi_pm_restore_continues_timer(void **state)
{
	uint8_t *buf = NULL, d[4];
	size_t len = 0;
	uint32_t t;

	fake_ns = 5000000000ULL;
	assert_int_equal(acpi_pm__save(&pm, &buf, &len), 0);
	fake_ns = 1000000000ULL; /* the new host's clock is elsewhere */
	assert_int_equal(acpi_pm__restore(&pm, buf, len), 0);
	acpi_pm__tmr_io(&pm, 0, d, 4, false);
	memcpy(&t, d, 4);
	assert_int_equal(t, 5 * 3579545);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_acpi_pm_sci_en_reads_one, setup),
	    cmocka_unit_test_setup(test_acpi_pm_power_button_raises_sci, setup),
	    cmocka_unit_test_setup(test_acpi_pm_s5_powers_off, setup),
	    cmocka_unit_test_setup(test_acpi_pm_timer_runs_at_3_58_mhz, setup),
	    cmocka_unit_test_setup(test_acpi_pm_restore_continues_timer, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
