/* common/evloop.h — a tiny epoll loop on its own thread for host-side fds
 * (serial backends, signals).  Device emulation never blocks a vCPU thread on
 * a host fd; it registers the fd here instead. */
#ifndef VMMD_COMMON_EVLOOP_H
#define VMMD_COMMON_EVLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*evloop_fn)(int fd, uint32_t events, void *opaque);

struct evloop_entry;

struct evloop {
	int epfd;
	struct evloop_entry *entries; /* freed at exit: a callback may still run */
	pthread_mutex_t lock;
	int wake_fd; /* eventfd that makes the loop return */
	pthread_t thread;
	int running;
	bool held; /* evloop__start_held: the thread waits on held_cond */
	pthread_cond_t held_cond;
};

int evloop__init(struct evloop *loop);
/* events are EPOLLIN/EPOLLOUT...; the callback runs on the loop's thread. */
int evloop__add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn,
		void *opaque);
int evloop__del(struct evloop *loop, int fd);
int evloop__start(struct evloop *loop);
/* The thread now, its first callback only after evloop__release: for a VM
 * whose device state is still arriving (vmm --incoming). */
int evloop__start_held(struct evloop *loop);
void evloop__release(struct evloop *loop);
void evloop__stop(struct evloop *loop);
void evloop__exit(struct evloop *loop);

#endif
