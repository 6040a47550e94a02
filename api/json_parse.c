/* api/json_parse.c — JSON to protobuf-c message, with every error naming the
 * field at fault (the other way is json.c). */
#include "api/json.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/base64.h"
#include "api/json_field.h"

/* Deeper than any message of ours nests; it bounds recursion on hostile input. */
#define JSON_PARSE_MAX_DEPTH 32

struct json_parse {
	struct api_error *err;
	int depth;
	size_t len; /* of path */
	char path[sizeof(((struct api_error *)0)->field)];
};

static int json_parse__fail(struct json_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int json_parse__fail(struct json_parse *p, const char *fmt, ...)
{
	char msg[sizeof(((struct api_error *)0)->message)];
	va_list ap;

	va_start(ap, fmt);
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start above
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_error__set(p->err, API_INVALID_ARGUMENT, p->path, "%s", msg);
	return -EINVAL;
}

/* Appends ".name" (or "name" at the top) or "[index]" to the path and
 * returns the length to go back to. */
static size_t json_parse__push(struct json_parse *p, const char *name, size_t index)
{
	size_t mark = p->len, room = sizeof(p->path) - p->len;
	int n;

	if (name)
		n = snprintf(p->path + p->len, room, "%s%s", p->len ? "." : "", name);
	else
		n = snprintf(p->path + p->len, room, "[%zu]", index);
	p->len = n < 0 || (size_t)n >= room ? sizeof(p->path) - 1 : p->len + (size_t)n;
	return mark;
}

static void json_parse__pop(struct json_parse *p, size_t mark)
{
	p->len = mark;
	p->path[mark] = '\0';
}

/* A JSON integer, an integral JSON real, or a string of decimal digits
 * with an optional '-', as a sign and a magnitude. */
static int json_parse__integer(struct json_parse *p, json_t *v, bool *neg, uint64_t *mag)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		*neg = i < 0;
		*mag = i < 0 ? -(uint64_t)i : (uint64_t)i;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		if (d != floor(d))
			return json_parse__fail(p, "must be an integer");
		if (fabs(d) >= 18446744073709551616.0)
			return 1; /* out of any range */
		*neg = d < 0;
		*mag = (uint64_t)fabs(d);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v), i = 0;

		*neg = len && s[0] == '-';
		i = *neg;
		if (i == len)
			return json_parse__fail(p, "must be an integer");
		for (*mag = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return json_parse__fail(p, "must be an integer");
			if (*mag > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
				return 1;
			*mag = *mag * 10 + (uint64_t)(s[i] - '0');
		}
		return 0;
	}
	return json_parse__fail(p, "must be an integer");
}

/* A signed integer of the given width in bits. */
static int json_parse__signed(struct json_parse *p, json_t *v, int bits, int64_t *out)
{
	uint64_t max = ((uint64_t)1 << (bits - 1)) - 1, mag = 0;
	bool neg = false;
	int r = json_parse__integer(p, v, &neg, &mag);

	if (r < 0)
		return r;
	if (r > 0 || mag > max + neg)
		return json_parse__fail(p, "must be an integer between %" PRId64 " and %" PRIu64,
					-(int64_t)max - 1, max);
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

static int json_parse__unsigned(struct json_parse *p, json_t *v, int bits, uint64_t *out)
{
	uint64_t max = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1, mag = 0;
	bool neg = false;
	int r = json_parse__integer(p, v, &neg, &mag);

	if (r < 0)
		return r;
	if (r > 0 || mag > max || (neg && mag))
		return json_parse__fail(p, "must be an integer between 0 and %" PRIu64, max);
	*out = mag;
	return 0;
}

static int json_parse__real(struct json_parse *p, json_t *v, bool is_float, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (!strcmp(s, "NaN")) {
			*out = NAN;
			return 0;
		}
		if (!strcmp(s, "Infinity") || !strcmp(s, "-Infinity")) {
			*out = s[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		errno = 0;
		*out = strtod(s, &end);
		if (!s[0] || *end || s[0] == ' ' || isnan(*out) || isinf(*out) || errno)
			return json_parse__fail(p, "must be a number");
	} else {
		return json_parse__fail(p, "must be a number");
	}
	if (is_float && fabs(*out) > FLT_MAX)
		return json_parse__fail(p, "must be a number between %g and %g", -FLT_MAX, FLT_MAX);
	return 0;
}

static int json_parse__enum(struct json_parse *p, const ProtobufCEnumDescriptor *ed, json_t *v,
			    int *out)
{
	const ProtobufCEnumValue *ev = NULL;
	char names[160];
	size_t len = 0;

	if (json_is_string(v))
		ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
	else if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
		 json_integer_value(v) <= INT32_MAX)
		ev = protobuf_c_enum_descriptor_get_value(ed, (int)json_integer_value(v));
	if (ev) {
		*out = ev->value;
		return 0;
	}
	names[0] = '\0';
	for (unsigned int i = 0; i < ed->n_values && len < sizeof(names); i++) {
		int n = snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
				 ed->values[i].name);

		len = n < 0 ? sizeof(names) : len + (size_t)n;
	}
	if (len >= sizeof(names))
		memcpy(names + sizeof(names) - 4, "...", 4);
	return json_parse__fail(p, "must be one of %s", names);
}

