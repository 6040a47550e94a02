/* daemon/daemon.c — bring the core up (load, re-attach, reconcile,
 * supervise) and down (workers are left running on purpose). */
#include "daemon/daemon.h"
#include "daemon/migrate.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int mkdir_sub(const char *base, const char *sub)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", base, sub);
	if (mkdir(p, 0700) && errno != EEXIST) {
		pr_err("cannot create %s: %s", p, strerror(errno));
		return -errno;
	}
	return 0;
}

int daemon__init(struct daemon *d, const struct daemon_config *cfg)
{
	pthread_condattr_t ca;
	int r;

	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&d->changed, &ca);
	pthread_condattr_destroy(&ca);
	d->events = events__new(1024);
	d->metrics = metrics__new();
	if (!d->events || !d->metrics)
		return -ENOMEM;
	if ((r = mkdir_sub(cfg->state_dir, "vms")) || (r = mkdir_sub(cfg->state_dir, "operations")) ||
	    (r = mkdir_sub(cfg->state_dir, "images")) || (r = mkdir_sub(cfg->run_dir, "vms")))
		return r;
	if ((r = store__load(d)))
		return r;
	pthread_mutex_lock(&d->lock);
	worker__reattach(d);
	ops__reconcile(d);
	pthread_mutex_unlock(&d->lock);
	if ((r = worker__supervise_start(d)))
		return r;
	return migrate_in__start(d);
}

void daemon__fini(struct daemon *d)
{
	struct timespec ts = { time(NULL) + 5, 0 };

	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
	migrate_in__stop(d);
	pthread_mutex_lock(&d->lock);
	/* Operation threads see `stopping` and return without touching the
	 * VMs; the next vmmd reconciles their persisted operations. */
	while (d->nr_threads && pthread_cond_timedwait(&d->changed, &d->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->supervisor, NULL);
	if (d->nr_threads)
		return; /* a thread is stuck: leak rather than free under it */
	while (d->vms) {
		struct vm *vm = d->vms;

		d->vms = vm->next;
		vm__free(vm);
	}
	while (d->ops) {
		struct op *op = d->ops;

		d->ops = op->next;
		op__free(op);
	}
	events__free(d->events);
	metrics__free(d->metrics);
}
