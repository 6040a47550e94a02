/* tests/unit/test_snapshot_file.c — a snapshot's state and memory files:
 * round trips, sparse RAM, and every corruption refused with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "migration/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM (4u << 20)

struct fixture {
	char dir[64];
	int dirfd;
	char why[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/vmmd-snapfile.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_true(f->dirfd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlinkat(f->dirfd, SNAPSHOT_STATE, 0);
	unlinkat(f->dirfd, SNAPSHOT_MEMORY, 0);
	close(f->dirfd);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void poke(struct fixture *f, const char *name, off_t off, uint8_t xor)
{
	int fd = openat(f->dirfd, name, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= xor;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_state_round_trip(void **state)
{
	struct fixture *f = *state;
	const uint8_t m[] = "manifest bytes";
	uint8_t *out = NULL;
	size_t len = 0;

	assert_int_equal(snapshot_file__write_state(f->dirfd, m, sizeof(m), f->why, sizeof(f->why)), 0);
	assert_int_equal(snapshot_file__read_state(f->dirfd, &out, &len, f->why, sizeof(f->why)), 0);
	assert_int_equal(len, sizeof(m));
	assert_memory_equal(out, m, sizeof(m));
	free(out);
}

static void test_state_with_a_flipped_byte_is_refused(void **state)
{
	struct fixture *f = *state;
	const uint8_t m[64] = { 1, 2, 3 };
	uint8_t *out = NULL;
	size_t len;

	assert_int_equal(snapshot_file__write_state(f->dirfd, m, sizeof(m), f->why, sizeof(f->why)), 0);
	poke(f, SNAPSHOT_STATE, 24 + 10, 0x40);
	assert_int_equal(snapshot_file__read_state(f->dirfd, &out, &len, f->why, sizeof(f->why)),
			 -EINVAL);
	assert_null(out);
	assert_non_null(strstr(f->why, "checksum mismatch"));
}

static void test_state_truncated_or_foreign_is_refused(void **state)
{
	struct fixture *f = *state;
	const uint8_t m[64] = { 0 };
	uint8_t *out = NULL;
	size_t len;
	int fd;

	assert_int_equal(snapshot_file__write_state(f->dirfd, m, sizeof(m), f->why, sizeof(f->why)), 0);
	fd = openat(f->dirfd, SNAPSHOT_STATE, O_RDWR);
	assert_int_equal(ftruncate(fd, 24 + 64), 0);
	close(fd);
	assert_int_equal(snapshot_file__read_state(f->dirfd, &out, &len, f->why, sizeof(f->why)),
			 -EINVAL);
	assert_non_null(strstr(f->why, "truncated"));

	poke(f, SNAPSHOT_STATE, 0, 0x20); /* "VMMDSNAP" -> "vMMDSNAP" */
	assert_int_equal(snapshot_file__read_state(f->dirfd, &out, &len, f->why, sizeof(f->why)),
			 -EINVAL);
	assert_non_null(strstr(f->why, "bad magic"));
}

static void test_state_from_a_newer_format_is_refused(void **state)
{
	struct fixture *f = *state;
	const uint8_t m[8] = { 0 };
	uint8_t *out = NULL;
	size_t len;

	assert_int_equal(snapshot_file__write_state(f->dirfd, m, sizeof(m), f->why, sizeof(f->why)), 0);
	poke(f, SNAPSHOT_STATE, 8, SNAPSHOT_FORMAT ^ (SNAPSHOT_FORMAT + 1));
	assert_int_equal(snapshot_file__read_state(f->dirfd, &out, &len, f->why, sizeof(f->why)),
			 -EINVAL);
	assert_non_null(strstr(f->why, "snapshot format 2"));
}

static void test_missing_state_names_the_file(void **state)
{
	struct fixture *f = *state;
	uint8_t *out = NULL;
	size_t len;

	assert_int_equal(snapshot_file__read_state(f->dirfd, &out, &len, f->why, sizeof(f->why)),
			 -ENOENT);
	assert_non_null(strstr(f->why, "no state file"));
}

