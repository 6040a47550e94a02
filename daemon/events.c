/* daemon/events.c — the event bus: every event gets the next sequence
 * number, the last `keep` are kept in a ring for WatchEvents' after_seq
 * replay, and subscribers are called in order under one lock so a replay
 * and the live stream neither overlap nor leave a gap. */
#include "daemon/daemon.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ev_entry {
	uint64_t seq;
	int64_t time_ms;
	char vm_id[DAEMON_ID_LEN];
	char op_id[DAEMON_ID_LEN];
	Vmmd__V1__EventKind kind;
	Vmmd__V1__VmState state;
	Vmmd__V1__OperationState op_state;
	char message[256];
};

struct sub {
	struct sub *next;
	uint64_t handle;
	char vm_id[DAEMON_ID_LEN];
	api_event_sink sink;
	void *opaque;
};

struct events {
	pthread_mutex_t lock;
	struct ev_entry *ring;
	size_t keep;
	uint64_t seq; /* last emitted */
	uint64_t next_handle;
	struct sub *subs;
};

struct events *events__new(size_t keep)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (!ev || !(ev->ring = calloc(keep, sizeof(*ev->ring)))) {
		free(ev);
		return NULL;
	}
	ev->keep = keep;
	pthread_mutex_init(&ev->lock, NULL);
	return ev;
}

void events__free(struct events *ev)
{
	if (!ev)
		return;
	while (ev->subs) {
		struct sub *s = ev->subs;

		ev->subs = s->next;
		free(s);
	}
	pthread_mutex_destroy(&ev->lock);
	free(ev->ring);
	free(ev);
}

/* Calls the sink; false when it wants no more. */
static bool deliver(struct sub *s, const struct ev_entry *e)
{
	Vmmd__V1__Event m = VMMD__V1__EVENT__INIT;

	if (s->vm_id[0] && strcmp(s->vm_id, e->vm_id))
		return true;
	m.seq = e->seq;
	m.time_ms = e->time_ms;
	m.vm_id = (char *)e->vm_id;
	m.kind = e->kind;
	m.state = e->state;
	m.operation_id = (char *)e->op_id;
	m.operation_state = e->op_state;
	m.message = (char *)e->message;
	return s->sink(&m, s->opaque) == 0;
}

void events__emit(struct events *ev, const char *vm_id, Vmmd__V1__EventKind kind,
		  Vmmd__V1__VmState state, const char *op_id, Vmmd__V1__OperationState op_state,
		  const char *fmt, ...)
{
	struct ev_entry *e;
	va_list ap;

	pthread_mutex_lock(&ev->lock);
	e = &ev->ring[ev->seq % ev->keep];
	memset(e, 0, sizeof(*e));
	e->seq = ++ev->seq;
	e->time_ms = now_ms();
	snprintf(e->vm_id, sizeof(e->vm_id), "%s", vm_id ? vm_id : "");
	snprintf(e->op_id, sizeof(e->op_id), "%s", op_id ? op_id : "");
	e->kind = kind;
	e->state = state;
	e->op_state = op_state;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	for (struct sub **pp = &ev->subs; *pp;) {
		struct sub *s = *pp;

		if (!deliver(s, e)) {
			*pp = s->next;
			free(s);
			continue;
		}
		pp = &s->next;
	}
	pthread_mutex_unlock(&ev->lock);
}

int events__watch(struct events *ev, const char *vm_id, uint64_t after_seq, api_event_sink sink,
		  void *opaque, uint64_t *handle)
{
	struct sub *s = calloc(1, sizeof(*s));
	uint64_t first;

	if (!s)
		return -1;
	snprintf(s->vm_id, sizeof(s->vm_id), "%s", vm_id ? vm_id : "");
	s->sink = sink;
	s->opaque = opaque;
	pthread_mutex_lock(&ev->lock);
	s->handle = ++ev->next_handle;
	*handle = s->handle;
	/* Replay what is still kept after after_seq (0: nothing, new ones only). */
	first = ev->seq >= ev->keep ? ev->seq - ev->keep + 1 : 1;
	if (after_seq && after_seq + 1 > first)
		first = after_seq + 1;
	for (uint64_t q = after_seq ? first : ev->seq + 1; q <= ev->seq; q++)
		if (!deliver(s, &ev->ring[(q - 1) % ev->keep])) {
			pthread_mutex_unlock(&ev->lock);
			free(s);
			return 0;
		}
	s->next = ev->subs;
	ev->subs = s;
	pthread_mutex_unlock(&ev->lock);
	return 0;
}

void events__unwatch(struct events *ev, uint64_t handle)
{
	pthread_mutex_lock(&ev->lock);
	for (struct sub **pp = &ev->subs; *pp; pp = &(*pp)->next)
		if ((*pp)->handle == handle) {
			struct sub *s = *pp;

			*pp = s->next;
			free(s);
			break;
		}
	pthread_mutex_unlock(&ev->lock);
}
