/* daemon/metrics.c — Prometheus text exposition (format 0.0.4): per-VM
 * state, vCPUs and memory from the registry, API request counts and a
 * latency histogram per transport and route reported by the transports. */
#include "daemon/daemon.h"
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5 };
#define NB (sizeof(buckets) / sizeof(buckets[0]))

struct series {
	struct series *next;
	char transport[16], route[48];
	int code;
	uint64_t count;
	uint64_t le[NB];
	double sum;
};

/* Migrations by direction (0 out, 1 in) and result. */
static const char *const mig_results[] = { "succeeded", "failed", "cancelled" };
#define NR_MIG_RESULTS (sizeof(mig_results) / sizeof(mig_results[0]))

struct metrics {
	pthread_mutex_t lock;
	struct series *series;
	uint64_t migrations[2][NR_MIG_RESULTS];
	uint64_t downtime_ms_sum, downtime_count;
	uint64_t out_bytes, total_ms_sum;
	uint64_t services[3]; /* succeeded, rolled_back, failed */
	uint64_t blackout_ms_sum, blackout_count, blackout_ms_max;
};

struct metrics *metrics__new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

void metrics__free(struct metrics *m)
{
	if (!m)
		return;
	while (m->series) {
		struct series *s = m->series;

		m->series = s->next;
		free(s);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void metrics__observe(struct metrics *m, const char *transport, const char *route, int status,
		      uint64_t usec)
{
	struct series *s;
	double secs = (double)usec / 1e6;

	pthread_mutex_lock(&m->lock);
	for (s = m->series; s; s = s->next)
		if (s->code == status && !strcmp(s->transport, transport) && !strcmp(s->route, route))
			break;
	if (!s && (s = calloc(1, sizeof(*s)))) {
		snprintf(s->transport, sizeof(s->transport), "%s", transport);
		snprintf(s->route, sizeof(s->route), "%s", route ? route : "unknown");
		s->code = status;
		s->next = m->series;
		m->series = s;
	}
	if (s) {
		s->count++;
		s->sum += secs;
		for (size_t i = 0; i < NB; i++)
			if (secs <= buckets[i])
				s->le[i]++;
	}
	pthread_mutex_unlock(&m->lock);
}

void metrics__migration(struct metrics *m, bool incoming, const char *result,
			const struct op_migrate *g)
{
	uint32_t downtime_ms = g ? g->downtime_ms : 0;

	pthread_mutex_lock(&m->lock);
	if (!incoming && g) {
		m->out_bytes += g->bytes;
		if (!strcmp(result, "succeeded"))
			m->total_ms_sum += g->total_ms;
	}
	for (size_t i = 0; i < NR_MIG_RESULTS; i++)
		if (!strcmp(result, mig_results[i]))
			m->migrations[incoming][i]++;
	if (!incoming && !strcmp(result, "succeeded")) {
		m->downtime_ms_sum += downtime_ms;
		m->downtime_count++;
	}
	pthread_mutex_unlock(&m->lock);
}

static const char *const svc_results[] = { "succeeded", "rolled_back", "failed" };

void metrics__service(struct metrics *m, const char *result, const struct op_service *s)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(result, svc_results[i]))
			m->services[i]++;
	for (uint32_t i = 0; s && i < s->nr_devices; i++) {
		m->blackout_ms_sum += s->dev[i].blackout_ms;
		m->blackout_count++;
		if (s->dev[i].blackout_ms > m->blackout_ms_max)
			m->blackout_ms_max = s->dev[i].blackout_ms;
	}
	pthread_mutex_unlock(&m->lock);
}

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3))) out(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0 || b->oom)
			return;
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

