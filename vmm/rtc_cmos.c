/*
 * vmm/rtc_cmos.c — MC146818 CMOS RTC at 0x70/0x71, IRQ 8.
 *
 * The time is never stored: it is the host's UTC clock plus an offset that
 * changes only when the guest sets the clock, computed when read, so a guest
 * that was paused or migrated still reads the right time.  The update cycle
 * is modelled as UIP set during the last 244 us of each second, which is
 * what the datasheet promises and never holds a reader for longer.
 * Status C flags are updated when read (polling works) and by a timerfd on
 * vm->loop while an interrupt is enabled in status B.
 *
 * The unit test includes this file, so everything here stays static.
 */
#include "common/log.h"
#include "vmm/state.pb-c.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RTC_PORT 0x70
#define RTC_IRQ	 8
#define NSEC	 1000000000LL

enum {
	REG_SEC = 0x00,
	REG_SEC_ALARM = 0x01,
	REG_MIN = 0x02,
	REG_MIN_ALARM = 0x03,
	REG_HOUR = 0x04,
	REG_HOUR_ALARM = 0x05,
	REG_WDAY = 0x06,
	REG_MDAY = 0x07,
	REG_MONTH = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0a,
	REG_B = 0x0b,
	REG_C = 0x0c,
	REG_D = 0x0d,
	REG_CENTURY = 0x32,
};

#define A_UIP	 0x80
#define B_SET	 0x80
#define B_PIE	 0x40
#define B_AIE	 0x20
#define B_UIE	 0x10
#define B_BINARY 0x04
#define B_24H	 0x02
#define C_IRQF	 0x80
#define C_PF	 0x40
#define C_AF	 0x20
#define C_UF	 0x10
#define D_VRT	 0x80
#define HOUR_PM	 0x80
#define UIP_NS	 244000LL

struct rtc {
	pthread_mutex_t lock;
	struct vm *vm;
	int64_t (*now_ns)(void); /* host UTC; unit tests set their own */
	void (*set_irq)(struct rtc *r, int level);
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset_ns;  /* guest wall clock minus host clock */
	int64_t last_c_ns;  /* guest time of the last C update */
	int64_t next_pf_ns; /* periodic flag due (guest time) */
	int timer_fd;
	int irq_level;
};

static struct rtc rtc0;

static int64_t rtc__host_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static void rtc__vm_irq(struct rtc *r, int level)
{
	vm__set_irq(r->vm, RTC_IRQ, level);
}

static int64_t rtc__guest_ns(struct rtc *r)
{
	return r->now_ns() + r->offset_ns;
}

static int64_t rtc__floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

