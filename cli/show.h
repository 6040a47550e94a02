/* cli/show.h — the API's JSON replies printed for people. */
#ifndef VMMD_CLI_SHOW_H
#define VMMD_CLI_SHOW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* The string at a dotted path ("spec.name"); "" if absent. */
const char *jstr(json_t *o, const char *path);
/* The integer at a dotted path: a JSON number or, for 64-bit fields, a
 * string of digits (api/json.h); 0 if absent. */
int64_t jint(json_t *o, const char *path);

/* NAME STATE VCPUS MEMORY ID of a ListVmsResponse. */
void show__vms(json_t *reply, FILE *out);
/* One Vm, a field per line. */
void show__vm(json_t *vm, FILE *out);
/* ID KIND VM STATE PROGRESS MESSAGE of a ListOperationsResponse; names
 * maps VM ids to names (a ListVmsResponse, may be NULL). */
void show__ops(json_t *reply, json_t *names, FILE *out);
/* One Operation, a field per line. */
void show__op(json_t *op, FILE *out);
/* "DIR (N pages of RAM, N bytes of state, N ms)" of a snapshot operation
 * into buf; NULL if op has no snapshot result. */
const char *show__snapshot(json_t *op, char *buf, size_t len);
/* "to DEST: N ms in all, N ms downtime, ..." of a migrate operation into
 * buf; NULL if op has no migration result.  With rounds, each round
 * follows on its own indented line. */
const char *show__migration(json_t *op, bool rounds, char *buf, size_t len);
/* A service operation's result: binary, time, each device's blackout. */
const char *show__service(json_t *op, bool devices, char *buf, size_t len);
/* One Event on one line: time, seq, VM, kind, state, operation, message. */
void show__event(json_t *ev, json_t *names, FILE *out);
/* The VM name for an id in a ListVmsResponse, or the id. */
const char *show__vm_name(json_t *names, const char *id);

#endif
