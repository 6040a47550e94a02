/* tests/guest/tiny/rtc.h — CMOS real-time clock (ports 0x70/0x71). */
#ifndef TINY_RTC_H
#define TINY_RTC_H

#include <stdint.h>

struct rtc_time {
	uint32_t year; /* full year, e.g. 2026 */
	uint32_t month;
	uint32_t day;
	uint32_t hour; /* 0..23 */
	uint32_t min;
	uint32_t sec;
};

void rtc__read(struct rtc_time *t);
uint8_t rtc__raw_seconds(void);

#endif
