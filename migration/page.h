/* migration/page.h — guest RAM as 4 KiB pages, for snapshots and migration. */
#ifndef VMMD_MIGRATION_PAGE_H
#define VMMD_MIGRATION_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#define GUEST_PAGE 4096u

/* Zero pages are never stored or sent, only noted. */
static inline bool page__is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned int i = 0; i < GUEST_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

#endif