static int json_parse__message(struct json_parse *p, json_t *in, ProtobufCMessage *m);

/* One value of field f from v (not null) into slot. */
static int json_parse__value(struct json_parse *p, const ProtobufCFieldDescriptor *f, json_t *v,
			     void *slot)
{
	int64_t s = 0;
	uint64_t u = 0;
	double d = 0;
	int r;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		r = json_parse__signed(p, v, 32, &s);
		if (!r)
			*(int32_t *)slot = (int32_t)s;
		return r;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		r = json_parse__signed(p, v, 64, &s);
		if (!r)
			*(int64_t *)slot = s;
		return r;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		r = json_parse__unsigned(p, v, 32, &u);
		if (!r)
			*(uint32_t *)slot = (uint32_t)u;
		return r;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		r = json_parse__unsigned(p, v, 64, &u);
		if (!r)
			*(uint64_t *)slot = u;
		return r;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		r = json_parse__real(p, v, f->type == PROTOBUF_C_TYPE_FLOAT, &d);
		if (!r && f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)slot = (float)d;
		else if (!r)
			*(double *)slot = d;
		return r;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return json_parse__fail(p, "must be true or false");
		*(protobuf_c_boolean *)slot = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: return json_parse__enum(p, f->descriptor, v, slot);
	case PROTOBUF_C_TYPE_STRING: {
		char *str;

		if (!json_is_string(v))
			return json_parse__fail(p, "must be a string");
		if (strlen(json_string_value(v)) != json_string_length(v))
			return json_parse__fail(p, "must not contain NUL characters");
		str = strdup(json_string_value(v));
		if (!str)
			return -ENOMEM;
		*(char **)slot = str;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = slot;

		if (!json_is_string(v))
			return json_parse__fail(p, "must be a base64 string");
		r = base64__decode(json_string_value(v), json_string_length(v), &b->data, &b->len);
		if (r == -EINVAL)
			return json_parse__fail(p, "must be base64");
		return r;
	}
	case PROTOBUF_C_TYPE_MESSAGE: /* allocated by json_parse__new_message */
		return json_parse__message(p, v, *(ProtobufCMessage **)slot);
	}
	return json_parse__fail(p, "has a type this build cannot parse");
}

/* A new empty message for field f, when v is an object, stored in slot
 * before it is parsed: freeing after an error in it then frees it too. */
static int json_parse__new_message(struct json_parse *p, const ProtobufCFieldDescriptor *f,
				   json_t *v, void *slot)
{
	const ProtobufCMessageDescriptor *d = f->descriptor;
	ProtobufCMessage *m;

	if (!json_is_object(v))
		return json_parse__fail(p, "must be an object");
	m = malloc(d->sizeof_message);
	if (!m)
		return -ENOMEM;
	protobuf_c_message_init(d, m);
	*(ProtobufCMessage **)slot = m;
	return 0;
}

