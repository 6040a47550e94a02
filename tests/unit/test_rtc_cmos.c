/* tests/unit/test_rtc_cmos.c — the CMOS RTC against a fixed clock.  Includes
 * the device file to reach its static model and inject the time source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vmm/rtc_cmos.c"

/* 2024-02-29 23:59:58 UTC, a Thursday */
#define T0 1709251198LL

static int64_t fake_now;
static int fake_irq;

static int64_t fake_clock(void)
{
	return fake_now;
}

static void fake_set_irq(struct rtc *r, int level)
{
	fake_irq = level;
}

static struct rtc r;

static int setup(void **state)
{
	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	r.now_ns = fake_clock;
	r.set_irq = fake_set_irq;
	r.timer_fd = -1;
	fake_now = T0 * NSEC + 100000000; /* .1 s into the second */
	fake_irq = 0;
	rtc__reset(&r);
	return 0;
}

static uint8_t reg(uint8_t idx)
{
	uint8_t v = idx;

	rtc__io(&r, 0, &v, 1, true);
	rtc__io(&r, 1, &v, 1, false);
	return v;
}

static void set_reg(uint8_t idx, uint8_t val)
{
	rtc__io(&r, 0, &idx, 1, true);
	rtc__io(&r, 1, &val, 1, true);
}

static void test_rtc_reads_host_time_in_bcd(void **state)
{
	assert_int_equal(reg(REG_SEC), 0x58);
	assert_int_equal(reg(REG_MIN), 0x59);
	assert_int_equal(reg(REG_HOUR), 0x23);
	assert_int_equal(reg(REG_MDAY), 0x29);
	assert_int_equal(reg(REG_MONTH), 0x02);
	assert_int_equal(reg(REG_YEAR), 0x24);
	assert_int_equal(reg(REG_CENTURY), 0x20);
	assert_int_equal(reg(REG_WDAY), 5); /* Sunday is 1 */
	assert_int_equal(reg(REG_D), 0x80);
	/* Time moves with the host clock. */
	fake_now += 3 * NSEC;
	assert_int_equal(reg(REG_SEC), 0x01);
	assert_int_equal(reg(REG_MONTH), 0x03);
	assert_int_equal(reg(REG_MDAY), 0x01);
}

static void test_rtc_binary_and_12_hour_modes(void **state)
{
	set_reg(REG_B, B_BINARY); /* 12 h, binary */
	assert_int_equal(reg(REG_SEC), 58);
	assert_int_equal(reg(REG_HOUR), 11 | HOUR_PM);
	assert_int_equal(reg(REG_YEAR), 24);
	fake_now = (T0 - 23 * 3600) * NSEC;  /* 00:59:58 */
	assert_int_equal(reg(REG_HOUR), 12); /* 12 AM */
	set_reg(REG_B, 0);		     /* 12 h, BCD */
	fake_now = (T0 - 11 * 3600) * NSEC;  /* 12:59:58 */
	assert_int_equal(reg(REG_HOUR), 0x12 | HOUR_PM);
}

static void test_rtc_uip_only_near_the_second_boundary(void **state)
{
	assert_int_equal(reg(REG_A) & A_UIP, 0);
	assert_int_equal(reg(REG_A), 0x26);
	fake_now = T0 * NSEC + NSEC - 100000; /* 100 us before the update */
	assert_int_equal(reg(REG_A) & A_UIP, A_UIP);
	fake_now += 200000;
	assert_int_equal(reg(REG_A) & A_UIP, 0);
}

static void test_rtc_guest_sets_time_with_set_bit(void **state)
{
	set_reg(REG_B, B_SET | B_24H);
	set_reg(REG_SEC, 0x30);
	set_reg(REG_MIN, 0x15);
	set_reg(REG_HOUR, 0x08);
	set_reg(REG_MDAY, 0x01);
	set_reg(REG_MONTH, 0x01);
	set_reg(REG_YEAR, 0x30);
	set_reg(REG_CENTURY, 0x20);
	fake_now += 5 * NSEC; /* frozen while SET */
	assert_int_equal(reg(REG_SEC), 0x30);
	set_reg(REG_B, B_24H);
	fake_now += 2 * NSEC;
	assert_int_equal(reg(REG_SEC), 0x32);
	assert_int_equal(reg(REG_MIN), 0x15);
	assert_int_equal(reg(REG_YEAR), 0x30);
	/* committed .1 s into a second: the new second starts there */
	assert_int_equal((r.offset_ns + NSEC / 10) / NSEC, (1893485730LL - T0) - 5);
}

