/* common/evloop.c — epoll loop thread. */
#include "common/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct evloop_entry {
	int fd; /* -1 once removed */
	evloop_fn fn;
	void *opaque;
	struct evloop_entry *next;
};

int evloop__init(struct evloop *loop)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	loop->running = 0;
	loop->entries = NULL;
	loop->held = false;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->held_cond, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wake_fd < 0)
		goto out_close_ep;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0)
		goto out_close_wake;
	return 0;

out_close_wake:
	close(loop->wake_fd);
out_close_ep:
	close(loop->epfd);
	return -errno;
}

int evloop__add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn,
		void *opaque)
{
	struct evloop_entry *e = calloc(1, sizeof(*e));
	struct epoll_event ev = { .events = events };

	if (!e)
		return -ENOMEM;
	e->fd = fd;
	e->fn = fn;
	e->opaque = opaque;
	ev.data.ptr = e;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		free(e);
		return err;
	}
	pthread_mutex_lock(&loop->lock);
	e->next = loop->entries;
	loop->entries = e;
	pthread_mutex_unlock(&loop->lock);
	return 0;
}

/* A removed entry stays allocated until evloop__exit(): its callback may be
 * running on the loop thread right now; a VM removes a handful at most. */
int evloop__del(struct evloop *loop, int fd)
{
	struct evloop_entry *e;

	if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		return -errno;
	pthread_mutex_lock(&loop->lock);
	for (e = loop->entries; e; e = e->next)
		if (e->fd == fd)
			e->fd = -1;
	pthread_mutex_unlock(&loop->lock);
	return 0;
}

static void *evloop__thread(void *arg)
{
	struct evloop *loop = arg;
	struct epoll_event evs[16];

	pthread_mutex_lock(&loop->lock);
	while (loop->held)
		pthread_cond_wait(&loop->held_cond, &loop->lock);
	pthread_mutex_unlock(&loop->lock);
	while (__atomic_load_n(&loop->running, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(loop->epfd, evs, 16, -1);

		for (int i = 0; i < n; i++) {
			struct evloop_entry *e = evs[i].data.ptr;

			if (!e || e->fd < 0)
				continue; /* wake_fd (re-check running) or removed */
			e->fn(e->fd, evs[i].events, e->opaque);
		}
	}
	return NULL;
}

int evloop__start(struct evloop *loop)
{
	int err;

	loop->running = 1;
	err = pthread_create(&loop->thread, NULL, evloop__thread, loop);
	if (err) {
		loop->running = 0;
		return -err;
	}
	return 0;
}

int evloop__start_held(struct evloop *loop)
{
	loop->held = true;
	return evloop__start(loop);
}

void evloop__release(struct evloop *loop)
{
	pthread_mutex_lock(&loop->lock);
	loop->held = false;
	pthread_cond_broadcast(&loop->held_cond);
	pthread_mutex_unlock(&loop->lock);
}

void evloop__stop(struct evloop *loop)
{
	uint64_t one = 1;

	if (!loop->running)
		return;
	__atomic_store_n(&loop->running, 0, __ATOMIC_RELEASE);
	evloop__release(loop);
	if (write(loop->wake_fd, &one, sizeof(one)) < 0) {
		/* eventfd write cannot fail short of overflow; nothing to do */
	}
	pthread_join(loop->thread, NULL);
}

void evloop__exit(struct evloop *loop)
{
	evloop__stop(loop);
	while (loop->entries) {
		struct evloop_entry *e = loop->entries;

		loop->entries = e->next;
		free(e);
	}
	close(loop->wake_fd);
	close(loop->epfd);
	pthread_mutex_destroy(&loop->lock);
	pthread_cond_destroy(&loop->held_cond);
}
