/* cli/table.h — aligned text tables for people, and the few value formats
 * vmmctl's tables share (state names, sizes, times). */
#ifndef VMMD_CLI_TABLE_H
#define VMMD_CLI_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TABLE_MAX_COLS 8

struct table {
	size_t nr_cols;
	const char *head[TABLE_MAX_COLS];
	char **cells; /* nr_rows * nr_cols, owned */
	size_t nr_rows;
};

void table__init(struct table *t, size_t nr_cols, const char *const *head);
/* Appends a row of nr_cols strings (copied; NULL prints as "-"). */
int table__add(struct table *t, const char *const *row);
/* Columns padded to their widest cell, two spaces apart, the last column
 * unpadded so lines carry no trailing blanks. */
void table__print(const struct table *t, FILE *out);
void table__free(struct table *t);

/* "VM_STATE_RUNNING" -> "running": the enum name minus its prefix, lower case. */
void fmt__enum(char *buf, size_t len, const char *name, const char *prefix);
/* 512 -> "512M", 2048 -> "2G", 1536 -> "1536M". */
void fmt__mib(char *buf, size_t len, uint64_t mib);
/* Milliseconds since the epoch -> "2026-11-25 10:54:14" (UTC); 0 -> "-". */
void fmt__time_ms(char *buf, size_t len, int64_t ms);

#endif
