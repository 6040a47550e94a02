/*
 * vmm/paravisor_netstack.c — servicing a paravisor NIC's netstack (the
 * process that runs its slirp stack, paravisor/netstack.c) as well as its
 * paravisor: {"cmd":"service","netstack":true}.
 *
 * libslirp cannot hand a connection to another process, so the old
 * netstack is not stopped: it drains.  The new one starts from the new
 * binary linked to the old one, gets libslirp's state (DHCP leases, IP
 * ids) and the hostfwd ports, and carries every new connection; the old one
 * keeps the connections it has, their frames going through the new one,
 * and exits when the last has closed.  vmm reaps it then; until then
 * paravisor-status lists it.  If the paravisor's servicing fails after
 * the new netstack started, the new one is stopped and the old one listens
 * again, as if nothing happened (the NAT connections never moved).
 */
#include "common/log.h"
#include "common/why.h"
#include "net/socket.h"
#include "vmm/dev_vhost_user.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct pv_drain {
	struct pv_drain *next;
	struct pv_dev *d;
	struct paravisor_proc proc;
	bool watched;
};

/* The event loop: a draining netstack exited (its last connection closed,
 * or the netstack it drained into is gone). */
static void netstack__drained(int fd, uint32_t events, void *opaque)
{
	struct pv_drain *dr = opaque, **p;
	char how[128];
	pid_t pid;

	(void)events;
	pv__lock();
	if (!dr->watched) {
		pv__unlock();
		return;
	}
	evloop__del(&dr->d->vm->loop, fd);
	dr->watched = false;
	pid = dr->proc.pid;
	if (!paravisor_proc__wait(&dr->proc, 1000, how, sizeof(how)))
		snprintf(how, sizeof(how), "ended");
	pr_info("%s \"%s\": the netstack servicing replaced (pid %d) %s: drained", dr->d->noun,
		dr->d->id, (int)pid, how);
	for (p = &dr->d->draining; *p; p = &(*p)->next)
		if (*p == dr) {
			*p = dr->next;
			break;
		}
	free(dr);
	pv__unlock();
}

/* Puts the set-aside netstack back as d's current one. */
static void netstack__restore_old(struct pv_dev *d, struct pv_netstack_swap *sw)
{
	d->netstack = sw->old;
	d->has_netstack = true;
	pthread_mutex_lock(&d->netstack_ctl_lock);
	d->netstack_ctl = sw->old_ctl;
	pthread_mutex_unlock(&d->netstack_ctl_lock);
	d->extra_fd = sw->old_extra_fd;
	if (sw->old_watched && d->netstack.pidfd >= 0)
		d->netstack_watched = !evloop__add(&d->vm->loop, d->netstack.pidfd, EPOLLIN,
						   pv_dev__netstack_exited, d);
}

