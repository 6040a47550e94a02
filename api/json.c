/* api/json.c — protobuf-c message to JSON (the other way is json_parse.c). */
#include "api/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/base64.h"
#include "api/json_field.h"

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if there is none. */
static size_t json__utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static json_t *json__string(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i, o = 0;
	json_t *j = json_stringn(s, n);
	char *buf;

	if (j)
		return j;
	buf = malloc(n * 3 + 1); /* every bad byte may become U+FFFD */
	if (!buf)
		return NULL;
	for (i = 0; i < n;) {
		size_t len = json__utf8_seq(u + i, n - i);

		if (len) {
			memcpy(buf + o, s + i, len);
			o += len;
			i += len;
		} else {
			buf[o++] = (char)0xef; /* U+FFFD */
			buf[o++] = (char)0xbf;
			buf[o++] = (char)0xbd;
			i++;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

static json_t *json__real(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	return json_real(v);
}

static json_t *json__fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *json__fmt(const char *fmt, ...)
{
	char buf[32];
	va_list ap;

	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start above
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_string(buf);
}

/* One value of field f, stored at slot. */
static json_t *json__value(const ProtobufCFieldDescriptor *f, const void *slot)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)slot);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)slot);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: return json__fmt("%" PRId64, *(const int64_t *)slot);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return json__fmt("%" PRIu64, *(const uint64_t *)slot);
	case PROTOBUF_C_TYPE_FLOAT: return json__real(*(const float *)slot);
	case PROTOBUF_C_TYPE_DOUBLE: return json__real(*(const double *)slot);
	case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)slot);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)slot;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);

		/* a value newer than this build's schema: proto3 keeps it, as a number */
		return ev ? json_string(ev->name) : json_integer(v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;

		return json__string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = slot;
		char *text = base64__encode(b->data, b->len);
		json_t *j = text ? json_string(text) : NULL;

		free(text);
		return j;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;

		return sub ? api_json__from_message(sub) : json_object();
	}
	}
	return NULL;
}

/* proto3 leaves a field without presence out when it holds its default. */
static bool json__is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return *(const uint32_t *)slot == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)slot == 0;
	case PROTOBUF_C_TYPE_FLOAT: return *(const float *)slot == 0;
	case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)slot == 0;
	case PROTOBUF_C_TYPE_BOOL: return !*(const protobuf_c_boolean *)slot;
	case PROTOBUF_C_TYPE_ENUM: return *(const int *)slot == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;

		return !s || !s[0];
	}
	case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)slot)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE: return !*(ProtobufCMessage *const *)slot;
	}
	return true;
}

/* Whether a field that is not repeated is to be written. */
static bool json__is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *slot = json_field__slot(m, f);

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return json_field__oneof_case(m, f) == f->id;
	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED: return true;
	case PROTOBUF_C_LABEL_OPTIONAL: /* proto2: explicit presence */
		if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
			const void *p = *(const void *const *)slot;

			return p && p != f->default_value;
		}
		return *(const protobuf_c_boolean *)json_field__quantifier(m, f);
	default: return !json__is_default(f, slot);
	}
}

json_t *api_json__from_message(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	json_t *obj = json_object();

	if (!obj)
		goto out_nomem;
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		json_t *v;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)json_field__quantifier(m, f);
			const char *arr = *(char *const *)json_field__slot(m, f);

			if (!n)
				continue;
			v = json_array();
			for (size_t k = 0; v && k < n; k++)
				if (json_array_append_new(
					v, json__value(f, arr + k * json_field__size(f)))) {
					json_decref(v);
					v = NULL;
				}
		} else if (json__is_present(m, f)) {
			v = json__value(f, json_field__slot(m, f));
		} else {
			continue;
		}
		if (json_object_set_new(obj, f->name, v)) /* takes v, even when NULL */
			goto out_nomem;
	}
	return obj;
out_nomem:
	json_decref(obj);
	errno = ENOMEM;
	return NULL;
}
