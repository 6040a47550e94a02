/* tests/unit/test_snapshot_lazy.c — the userfaultfd lazy restore on real
 * shared memory: a memfd that first holds garbage ends up holding exactly
 * the snapshot's memory file (holes as zeros), pages touched before the
 * loader reached them come in on the fault, and what was written to such a
 * page is not overwritten by the later fill; a second mapping of the memfd
 * (as the paravisor's) sees the same bytes.  Skipped where userfaultfd is
 * not allowed (not root and vm.unprivileged_userfaultfd=0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "migration/snapshot_file.h"
#include "migration/snapshot_lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM   (64u << 20)
#define PAGE  4096u
#define PAGES (RAM / PAGE)

struct fixture {
	char dir[64];
	int dirfd, memfd;
	uint8_t *src, *ram;
	int loaded, failed;
	uint64_t pages;
	char why[512];
};

static void loaded(void *opaque, uint64_t pages)
{
	struct fixture *f = opaque;

	f->pages = pages;
	__atomic_store_n(&f->loaded, 1, __ATOMIC_RELEASE);
}

static void failed(void *opaque, const char *why)
{
	struct fixture *f = opaque;

	snprintf(f->why, sizeof(f->why), "%s", why);
	__atomic_store_n(&f->failed, 1, __ATOMIC_RELEASE);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct mem_digest d;

	strcpy(f->dir, "/tmp/vmmd-snaplazy.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_true(f->dirfd >= 0);
	/* Every third page zero (a hole in the file), the rest numbered. */
	f->src = calloc(1, RAM);
	assert_non_null(f->src);
	for (uint32_t i = 0; i < PAGES; i++) {
		if (i % 3 == 0)
			continue;
		memset(f->src + (size_t)i * PAGE, (int)(i * 7 + 1), PAGE);
		memcpy(f->src + (size_t)i * PAGE, &i, sizeof(i));
	}
	assert_int_equal(snapshot_mem__write(f->dirfd, f->src, -1, RAM, &d, f->why, sizeof(f->why)),
			 0);
	f->memfd = memfd_create("ram", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, RAM), 0);
	f->ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->ram != MAP_FAILED);
	memset(f->ram, 0xaa, RAM); /* what set-up left: must go */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	munmap(f->ram, RAM);
	close(f->memfd);
	close(f->dirfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->src);
	free(f);
	return 0;
}

static void test_lazy_restore_fills_shared_ram_on_fault_and_in_order(void **state)
{
	struct fixture *f = *state;
	struct snapshot_lazy_ops ops = {.loaded = loaded, .failed = failed, .opaque = f};
	struct snapshot_lazy *l = NULL;
	const uint32_t last = PAGES - 1, mine = PAGES - 2;
	uint8_t *other;
	int err;

	err =
	    snapshot_lazy__start(f->dirfd, f->ram, RAM, f->memfd, &ops, &l, f->why, sizeof(f->why));
	if (err == -EPERM || err == -ENOSYS) {
		print_message("userfaultfd not allowed here: %s\n", f->why);
		skip();
	}
	assert_int_equal(err, 0);
	/* Pages at the end are the loader's last: these come in on the fault. */
	assert_memory_equal(f->ram + (size_t)last * PAGE, f->src + (size_t)last * PAGE, PAGE);
	memcpy(f->ram + (size_t)mine * PAGE, "mine", 4);
	assert_int_equal(snapshot_lazy__wait(l), 0);
	assert_true(__atomic_load_n(&f->loaded, __ATOMIC_ACQUIRE));
	assert_false(f->failed);
	assert_true(f->pages > 0);

	assert_memory_equal(f->ram + (size_t)mine * PAGE, "mine", 4);
	memcpy(f->src + (size_t)mine * PAGE, "mine", 4);
	assert_memory_equal(f->ram, f->src, RAM);
	/* The data is in the memfd itself, not in a private copy. */
	other = mmap(NULL, RAM, PROT_READ, MAP_SHARED, f->memfd, 0);
	assert_true(other != MAP_FAILED);
	assert_memory_equal(other, f->src, RAM);
	munmap(other, RAM);
	/* Unregistered: a page written now is simply there. */
	f->ram[0] = 1;
	assert_int_equal(f->ram[0], 1);
	snapshot_lazy__free(l);
}

static void test_lazy_restore_without_memory_file_is_refused(void **state)
{
	struct fixture *f = *state;
	struct snapshot_lazy_ops ops = {.loaded = loaded, .failed = failed, .opaque = f};
	struct snapshot_lazy *l = NULL;

	assert_int_equal(unlinkat(f->dirfd, SNAPSHOT_MEMORY, 0), 0);
	assert_true(snapshot_lazy__start(f->dirfd, f->ram, RAM, f->memfd, &ops, &l, f->why,
					 sizeof(f->why)) < 0);
	assert_non_null(strstr(f->why, "no memory file"));
	assert_null(l);
	/* Nothing was registered or emptied. */
	assert_int_equal(f->ram[5], 0xaa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_lazy_restore_fills_shared_ram_on_fault_and_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lazy_restore_without_memory_file_is_refused, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
