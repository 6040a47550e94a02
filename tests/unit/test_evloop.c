/* tests/unit/test_evloop.c — the event loop's thread: callbacks run on it,
 * and a held loop (vmm --incoming, whose devices are still arriving) runs
 * none until released, yet stops cleanly while held. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/evloop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int calls; /* callbacks run */
static int efd;	  /* the eventfd whose readiness they handle */

static void count_event(int fd, uint32_t events, void *opaque)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) == sizeof(v))
		__atomic_fetch_add(&calls, 1, __ATOMIC_SEQ_CST);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Waits up to 2 s for the callback count to reach want. */
static int calls_reach(int want)
{
	for (int i = 0; i < 200 && __atomic_load_n(&calls, __ATOMIC_SEQ_CST) < want; i++)
		sleep_ms(10);
	return __atomic_load_n(&calls, __ATOMIC_SEQ_CST);
}

static int setup(void **state)
{
	static struct evloop loop;

	calls = 0;
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0 || evloop__init(&loop) || evloop__add(&loop, efd, EPOLLIN, count_event, NULL))
		return -1;
	*state = &loop;
	return 0;
}

static int teardown(void **state)
{
	evloop__exit(*state);
	close(efd);
	return 0;
}

static void kick(void)
{
	uint64_t one = 1;

	assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
}

static void test_started_loop_runs_callbacks(void **state)
{
	struct evloop *loop = *state;

	assert_int_equal(evloop__start(loop), 0);
	kick();
	assert_int_equal(calls_reach(1), 1);
}

static void test_held_loop_waits_for_release(void **state)
{
	struct evloop *loop = *state;

	assert_int_equal(evloop__start_held(loop), 0);
	kick();
	sleep_ms(200);
	assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 0);
	evloop__release(loop);
	assert_int_equal(calls_reach(1), 1);
}

static void test_held_loop_stops_without_running(void **state)
{
	struct evloop *loop = *state;

	assert_int_equal(evloop__start_held(loop), 0);
	kick();
	evloop__stop(loop); /* must not hang on the held thread */
	assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_started_loop_runs_callbacks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_loop_waits_for_release, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_loop_stops_without_running, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
