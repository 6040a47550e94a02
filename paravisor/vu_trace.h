/* paravisor/vu_trace.h — where the paravisor's side of a ring hand-over
 * goes: for the last few vhost-user messages, how long it waited for each,
 * handled it, resumed the rings after it and answered.  Logged in one line
 * after the answer that started the rings and when the front-end leaves,
 * so a servicing's blackout can be split between vmm and the two
 * paravisors (their clocks are the same CLOCK_MONOTONIC). */
#ifndef VMMD_PARAVISOR_VU_TRACE_H
#define VMMD_PARAVISOR_VU_TRACE_H

#include <stdint.h>

#define VU_TRACE_MSGS 8

struct vu_trace {
	struct {
		uint32_t req;
		uint32_t wait_us, handle_us, resume_us, reply_us;
	} m[VU_TRACE_MSGS];
	unsigned int n; /* kept, the oldest dropped first */
	uint64_t done_us, recv_us, handled_us, resumed_us;
};

/* The points of one message: received, handled, rings resumed, answered. */
void vu_trace__received(struct vu_trace *t);
void vu_trace__handled(struct vu_trace *t);
void vu_trace__resumed(struct vu_trace *t);
void vu_trace__answered(struct vu_trace *t, uint32_t req);

/* Logs the messages kept ("id: what: REQ wait/handle/resume/answer us, ...")
 * and forgets them. */
void vu_trace__report(struct vu_trace *t, const char *id, const char *what);

#endif
