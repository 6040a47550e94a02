/* vmm/vcpu_throttle.c — slows the guest's vCPUs down to a duty cycle.
 *
 * A live migration whose guest dirties memory faster than the link carries
 * it never converges; auto-converge trades guest speed for that.  A kicker
 * thread pulls every vCPU out of KVM_RUN once per period, and each kicked
 * vCPU sleeps pct% of the period before it goes back in, so the guest runs
 * (100 - pct)% of the time, however busy it is. */
#include "vmm/vcpu_throttle.h"

#include "common/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define THROTTLE_PERIOD_NS 10000000L /* 10 ms, as QEMU's cpu-throttle */

static void sleep_ns(long ns)
{
	struct timespec ts = {ns / 1000000000L, ns % 1000000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void *throttle__thread(void *arg)
{
	struct vm *vm = arg;

	while (__atomic_load_n(&vm->throttle_pct, __ATOMIC_ACQUIRE)) {
		sleep_ns(THROTTLE_PERIOD_NS);
		vcpus__kick(vm);
	}
	return NULL;
}

int vm__throttle(struct vm *vm, unsigned int pct)
{
	unsigned int old;
	int err;

	if (pct > 99)
		pct = 99;
	old = __atomic_exchange_n(&vm->throttle_pct, pct, __ATOMIC_ACQ_REL);
	if (old && !pct) {
		pthread_join(vm->throttle_thread, NULL);
	} else if (!old && pct) {
		err = pthread_create(&vm->throttle_thread, NULL, throttle__thread, vm);
		if (err) {
			__atomic_store_n(&vm->throttle_pct, 0, __ATOMIC_RELEASE);
			pr_err("vCPU throttle: cannot start its thread: %s", strerror(err));
			return -err;
		}
	}
	if (old != pct && pct)
		pr_info("vCPUs throttled: kept out of the guest %u%% of the time", pct);
	else if (old != pct)
		pr_info("vCPU throttle off");
	return 0;
}

void vcpu__throttle(struct vcpu *v)
{
	unsigned int pct = __atomic_load_n(&v->vm->throttle_pct, __ATOMIC_ACQUIRE);

	if (pct)
		sleep_ns(THROTTLE_PERIOD_NS / 100 * (long)pct);
}