static int json_parse__repeated(struct json_parse *p, ProtobufCMessage *m,
				const ProtobufCFieldDescriptor *f, json_t *v)
{
	size_t *n = json_field__quantifier(m, f), count = json_array_size(v),
	       size = json_field__size(f);
	char **arr = json_field__slot(m, f);

	if (!json_is_array(v))
		return json_parse__fail(p, "must be an array");
	if (!count)
		return 0;
	*arr = calloc(count, size);
	if (!*arr)
		return -ENOMEM;
	/* n_X counts only the values in place, so that freeing after an error
	 * frees exactly what was allocated */
	for (size_t i = 0; i < count; i++) {
		size_t mark = json_parse__push(p, NULL, i);
		json_t *e = json_array_get(v, i);
		int r;

		if (json_is_null(e))
			return json_parse__fail(p, "must not be null");
		if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			r = json_parse__new_message(p, f, e, *arr + i * size);
			if (r)
				return r;
		}
		*n = i + 1;
		r = json_parse__value(p, f, e, *arr + i * size);
		if (r)
			return r;
		json_parse__pop(p, mark);
	}
	return 0;
}

static int json_parse__field(struct json_parse *p, ProtobufCMessage *m,
			     const ProtobufCFieldDescriptor *f, json_t *v)
{
	void *slot = json_field__slot(m, f);
	int r;

	if (json_is_null(v))
		return 0;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return json_parse__repeated(p, m, f, v);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t set = json_field__oneof_case(m, f);

		if (set && set != f->id) {
			const ProtobufCFieldDescriptor *other =
			    protobuf_c_message_descriptor_get_field(m->descriptor, set);

			return json_parse__fail(p, "cannot be set with '%s': set only one of them",
						other ? other->name : "?");
		}
	}
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		r = json_parse__new_message(p, f, v, slot);
		if (r)
			return r;
	}
	/* the oneof case says which member to free, so it is set before the
	 * member is filled */
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)json_field__quantifier(m, f) = f->id;
	r = json_parse__value(p, f, v, slot);
	if (!r && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type != PROTOBUF_C_TYPE_MESSAGE &&
	    f->type != PROTOBUF_C_TYPE_STRING)
		*(protobuf_c_boolean *)json_field__quantifier(m, f) = 1;
	return r;
}

static int json_parse__fields(struct json_parse *p, ProtobufCMessage *m, json_t *in)
{
	const char *key;
	json_t *v;

	json_object_foreach(in, key, v)
	{
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, key);
		size_t mark = json_parse__push(p, key, 0);
		int r;

#if JANSSON_VERSION_HEX >= 0x020e00
		if (strlen(key) != json_object_iter_key_len(json_object_key_to_iter(key)))
			return json_parse__fail(p, "field names must not contain NUL characters");
#endif
		if (!f)
			return json_parse__fail(p, "unknown field '%s'", key);
		r = json_parse__field(p, m, f, v);
		if (r)
			return r;
		json_parse__pop(p, mark);
	}
	return 0;
}

/* Fills m, already allocated and initialised, from the object in. */
static int json_parse__message(struct json_parse *p, json_t *in, ProtobufCMessage *m)
{
	int r;

	if (p->depth >= JSON_PARSE_MAX_DEPTH)
		return json_parse__fail(p, "is nested too deeply");
	p->depth++;
	r = json_parse__fields(p, m, in);
	p->depth--;
	return r;
}

int api_json__to_message(const ProtobufCMessageDescriptor *d, json_t *in, ProtobufCMessage **out,
			 struct api_error *err)
{
	struct json_parse p = {.err = err};
	int r;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if (!json_is_object(in))
		return api_error__set(err, API_INVALID_ARGUMENT, NULL,
				      "the request must be a JSON object");
	*out = malloc(d->sizeof_message);
	if (!*out)
		goto out_nomem;
	protobuf_c_message_init(d, *out);
	r = json_parse__message(&p, in, *out);
	if (!r)
		return 0;
	protobuf_c_message_free_unpacked(*out, NULL);
	*out = NULL;
	if (r != -ENOMEM)
		return r;
out_nomem:
	api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
	return -ENOMEM;
}

int api_json__parse(const ProtobufCMessageDescriptor *d, const char *buf, size_t len,
		    ProtobufCMessage **out, struct api_error *err)
{
	json_error_t jerr;
	json_t *in;
	int r;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	in = len ? json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
			      &jerr)
		 : json_object();
	if (!in && len)
		return api_error__set(err, API_INVALID_ARGUMENT, NULL,
				      "invalid JSON at line %d column %d: %s", jerr.line,
				      jerr.column, jerr.text);
	if (!in) {
		api_error__set(err, API_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return -ENOMEM;
	}
	r = api_json__to_message(d, in, out, err);
	json_decref(in);
	return r;
}
