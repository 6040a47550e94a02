/* api/error.h — the one error shape of the API: a stable code, a message a
 * person can act on, and the request field at fault. */
#ifndef VMMD_API_ERROR_H
#define VMMD_API_ERROR_H

#include <jansson.h>

/* The codes are gRPC's status names; the enum values are gRPC's status numbers. */
enum api_code {
	API_OK = 0,
	API_CANCELLED = 1,
	API_INVALID_ARGUMENT = 3,
	API_DEADLINE_EXCEEDED = 4,
	API_NOT_FOUND = 5,
	API_ALREADY_EXISTS = 6,
	API_PERMISSION_DENIED = 7,
	API_RESOURCE_EXHAUSTED = 8,
	API_FAILED_PRECONDITION = 9,
	API_UNIMPLEMENTED = 12,
	API_INTERNAL = 13,
	API_UNAVAILABLE = 14,
};

struct api_error {
	char code[32];	   /* "INVALID_ARGUMENT"; empty when there is no error */
	char message[256]; /* "must be a number" */
	char field[128];   /* "spec.disks[1].path", or empty */
};

/* "INVALID_ARGUMENT" for API_INVALID_ARGUMENT; NULL for a value not listed. */
const char *api_code__name(enum api_code code);
/* The code named, or -1 for a name not listed. */
int api_code__from_name(const char *name);
/* 400, 404, 409, ... ; 500 for a value not listed. */
int api_code__http_status(enum api_code code);

/* Fills err (which may be NULL) and returns -EINVAL, so a parser can
 * `return api_error__set(...)`. field may be NULL. */
int api_error__set(struct api_error *err, enum api_code code, const char *field, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));
/* The code in err: -1 when err->code names none. */
int api_error__code(const struct api_error *err);
/* HTTP status and gRPC status number for err; 500 / INTERNAL if its code is unknown. */
int api_error__http_status(const struct api_error *err);
int api_error__grpc_status(const struct api_error *err);
/* {"error": {"code": ..., "message": ..., "field": ...}}; "field" is left
 * out when empty, like any empty field of a message. NULL on ENOMEM. */
json_t *api_error__to_json(const struct api_error *err);

#endif
