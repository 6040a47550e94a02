/* migration/thread_nice.c — per-thread nice values.  On Linux the nice value
 * belongs to a thread (setpriority(2) on a thread id), so a migration can
 * favour its own threads over the vCPUs of the very guest it moves: on a
 * host with idle CPUs nothing changes; on a contended one (a guest dirtying
 * memory flat out beside both migration ends on a small host) the pages
 * move at the link's pace and the guest, which is about to stop anyway,
 * dirties fewer of them. */
#include "migration/thread_nice.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

int thread_nice__get(void)
{
	int v;

	errno = 0;
	v = getpriority(PRIO_PROCESS, (id_t)gettid());
	return errno ? 0 : v;
}

int thread_nice__set(int nice, int *old)
{
	*old = thread_nice__get();
	if (nice == *old)
		return 0;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice))
		return -errno;
	return 0;
}

void thread_nice__restore(int old)
{
	if (thread_nice__get() != old)
		setpriority(PRIO_PROCESS, (id_t)gettid(), old);
}
