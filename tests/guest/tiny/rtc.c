/*
 * tests/guest/tiny/rtc.c — read the CMOS RTC the way a real OS does, so the
 * VMM's RTC is tested by the same sequence Linux uses: wait for the update
 * cycle to end, read twice until stable, then decode BCD and 12-hour mode.
 */
#include <stdbool.h>

#include "rtc.h"
#include "io.h"

#define RTC_INDEX 0x70
#define RTC_DATA 0x71

#define RTC_SEC 0x00
#define RTC_MIN 0x02
#define RTC_HOUR 0x04
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_STATUS_A 0x0a
#define RTC_STATUS_B 0x0b
#define RTC_CENTURY 0x32

#define STATUS_A_UIP 0x80    /* update in progress */
#define STATUS_B_24H 0x02    /* 24-hour mode */
#define STATUS_B_BINARY 0x04 /* binary, not BCD */
#define HOUR_PM 0x80         /* in 12-hour mode */

static uint8_t rtc__reg(uint8_t reg)
{
	outb(RTC_INDEX, reg);
	return inb(RTC_DATA);
}

static void rtc__wait_no_update(void)
{
	while (rtc__reg(RTC_STATUS_A) & STATUS_A_UIP)
		;
}

static void rtc__read_raw(uint8_t r[7])
{
	rtc__wait_no_update();
	r[0] = rtc__reg(RTC_SEC);
	r[1] = rtc__reg(RTC_MIN);
	r[2] = rtc__reg(RTC_HOUR);
	r[3] = rtc__reg(RTC_DAY);
	r[4] = rtc__reg(RTC_MONTH);
	r[5] = rtc__reg(RTC_YEAR);
	r[6] = rtc__reg(RTC_CENTURY);
}

static bool rtc__same(const uint8_t a[7], const uint8_t b[7])
{
	for (int i = 0; i < 7; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static uint32_t rtc__decode(uint8_t v, bool binary)
{
	return binary ? v : (uint32_t)(v >> 4) * 10 + (v & 0x0f);
}

static uint32_t rtc__decode_hour(uint8_t v, uint8_t status_b)
{
	bool binary = status_b & STATUS_B_BINARY;
	bool pm = false;
	uint32_t hour;

	if (!(status_b & STATUS_B_24H)) {
		pm = v & HOUR_PM;
		v &= (uint8_t)~HOUR_PM;
	}
	hour = rtc__decode(v, binary);
	if (!(status_b & STATUS_B_24H)) {
		if (hour == 12)
			hour = 0; /* 12 AM is 00, 12 PM is 12 */
		if (pm)
			hour += 12;
	}
	return hour;
}

void rtc__read(struct rtc_time *t)
{
	uint8_t a[7], b[7];
	uint8_t status_b;
	bool binary;
	uint32_t century;

	/* An update between two reads gives torn values: repeat until equal. */
	rtc__read_raw(b);
	do {
		for (int i = 0; i < 7; i++)
			a[i] = b[i];
		rtc__read_raw(b);
	} while (!rtc__same(a, b));

	status_b = rtc__reg(RTC_STATUS_B);
	binary = status_b & STATUS_B_BINARY;
	t->sec = rtc__decode(a[0], binary);
	t->min = rtc__decode(a[1], binary);
	t->hour = rtc__decode_hour(a[2], status_b);
	t->day = rtc__decode(a[3], binary);
	t->month = rtc__decode(a[4], binary);
	century = a[6] ? rtc__decode(a[6], binary) : 20;
	t->year = century * 100 + rtc__decode(a[5], binary);
}

/* Only for noticing that a second went by: no decoding needed. */
uint8_t rtc__raw_seconds(void)
{
	return rtc__reg(RTC_SEC);
}
