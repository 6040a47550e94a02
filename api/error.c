/* api/error.c — error codes, their HTTP statuses and their JSON shape. */
#include "api/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	enum api_code code;
	int http;
} api_codes[] = {
    {"OK", API_OK, 200},
    {"CANCELLED", API_CANCELLED, 499},
    {"INVALID_ARGUMENT", API_INVALID_ARGUMENT, 400},
    {"DEADLINE_EXCEEDED", API_DEADLINE_EXCEEDED, 504},
    {"NOT_FOUND", API_NOT_FOUND, 404},
    {"ALREADY_EXISTS", API_ALREADY_EXISTS, 409},
    {"PERMISSION_DENIED", API_PERMISSION_DENIED, 403},
    /* the REST body limit is what a client most often exhausts */
    {"RESOURCE_EXHAUSTED", API_RESOURCE_EXHAUSTED, 413},
    /* an action the VM's state does not allow: a conflict with that state */
    {"FAILED_PRECONDITION", API_FAILED_PRECONDITION, 409},
    {"UNIMPLEMENTED", API_UNIMPLEMENTED, 501},
    {"INTERNAL", API_INTERNAL, 500},
    {"UNAVAILABLE", API_UNAVAILABLE, 503},
};

#define NR_API_CODES (sizeof(api_codes) / sizeof(api_codes[0]))

const char *api_code__name(enum api_code code)
{
	for (size_t i = 0; i < NR_API_CODES; i++)
		if (api_codes[i].code == code)
			return api_codes[i].name;
	return NULL;
}

int api_code__from_name(const char *name)
{
	for (size_t i = 0; name && i < NR_API_CODES; i++)
		if (!strcmp(api_codes[i].name, name))
			return api_codes[i].code;
	return -1;
}

int api_code__http_status(enum api_code code)
{
	for (size_t i = 0; i < NR_API_CODES; i++)
		if (api_codes[i].code == code)
			return api_codes[i].http;
	return 500;
}

int api_error__set(struct api_error *err, enum api_code code, const char *field, const char *fmt,
		   ...)
{
	va_list ap;
	const char *name = api_code__name(code);

	if (!err)
		return -EINVAL;
	snprintf(err->code, sizeof(err->code), "%s", name ? name : "INTERNAL");
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start above
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int api_error__code(const struct api_error *err)
{
	return api_code__from_name(err->code);
}

int api_error__http_status(const struct api_error *err)
{
	int code = api_error__code(err);

	return code < 0 ? 500 : api_code__http_status(code);
}

int api_error__grpc_status(const struct api_error *err)
{
	int code = api_error__code(err);

	return code < 0 ? API_INTERNAL : code;
}

/* A message or field may quote a request's text cut short by the fixed
 * buffers, possibly inside a UTF-8 sequence: never lose the error for that. */
static json_t *api_error__string(const char *s)
{
	char buf[256];
	json_t *j = json_string(s);
	size_t i;

	if (j)
		return j;
	for (i = 0; i < sizeof(buf) - 1 && s[i]; i++)
		buf[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	buf[i] = '\0';
	return json_string(buf);
}

json_t *api_error__to_json(const struct api_error *err)
{
	json_t *inner = json_object(), *outer = json_object();

	if (!inner || !outer)
		goto out_free;
	if (json_object_set_new(inner, "code",
				api_error__string(err->code[0] ? err->code : "INTERNAL")) ||
	    json_object_set_new(inner, "message", api_error__string(err->message)) ||
	    (err->field[0] && json_object_set_new(inner, "field", api_error__string(err->field))))
		goto out_free;
	if (!json_object_set_new(outer, "error", inner)) /* takes inner, even on failure */
		return outer;
	json_decref(outer);
	return NULL;
out_free:
	json_decref(inner);
	json_decref(outer);
	return NULL;
}