int metrics__render(struct daemon *d, char **text, size_t *len)
{
	static const Vmmd__V1__VmState states[] = {
		VMMD__V1__VM_STATE__VM_STATE_CREATING, VMMD__V1__VM_STATE__VM_STATE_STOPPED,
		VMMD__V1__VM_STATE__VM_STATE_STARTING, VMMD__V1__VM_STATE__VM_STATE_RUNNING,
		VMMD__V1__VM_STATE__VM_STATE_PAUSED,   VMMD__V1__VM_STATE__VM_STATE_STOPPING,
		VMMD__V1__VM_STATE__VM_STATE_MIGRATING, VMMD__V1__VM_STATE__VM_STATE_FAILED,
	};
	struct buf b = { 0 };

	out(&b, "# HELP vmmd_build_info The vmmd release serving.\n# TYPE vmmd_build_info gauge\n"
		"vmmd_build_info{version=\"%s\",api=\"vmmd.v1\"} 1\n",
	    PACKAGE_VERSION);
	pthread_mutex_lock(&d->lock);
	out(&b, "# HELP vmmd_vm_state 1 for the state each VM is in.\n# TYPE vmmd_vm_state gauge\n");
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
			out(&b, "vmmd_vm_state{vm=\"%s\",state=\"%s\"} %d\n", vm->spec->name,
			    vm_state__name(states[i]), vm->state == states[i]);
	out(&b, "# HELP vmmd_vm_vcpus Virtual CPUs of each VM.\n# TYPE vmmd_vm_vcpus gauge\n");
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		out(&b, "vmmd_vm_vcpus{vm=\"%s\"} %u\n", vm->spec->name, vm->spec->vcpus);
	out(&b, "# HELP vmmd_vm_memory_bytes Guest RAM of each VM.\n"
		"# TYPE vmmd_vm_memory_bytes gauge\n");
	for (struct vm *vm = d->vms; vm; vm = vm->next)
		out(&b, "vmmd_vm_memory_bytes{vm=\"%s\"} %llu\n", vm->spec->name,
		    (unsigned long long)vm->spec->memory_mib << 20);
	pthread_mutex_unlock(&d->lock);

	pthread_mutex_lock(&d->metrics->lock);
	out(&b, "# HELP vmmd_api_requests_total API requests served.\n"
		"# TYPE vmmd_api_requests_total counter\n");
	for (struct series *s = d->metrics->series; s; s = s->next)
		out(&b, "vmmd_api_requests_total{transport=\"%s\",route=\"%s\",code=\"%d\"} %llu\n",
		    s->transport, s->route, s->code, (unsigned long long)s->count);
	out(&b, "# HELP vmmd_api_request_duration_seconds Time to serve an API request.\n"
		"# TYPE vmmd_api_request_duration_seconds histogram\n");
	for (struct series *s = d->metrics->series; s; s = s->next) {
		const char *t = s->transport, *r = s->route;

		for (size_t i = 0; i < NB; i++)
			out(&b,
			    "vmmd_api_request_duration_seconds_bucket{transport=\"%s\",route=\"%s\","
			    "code=\"%d\",le=\"%g\"} %llu\n",
			    t, r, s->code, buckets[i], (unsigned long long)s->le[i]);
		out(&b,
		    "vmmd_api_request_duration_seconds_bucket{transport=\"%s\",route=\"%s\","
		    "code=\"%d\",le=\"+Inf\"} %llu\n",
		    t, r, s->code, (unsigned long long)s->count);
		out(&b,
		    "vmmd_api_request_duration_seconds_sum{transport=\"%s\",route=\"%s\","
		    "code=\"%d\"} %.6f\n",
		    t, r, s->code, s->sum);
		out(&b,
		    "vmmd_api_request_duration_seconds_count{transport=\"%s\",route=\"%s\","
		    "code=\"%d\"} %llu\n",
		    t, r, s->code, (unsigned long long)s->count);
	}
	out(&b, "# HELP vmmd_migrations_total Live migrations that ended, by direction and "
		"result.\n# TYPE vmmd_migrations_total counter\n");
	for (int dir = 0; dir < 2; dir++)
		for (size_t i = 0; i < NR_MIG_RESULTS; i++)
			out(&b, "vmmd_migrations_total{direction=\"%s\",result=\"%s\"} %llu\n",
			    dir ? "in" : "out", mig_results[i],
			    (unsigned long long)d->metrics->migrations[dir][i]);
	out(&b, "# HELP vmmd_migration_downtime_seconds Guest downtime of the outgoing "
		"migrations that succeeded.\n# TYPE vmmd_migration_downtime_seconds summary\n"
		"vmmd_migration_downtime_seconds_sum %.3f\n"
		"vmmd_migration_downtime_seconds_count %llu\n",
	    (double)d->metrics->downtime_ms_sum / 1000,
	    (unsigned long long)d->metrics->downtime_count);
	out(&b, "# HELP vmmd_migration_duration_seconds Operation time of the outgoing "
		"migrations that succeeded.\n# TYPE vmmd_migration_duration_seconds summary\n"
		"vmmd_migration_duration_seconds_sum %.3f\n"
		"vmmd_migration_duration_seconds_count %llu\n"
		"# HELP vmmd_migration_sent_bytes_total Bytes outgoing migrations sent, whatever "
		"their result.\n# TYPE vmmd_migration_sent_bytes_total counter\n"
		"vmmd_migration_sent_bytes_total %llu\n",
	    (double)d->metrics->total_ms_sum / 1000,
	    (unsigned long long)d->metrics->downtime_count,
	    (unsigned long long)d->metrics->out_bytes);
	out(&b, "# HELP vmmd_paravisor_services_total ServiceVm operations that ended, by "
		"result.\n# TYPE vmmd_paravisor_services_total counter\n");
	for (size_t i = 0; i < 3; i++)
		out(&b, "vmmd_paravisor_services_total{result=\"%s\"} %llu\n", svc_results[i],
		    (unsigned long long)d->metrics->services[i]);
	out(&b, "# HELP vmmd_paravisor_blackout_seconds I/O blackout of each device moved to a "
		"new paravisor.\n# TYPE vmmd_paravisor_blackout_seconds summary\n"
		"vmmd_paravisor_blackout_seconds_sum %.3f\n"
		"vmmd_paravisor_blackout_seconds_count %llu\n"
		"# HELP vmmd_paravisor_blackout_max_seconds The longest of them.\n"
		"# TYPE vmmd_paravisor_blackout_max_seconds gauge\n"
		"vmmd_paravisor_blackout_max_seconds %.3f\n",
	    (double)d->metrics->blackout_ms_sum / 1000,
	    (unsigned long long)d->metrics->blackout_count,
	    (double)d->metrics->blackout_ms_max / 1000);
	pthread_mutex_unlock(&d->metrics->lock);
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*text = b.p;
	*len = b.len;
	return 0;
}