/* Status C without the periodic flag, which runs at 1024 Hz regardless. */
static uint8_t reg_c(void)
{
	return reg(REG_C) & (uint8_t)~C_PF;
}

static void test_rtc_update_flag_and_irq(void **state)
{
	assert_int_equal(reg_c(), 0);
	fake_now += NSEC;
	assert_int_equal(reg_c(), C_UF); /* polled: no IRQF without UIE */
	assert_int_equal(fake_irq, 0);
	set_reg(REG_B, B_24H | B_UIE);
	fake_now += NSEC;
	rtc__update_flags(&r);
	rtc__update_irq(&r);
	assert_int_equal(fake_irq, 1);
	assert_int_equal(reg_c() & (C_IRQF | C_UF), C_IRQF | C_UF);
	assert_int_equal(fake_irq, 0); /* reading C lowers the line */
	assert_int_equal(reg_c(), 0);
}

static void test_rtc_alarm_matches_time(void **state)
{
	set_reg(REG_B, B_24H | B_AIE);
	set_reg(REG_SEC_ALARM, 0x00);
	set_reg(REG_MIN_ALARM, 0xc0); /* don't care */
	set_reg(REG_HOUR_ALARM, 0xff);
	fake_now += NSEC; /* :59 */
	assert_int_equal(reg_c() & C_AF, 0);
	fake_now += NSEC; /* :00 */
	assert_int_equal(reg(REG_C) & (C_AF | C_IRQF), C_AF | C_IRQF);
}

static void test_rtc_periodic_flag(void **state)
{
	reg(REG_C);
	fake_now += NSEC / 2048; /* half a 1024 Hz period */
	assert_int_equal(reg(REG_C) & C_PF, 0);
	fake_now += NSEC / 1024;
	assert_int_equal(reg(REG_C) & C_PF, C_PF);
	set_reg(REG_A, 0x20); /* rate 0: off */
	fake_now += NSEC / 100;
	assert_int_equal(reg(REG_C) & C_PF, 0);
}

static void test_rtc_nvram_and_nmi_bit(void **state)
{
	set_reg(0x80 | 0x40, 0xa5); /* NMI mask bit in the index is ignored */
	assert_int_equal(reg(0x40), 0xa5);
	set_reg(0x7f, 0x11);
	assert_int_equal(reg(0xff), 0x11);
	set_reg(REG_D, 0x00); /* read-only */
	assert_int_equal(reg(REG_D), D_VRT);
}

static void test_rtc_save_restore_keeps_offset(void **state)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	set_reg(0x50, 0x77);
	r.offset_ns = 3600 * NSEC;
	assert_int_equal(rtc__save(&r, &buf, &len), 0);
	rtc__reset(&r);
	assert_int_equal(reg(0x50), 0);
	assert_int_equal(rtc__restore(&r, buf, len), 0);
	assert_int_equal(reg(0x50), 0x77);
	assert_int_equal(reg(REG_HOUR), 0x00); /* 23h + 1h */
	assert_int_equal(rtc__restore(&r, (const uint8_t *)"\x0a\x01\x00", 3),
			 -EINVAL); /* 1-byte NVRAM */
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_rtc_reads_host_time_in_bcd, setup),
	    cmocka_unit_test_setup(test_rtc_binary_and_12_hour_modes, setup),
	    cmocka_unit_test_setup(test_rtc_uip_only_near_the_second_boundary, setup),
	    cmocka_unit_test_setup(test_rtc_guest_sets_time_with_set_bit, setup),
	    cmocka_unit_test_setup(test_rtc_update_flag_and_irq, setup),
	    cmocka_unit_test_setup(test_rtc_alarm_matches_time, setup),
	    cmocka_unit_test_setup(test_rtc_periodic_flag, setup),
	    cmocka_unit_test_setup(test_rtc_nvram_and_nmi_bit, setup),
	    cmocka_unit_test_setup(test_rtc_save_restore_keeps_offset, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