/* RAM in a memfd, as vmm has it: a few non-zero pages, a zero page that was
 * touched, and never-touched holes. */
static uint8_t *make_ram(int *mfd)
{
	uint8_t *ram;

	*mfd = memfd_create("test-ram", 0);
	assert_true(*mfd >= 0);
	assert_int_equal(ftruncate(*mfd, RAM), 0);
	ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, *mfd, 0);
	assert_true(ram != MAP_FAILED);
	memset(ram + 0x1000, 0xaa, 0x3000);	/* three pages */
	memset(ram + 0x10000, 0, 0x1000);	/* touched but zero */
	ram[0x200000 + 17] = 5;			/* one byte, 2 MiB in */
	memset(ram + RAM - 0x1000, 0x11, 0x1000); /* the last page */
	return ram;
}

static void test_memory_is_sparse_and_round_trips(void **state)
{
	struct fixture *f = *state;
	struct mem_digest w, r;
	uint8_t *ram, *back;
	struct stat st;
	int mfd, fd;

	ram = make_ram(&mfd);
	assert_int_equal(snapshot_mem__write(f->dirfd, ram, mfd, RAM, &w, f->why, sizeof(f->why)), 0);
	assert_int_equal(w.pages, 5);
	fd = openat(f->dirfd, SNAPSHOT_MEMORY, O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(st.st_size, RAM);
	assert_true(st.st_blocks * 512 < RAM / 2); /* holes, not zeros */

	back = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_int_equal(snapshot_mem__read(f->dirfd, back, RAM, &r, f->why, sizeof(f->why)), 0);
	assert_memory_equal(back, ram, RAM);
	assert_int_equal(r.pages, w.pages);
	assert_memory_equal(r.sha256, w.sha256, sizeof(w.sha256));

	/* Lazy: the same bytes through a private mapping; writes stay private. */
	assert_int_equal(snapshot_mem__map(f->dirfd, back, RAM, f->why, sizeof(f->why)), 0);
	assert_memory_equal(back, ram, RAM);
	back[0x1000] = 0;
	assert_int_equal(snapshot_mem__read(f->dirfd, ram, RAM, &r, f->why, sizeof(f->why)), 0);
	assert_int_equal(ram[0x1000], 0xaa);
	munmap(back, RAM);
	munmap(ram, RAM);
	close(mfd);
}

static void test_memory_corruption_changes_the_digest(void **state)
{
	struct fixture *f = *state;
	struct mem_digest w, r;
	uint8_t *ram;
	int mfd;

	ram = make_ram(&mfd);
	assert_int_equal(snapshot_mem__write(f->dirfd, ram, mfd, RAM, &w, f->why, sizeof(f->why)), 0);
	poke(f, SNAPSHOT_MEMORY, 0x2000 + 7, 0x01);
	assert_int_equal(snapshot_mem__read(f->dirfd, ram, RAM, &r, f->why, sizeof(f->why)), 0);
	assert_int_equal(r.pages, w.pages);
	assert_memory_not_equal(r.sha256, w.sha256, sizeof(w.sha256));
	munmap(ram, RAM);
	close(mfd);
}

static void test_memory_of_another_size_is_refused(void **state)
{
	struct fixture *f = *state;
	struct mem_digest w, r;
	uint8_t *ram;
	int mfd;

	ram = make_ram(&mfd);
	assert_int_equal(snapshot_mem__write(f->dirfd, ram, mfd, RAM, &w, f->why, sizeof(f->why)), 0);
	assert_int_equal(snapshot_mem__read(f->dirfd, ram, RAM / 2, &r, f->why, sizeof(f->why)),
			 -EINVAL);
	assert_non_null(strstr(f->why, "truncated or not this snapshot's"));
	assert_int_equal(snapshot_mem__map(f->dirfd, ram, RAM * 2, f->why, sizeof(f->why)), -EINVAL);
	munmap(ram, RAM);
	close(mfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_with_a_flipped_byte_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_state_truncated_or_foreign_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_state_from_a_newer_format_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_state_names_the_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_is_sparse_and_round_trips, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_memory_corruption_changes_the_digest, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_memory_of_another_size_is_refused, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
