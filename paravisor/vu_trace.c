/* paravisor/vu_trace.c — the last messages' timings (see the header). */
#include "paravisor/vu_trace.h"

#include "common/log.h"
#include "virtio/vhost_user_msg.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t vu_trace__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void vu_trace__received(struct vu_trace *t)
{
	t->recv_us = vu_trace__now_us();
	t->handled_us = t->resumed_us = t->recv_us;
}

void vu_trace__handled(struct vu_trace *t)
{
	t->handled_us = t->resumed_us = vu_trace__now_us();
}

void vu_trace__resumed(struct vu_trace *t)
{
	t->resumed_us = vu_trace__now_us();
}

void vu_trace__answered(struct vu_trace *t, uint32_t req)
{
	uint64_t now = vu_trace__now_us();
	unsigned int i;

	if (t->n == VU_TRACE_MSGS) {
		memmove(&t->m[0], &t->m[1], sizeof(t->m[0]) * (VU_TRACE_MSGS - 1));
		t->n--;
	}
	i = t->n++;
	t->m[i].req = req;
	/* The first message has nothing before it to wait after. */
	t->m[i].wait_us = t->done_us ? (uint32_t)(t->recv_us - t->done_us) : 0;
	t->m[i].handle_us = (uint32_t)(t->handled_us - t->recv_us);
	t->m[i].resume_us = (uint32_t)(t->resumed_us - t->handled_us);
	t->m[i].reply_us = (uint32_t)(now - t->resumed_us);
	t->done_us = now;
}

void vu_trace__report(struct vu_trace *t, const char *id, const char *what)
{
	char line[VU_TRACE_MSGS * 64] = "", name[32];
	size_t len = 0;

	for (unsigned int i = 0; i < t->n && len < sizeof(line); i++)
		len += (size_t)snprintf(
		    line + len, sizeof(line) - len, "%s %s %u/%u/%u/%u", i ? "," : "",
		    vhost_user_msg__name(t->m[i].req, name, sizeof(name)), t->m[i].wait_us,
		    t->m[i].handle_us, t->m[i].resume_us, t->m[i].reply_us);
	if (t->n)
		pr_info("%s: %s; the last messages, waited/handled/resumed/answered in us:%s", id,
			what, line);
	t->n = 0;
}
