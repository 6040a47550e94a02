/* cli/table.c — aligned text tables, for `vmmctl list` and friends. */
#include "cli/table.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void table__init(struct table *t, size_t nr_cols, const char *const *head)
{
	memset(t, 0, sizeof(*t));
	t->nr_cols = nr_cols < TABLE_MAX_COLS ? nr_cols : TABLE_MAX_COLS;
	for (size_t i = 0; i < t->nr_cols; i++)
		t->head[i] = head[i];
}

int table__add(struct table *t, const char *const *row)
{
	char **cells = realloc(t->cells, (t->nr_rows + 1) * t->nr_cols * sizeof(*cells));

	if (!cells)
		return -ENOMEM;
	t->cells = cells;
	cells += t->nr_rows * t->nr_cols;
	for (size_t i = 0; i < t->nr_cols; i++) {
		cells[i] = strdup(row[i] && *row[i] ? row[i] : "-");
		if (!cells[i]) {
			while (i--)
				free(cells[i]);
			return -ENOMEM;
		}
	}
	t->nr_rows++;
	return 0;
}

static void print_row(const struct table *t, const size_t *width, const char *const *row, FILE *out)
{
	for (size_t i = 0; i < t->nr_cols; i++) {
		if (i + 1 == t->nr_cols)
			fprintf(out, "%s\n", row[i]);
		else
			fprintf(out, "%-*s  ", (int)width[i], row[i]);
	}
}

void table__print(const struct table *t, FILE *out)
{
	size_t width[TABLE_MAX_COLS];

	for (size_t i = 0; i < t->nr_cols; i++) {
		width[i] = strlen(t->head[i]);
		for (size_t r = 0; r < t->nr_rows; r++) {
			size_t w = strlen(t->cells[r * t->nr_cols + i]);

			if (w > width[i])
				width[i] = w;
		}
	}
	print_row(t, width, t->head, out);
	for (size_t r = 0; r < t->nr_rows; r++)
		print_row(t, width, (const char *const *)&t->cells[r * t->nr_cols], out);
}

void table__free(struct table *t)
{
	for (size_t i = 0; i < t->nr_rows * t->nr_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nr_rows = 0;
}

void fmt__enum(char *buf, size_t len, const char *name, const char *prefix)
{
	size_t plen = strlen(prefix), i;

	if (!len)
		return;
	if (!name || !*name)
		name = "-";
	else if (!strncmp(name, prefix, plen) && name[plen])
		name += plen;
	for (i = 0; name[i] && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[i] = 0;
}

void fmt__mib(char *buf, size_t len, uint64_t mib)
{
	if (mib && mib % (1024 * 1024) == 0)
		snprintf(buf, len, "%lluT", (unsigned long long)(mib >> 20));
	else if (mib && mib % 1024 == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(mib >> 10));
	else
		snprintf(buf, len, "%lluM", (unsigned long long)mib);
}

void fmt__time_ms(char *buf, size_t len, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&s, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
}