int pv_netstack__replace(struct pv_dev *d, const char *path, struct pv_netstack_swap *sw, char *why,
			 size_t whylen)
{
	uint8_t *state = NULL;
	size_t len = 0;
	char awhy[256];
	int lk[2], err;

	memset(sw, 0, sizeof(*sw));
	if (!d->has_netstack)
		return why__set(why, whylen, -ENOTCONN, "%s %s: no netstack runs (it %s)", d->noun,
				d->id, d->netstack_died[0] ? d->netstack_died : "never started");
	err = pv_dev__netstack_ask(d, NET_CTL_SAVE, NULL, 0, -1, &state, &len, awhy, sizeof(awhy));
	if (err)
		return why__set(why, whylen, err,
				"%s %s: the running netstack did not save libslirp's state: %s",
				d->noun, d->id, awhy);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lk)) {
		err = -errno;
		free(state);
		return why__set(why, whylen, err, "%s %s: socketpair: %s", d->noun, d->id,
				strerror(errno));
	}
	err =
	    pv_dev__netstack_ask(d, NET_CTL_DRAIN, NULL, 0, lk[1], NULL, NULL, awhy, sizeof(awhy));
	close(lk[1]);
	if (err) {
		close(lk[0]);
		free(state);
		return why__set(why, whylen, err,
				"%s %s: the running netstack (pid %d) did not hand over: %s",
				d->noun, d->id, (int)d->netstack.pid, awhy);
	}
	/* The old one aside (no restart if it dies now: undo or commit say
	 * what becomes of it); d gets the new one. */
	sw->done = true;
	sw->old = d->netstack;
	sw->old_watched = d->netstack_watched;
	if (d->netstack_watched)
		evloop__del(&d->vm->loop, d->netstack.pidfd);
	d->netstack_watched = false;
	pthread_mutex_lock(&d->netstack_ctl_lock);
	sw->old_ctl = d->netstack_ctl;
	d->netstack_ctl = -1;
	pthread_mutex_unlock(&d->netstack_ctl_lock);
	sw->old_extra_fd = d->extra_fd;
	d->extra_fd = -1;
	d->has_netstack = false;
	err = pv_dev__start_netstack(d, path, lk[0]);
	close(lk[0]);
	if (err) {
		why__set(why, whylen, err, "%s %s: the new netstack did not start (see above)",
			 d->noun, d->id);
	} else {
		err = pv_dev__netstack_ask(d, NET_CTL_LOAD, state, len, -1, NULL, NULL, awhy,
					   sizeof(awhy));
		if (err)
			why__set(why, whylen, err,
				 "%s %s: the new netstack (pid %d) did not load libslirp's "
				 "state: %s",
				 d->noun, d->id, (int)d->netstack.pid, awhy);
	}
	free(state);
	if (err) {
		pv_netstack__undo(d, sw);
		return err;
	}
	sw->new_pid = d->netstack.pid;
	if (d->netstack.pidfd >= 0)
		d->netstack_watched = !evloop__add(&d->vm->loop, d->netstack.pidfd, EPOLLIN,
						   pv_dev__netstack_exited, d);
	pr_info("%s \"%s\": new netstack %s (pid %d) took libslirp's state (%zu bytes) and the "
		"hostfwd ports; the running one (pid %d) drains into it",
		d->noun, d->id, d->netstack.path, (int)d->netstack.pid, len, (int)sw->old.pid);
	return 0;
}

void pv_netstack__undo(struct pv_dev *d, struct pv_netstack_swap *sw)
{
	char awhy[256];

	if (!sw->done)
		return;
	sw->done = false;
	/* The new one exits once its NIC end is closed everywhere. */
	if (d->extra_fd >= 0)
		close(d->extra_fd);
	d->extra_fd = -1;
	pv_dev__stop_netstack(d);
	netstack__restore_old(d, sw);
	if (pv_dev__netstack_ask(d, NET_CTL_UNDRAIN, NULL, 0, -1, NULL, NULL, awhy, sizeof(awhy)))
		pr_err("%s \"%s\": the running netstack (pid %d) did not take its hostfwd ports "
		       "back: %s",
		       d->noun, d->id, (int)d->netstack.pid, awhy);
	else
		pr_info("%s \"%s\": the running netstack (pid %d) serves on, hostfwd ports "
			"included",
			d->noun, d->id, (int)d->netstack.pid);
}

void pv_netstack__commit(struct pv_dev *d, struct pv_netstack_swap *sw)
{
	struct pv_drain *dr;

	if (!sw->done)
		return;
	sw->done = false;
	/* The old paravisor's copy of the old socket went with it: the old
	 * netstack's NIC end is closed once ours is. */
	if (sw->old_extra_fd >= 0)
		close(sw->old_extra_fd);
	if (sw->old_ctl >= 0)
		close(sw->old_ctl);
	dr = calloc(1, sizeof(*dr));
	if (!dr) {
		pr_err("%s \"%s\": out of memory: stopping the old netstack (pid %d), its "
		       "connections with it",
		       d->noun, d->id, (int)sw->old.pid);
		paravisor_proc__stop(&sw->old, 0);
		return;
	}
	dr->d = d;
	dr->proc = sw->old;
	if (dr->proc.pidfd >= 0)
		dr->watched =
		    !evloop__add(&d->vm->loop, dr->proc.pidfd, EPOLLIN, netstack__drained, dr);
	dr->next = d->draining;
	d->draining = dr;
}

unsigned int pv_netstack__draining(const struct pv_dev *d, int pids[], unsigned int max)
{
	unsigned int n = 0;

	for (const struct pv_drain *dr = d->draining; dr && n < max; dr = dr->next)
		pids[n++] = (int)dr->proc.pid;
	return n;
}

void pv_netstack__release(struct pv_dev *d)
{
	while (d->draining) {
		struct pv_drain *dr = d->draining;

		d->draining = dr->next;
		if (dr->watched)
			evloop__del(&d->vm->loop, dr->proc.pidfd);
		/* With the current netstack gone it exits by itself. */
		paravisor_proc__stop(&dr->proc, PV_EXIT_GRACE_MS);
		free(dr);
	}
}