static uint8_t rtc__enc(const struct rtc *r, int v)
{
	if (r->cmos[REG_B] & B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

/* Guest-written values may be invalid BCD; decode them arithmetically
 * and let timegm() normalise whatever comes out. */
static int rtc__dec(const struct rtc *r, uint8_t v)
{
	if (r->cmos[REG_B] & B_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc__enc_hour(const struct rtc *r, int h)
{
	if (r->cmos[REG_B] & B_24H)
		return rtc__enc(r, h);
	return (uint8_t)(rtc__enc(r, h % 12 ? h % 12 : 12) | (h >= 12 ? HOUR_PM : 0));
}

static int rtc__dec_hour(const struct rtc *r, uint8_t v)
{
	int h;

	if (r->cmos[REG_B] & B_24H)
		return rtc__dec(r, v);
	h = rtc__dec(r, v & (uint8_t)~HOUR_PM) % 12;
	return (v & HOUR_PM) ? h + 12 : h;
}

/* Write the guest's current time into the time registers. */
static void rtc__latch_time(struct rtc *r)
{
	time_t secs = (time_t)rtc__floor_div(rtc__guest_ns(r), NSEC);
	struct tm tm;

	gmtime_r(&secs, &tm);
	r->cmos[REG_SEC] = rtc__enc(r, tm.tm_sec);
	r->cmos[REG_MIN] = rtc__enc(r, tm.tm_min);
	r->cmos[REG_HOUR] = rtc__enc_hour(r, tm.tm_hour);
	r->cmos[REG_WDAY] = rtc__enc(r, tm.tm_wday + 1);
	r->cmos[REG_MDAY] = rtc__enc(r, tm.tm_mday);
	r->cmos[REG_MONTH] = rtc__enc(r, tm.tm_mon + 1);
	r->cmos[REG_YEAR] = rtc__enc(r, tm.tm_year % 100);
	r->cmos[REG_CENTURY] = rtc__enc(r, (tm.tm_year + 1900) / 100);
}

/* The guest set the clock: the registers become the new time, starting
 * at the beginning of that second (as the divider chain restarts). */
static void rtc__commit_time(struct rtc *r)
{
	struct tm tm = {0};
	time_t t;

	tm.tm_sec = rtc__dec(r, r->cmos[REG_SEC]);
	tm.tm_min = rtc__dec(r, r->cmos[REG_MIN]);
	tm.tm_hour = rtc__dec_hour(r, r->cmos[REG_HOUR]);
	tm.tm_mday = rtc__dec(r, r->cmos[REG_MDAY]);
	tm.tm_mon = rtc__dec(r, r->cmos[REG_MONTH]) - 1;
	tm.tm_year =
	    rtc__dec(r, r->cmos[REG_CENTURY]) * 100 + rtc__dec(r, r->cmos[REG_YEAR]) - 1900;
	t = timegm(&tm);
	if (t == (time_t)-1) {
		pr_warn_once("rtc: guest wrote an impossible date; ignored");
		return;
	}
	r->offset_ns = (int64_t)t * NSEC - r->now_ns();
	r->last_c_ns = rtc__guest_ns(r);
}

static bool rtc__alarm_field(const struct rtc *r, int reg, uint8_t now)
{
	uint8_t a = r->cmos[reg];

	return (a & 0xc0) == 0xc0 || a == now; /* 11xxxxxx: don't care */
}

static void rtc__update_irq(struct rtc *r)
{
	int level;

	if (r->cmos[REG_C] & r->cmos[REG_B] & (C_PF | C_AF | C_UF))
		r->cmos[REG_C] |= C_IRQF;
	level = !!(r->cmos[REG_C] & C_IRQF);
	if (level != r->irq_level) {
		r->irq_level = level;
		r->set_irq(r, level);
	}
}

static int64_t rtc__period_ns(const struct rtc *r)
{
	unsigned int rate = r->cmos[REG_A] & 0x0f;

	if (!rate)
		return 0;
	if (rate < 3)
		rate += 7; /* 1 and 2 repeat the 256 and 128 Hz taps */
	return (NSEC << (rate - 1)) / 32768;
}

/* Bring the C flags up to now: update-ended once per second boundary
 * crossed, alarm when the current time matches, periodic when due. */
static void rtc__update_flags(struct rtc *r)
{
	int64_t now = rtc__guest_ns(r), period = rtc__period_ns(r);

	if (r->cmos[REG_B] & B_SET) {
		r->last_c_ns = now;
		return;
	}
	if (rtc__floor_div(now, NSEC) != rtc__floor_div(r->last_c_ns, NSEC)) {
		uint8_t sec, min, hour;

		r->cmos[REG_C] |= C_UF;
		rtc__latch_time(r);
		sec = r->cmos[REG_SEC];
		min = r->cmos[REG_MIN];
		hour = r->cmos[REG_HOUR];
		if (rtc__alarm_field(r, REG_SEC_ALARM, sec) &&
		    rtc__alarm_field(r, REG_MIN_ALARM, min) &&
		    rtc__alarm_field(r, REG_HOUR_ALARM, hour))
			r->cmos[REG_C] |= C_AF;
	}
	if (period && now >= r->next_pf_ns) {
		r->cmos[REG_C] |= C_PF;
		r->next_pf_ns = now + period;
	}
	r->last_c_ns = now;
	if (r->cmos[REG_C] & r->cmos[REG_B] & (C_PF | C_AF | C_UF))
		r->cmos[REG_C] |= C_IRQF;
}

/* Arm the timerfd for the next event an enabled interrupt waits for. */
static void rtc__arm_timer(struct rtc *r)
{
	struct itimerspec its = {0};
	uint8_t b = r->cmos[REG_B];
	int64_t period = rtc__period_ns(r), next = 0;

	if (r->timer_fd < 0)
		return;
	if (!(b & B_SET) && (b & (B_UIE | B_AIE)))
		next = NSEC - (rtc__guest_ns(r) % NSEC + NSEC) % NSEC + 1000;
	if (!(b & B_SET) && (b & B_PIE) && period && (!next || period < next))
		next = period;
	if (next) {
		its.it_value.tv_sec = next / NSEC;
		its.it_value.tv_nsec = next % NSEC;
	}
	timerfd_settime(r->timer_fd, 0, &its, NULL);
}

static void rtc__timer_event(int fd, uint32_t events, void *opaque)
{
	struct rtc *r = opaque;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0)
		return;
	pthread_mutex_lock(&r->lock);
	rtc__update_flags(r);
	rtc__update_irq(r);
	rtc__arm_timer(r);
	pthread_mutex_unlock(&r->lock);
}

static bool rtc__is_time_reg(uint8_t idx)
{
	return idx <= REG_YEAR || idx == REG_CENTURY;
}

static uint8_t rtc__read_reg(struct rtc *r, uint8_t idx)
{
	uint8_t v;

	switch (idx) {
	case REG_A:
		v = r->cmos[REG_A] & 0x7f;
		if (!(r->cmos[REG_B] & B_SET) &&
		    (rtc__guest_ns(r) % NSEC + NSEC) % NSEC >= NSEC - UIP_NS)
			v |= A_UIP;
		return v;
	case REG_C:
		rtc__update_flags(r);
		v = r->cmos[REG_C];
		r->cmos[REG_C] = 0;
		rtc__update_irq(r);
		return v;
	case REG_D: return D_VRT;
	default:
		/* While SET is on the registers hold what the guest wrote. */
		if (rtc__is_time_reg(idx) && !(idx & 1 && idx < REG_WDAY) &&
		    !(r->cmos[REG_B] & B_SET))
			rtc__latch_time(r);
		return r->cmos[idx];
	}
}

static void rtc__write_reg(struct rtc *r, uint8_t idx, uint8_t val)
{
	uint8_t old;

	switch (idx) {
	case REG_A:
		r->cmos[REG_A] = val & 0x7f;
		r->next_pf_ns = rtc__guest_ns(r) + rtc__period_ns(r);
		break;
	case REG_B:
		old = r->cmos[REG_B];
		if (val & B_SET) {
			val &= (uint8_t)~B_UIE;
			if (!(old & B_SET))
				rtc__latch_time(r);
		}
		r->cmos[REG_B] = val;
		if ((old & B_SET) && !(val & B_SET))
			rtc__commit_time(r);
		rtc__update_irq(r);
		break;
	case REG_C:
	case REG_D: break; /* read-only */
	default:
		if (rtc__is_time_reg(idx) && !(idx & 1 && idx < REG_WDAY)) {
			/* Setting one field without SET moves the clock now. */
			if (!(r->cmos[REG_B] & B_SET))
				rtc__latch_time(r);
			r->cmos[idx] = val;
			if (!(r->cmos[REG_B] & B_SET))
				rtc__commit_time(r);
			break;
		}
		r->cmos[idx] = val; /* alarms and NVRAM */
		break;
	}
	rtc__arm_timer(r);
}

/* 0x70 index (bit 7 is the NMI mask, ignored), 0x71 data. */
static void rtc__io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		if (is_write)
			r->index = data[0] & 0x7f;
		else
			data[0] = 0xff; /* the index port is write-only */
	} else if (is_write) {
		rtc__write_reg(r, r->index, data[0]);
	} else {
		data[0] = rtc__read_reg(r, r->index);
	}
	for (uint32_t i = 1; i < len && !is_write; i++)
		data[i] = 0xff;
	pthread_mutex_unlock(&r->lock);
}

static void rtc__reset(struct rtc *r)
{
	memset(r->cmos, 0, sizeof(r->cmos));
	r->cmos[REG_A] = 0x26; /* 32.768 kHz divider, 1024 Hz periodic rate */
	r->cmos[REG_B] = B_24H;
	r->cmos[REG_D] = D_VRT;
	r->index = 0;
	r->offset_ns = 0;
	r->irq_level = 0;
	r->last_c_ns = rtc__guest_ns(r);
	r->next_pf_ns = r->last_c_ns;
}

static int rtc__save(void *opaque, uint8_t **buf, size_t *len)
{
	struct rtc *r = opaque;
	Vmmd__State__V1__CmosState s = VMMD__STATE__V1__CMOS_STATE__INIT;
	uint8_t nvram[128];

	pthread_mutex_lock(&r->lock);
	memcpy(nvram, r->cmos, sizeof(nvram));
	s.nvram.data = nvram;
	s.nvram.len = sizeof(nvram);
	s.index = r->index;
	s.offset_ns = r->offset_ns;
	pthread_mutex_unlock(&r->lock);
	*len = vmmd__state__v1__cmos_state__get_packed_size(&s);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return -ENOMEM;
	vmmd__state__v1__cmos_state__pack(&s, *buf);
	return 0;
}

static int rtc__restore(void *opaque, const uint8_t *buf, size_t len)
{
	struct rtc *r = opaque;
	Vmmd__State__V1__CmosState *s = vmmd__state__v1__cmos_state__unpack(NULL, len, buf);

	if (!s)
		return -EINVAL;
	if (s->nvram.len != sizeof(r->cmos)) {
		vmmd__state__v1__cmos_state__free_unpacked(s, NULL);
		return -EINVAL;
	}
	pthread_mutex_lock(&r->lock);
	memcpy(r->cmos, s->nvram.data, sizeof(r->cmos));
	r->index = s->index & 0x7f;
	r->offset_ns = s->offset_ns;
	r->last_c_ns = rtc__guest_ns(r);
	r->next_pf_ns = r->last_c_ns + rtc__period_ns(r);
	r->irq_level = -1; /* drive the line to what C says */
	rtc__update_irq(r);
	rtc__arm_timer(r);
	pthread_mutex_unlock(&r->lock);
	vmmd__state__v1__cmos_state__free_unpacked(s, NULL);
	return 0;
}

static const struct state_ops rtc_state_ops = {
    .section = "rtc_cmos",
    .save = rtc__save,
    .restore = rtc__restore,
};

static int rtc__init(struct vm *vm)
{
	struct rtc *r = &rtc0;
	int err;

	pthread_mutex_init(&r->lock, NULL);
	r->vm = vm;
	r->now_ns = rtc__host_now;
	r->set_irq = rtc__vm_irq;
	rtc__reset(r);
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r->timer_fd < 0)
		return -errno;
	err = evloop__add(&vm->loop, r->timer_fd, EPOLLIN, rtc__timer_event, r);
	if (err < 0)
		goto out_close;
	err = bus__register(&vm->pio_bus, RTC_PORT, 2, rtc__io, r, "rtc_cmos");
	if (err < 0)
		goto out_del;
	err = vm__register_state(vm, &rtc_state_ops, r);
	if (err < 0)
		goto out_del;
	return 0;

out_del:
	evloop__del(&vm->loop, r->timer_fd);
out_close:
	close(r->timer_fd);
	r->timer_fd = -1;
	return err;
}

static void rtc__exit(struct vm *vm)
{
	if (rtc0.timer_fd >= 0) {
		evloop__del(&vm->loop, rtc0.timer_fd);
		close(rtc0.timer_fd);
		rtc0.timer_fd = -1;
	}
}

device_init(rtc__init, rtc__exit);
