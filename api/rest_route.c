/* api/rest_route.c — REST request line to method: path matching against the
 * route table, placeholder extraction and query-parameter typing.  Pure
 * functions; the server is api/rest.c. */
#include "api/rest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not methods of the Vmm service, so not in api_routes[]: the transport
 * answers them itself.  Their request types only serve to type the path
 * and query (GetVersionRequest is the empty message: no parameters). */
const struct api_route rest_extra_routes[] = {
    {"ConsoleWrite", "POST", "/v1/vms/{vm_id}/console:write",
     &vmmd__v1__console_stream_request__descriptor, &vmmd__v1__get_version_request__descriptor,
     true},
    {"Metrics", "GET", "/metrics", &vmmd__v1__get_version_request__descriptor,
     &vmmd__v1__get_version_request__descriptor, true},
    {"OpenApi", "GET", "/v1/openapi.json", &vmmd__v1__get_version_request__descriptor,
     &vmmd__v1__get_version_request__descriptor, true},
};
const size_t rest_nr_extra_routes = sizeof(rest_extra_routes) / sizeof(rest_extra_routes[0]);

bool rest_route__match_segment(const char *pat, size_t plen, const char *seg, size_t slen,
			       struct rest_param *p)
{
	const char *open = memchr(pat, '{', plen);
	const char *close;
	size_t pre, post, vlen;

	if (!open)
		return plen == slen && !memcmp(pat, seg, slen);
	close = memchr(open, '}', plen - (size_t)(open - pat));
	if (!close)
		return false;
	pre = (size_t)(open - pat);
	post = plen - (size_t)(close + 1 - pat);
	if (slen <= pre + post || memcmp(pat, seg, pre) ||
	    memcmp(close + 1, seg + slen - post, post))
		return false;
	vlen = slen - pre - post;
	if (memchr(seg + pre, ':', vlen) || vlen >= sizeof(p->value) ||
	    (size_t)(close - open - 1) >= sizeof(p->name))
		return false;
	memcpy(p->name, open + 1, (size_t)(close - open - 1));
	p->name[close - open - 1] = '\0';
	memcpy(p->value, seg + pre, vlen);
	p->value[vlen] = '\0';
	return true;
}

/* Matches path against one route's path, segment by segment. */
static bool route__match_path(const char *pattern, const char *path, struct rest_match *m)
{
	m->nr_params = 0;
	for (;;) {
		size_t plen = strcspn(pattern, "/"), slen = strcspn(path, "/");
		struct rest_param *p = &m->params[m->nr_params];

		if (!rest_route__match_segment(pattern, plen, path, slen, p))
			return false;
		if (memchr(pattern, '{', plen)) {
			if (++m->nr_params == REST_MAX_PARAMS)
				return false;
		}
		pattern += plen;
		path += slen;
		if (!*pattern || !*path)
			return !*pattern && !*path;
		pattern++;
		path++;
	}
}

static void match__allow(struct rest_match *m, const char *verb)
{
	size_t len = strlen(m->allow);

	if (strstr(m->allow, verb))
		return;
	snprintf(m->allow + len, sizeof(m->allow) - len, "%s%s", len ? ", " : "", verb);
}

int rest_route__match(const struct api_route *routes, size_t nr, const char *verb, const char *path,
		      struct rest_match *m)
{
	struct rest_match tmp;
	bool path_found = false;

	/* Routes are rows of a table written by people; a trailing '/' or an
	 * empty segment in a request never matches one. */
	for (size_t i = 0; i < nr; i++) {
		memset(&tmp, 0, sizeof(tmp));
		if (!route__match_path(routes[i].http_path, path, &tmp))
			continue;
		if (!strcmp(routes[i].http_verb, verb)) {
			memcpy(m->params, tmp.params, sizeof(m->params));
			m->nr_params = tmp.nr_params;
			m->route = &routes[i];
			return 0;
		}
		path_found = true;
		match__allow(m, routes[i].http_verb);
	}
	return path_found ? -EPERM : -ENOENT;
}

static int set__bool(json_t *obj, const char *name, const char *value, struct api_error *err)
{
	/* "?force" alone is how people write a flag in a URL. */
	if (!*value || !strcmp(value, "true") || !strcmp(value, "1"))
		return json_object_set_new(obj, name, json_true()) ? -ENOMEM : 0;
	if (!strcmp(value, "false") || !strcmp(value, "0"))
		return json_object_set_new(obj, name, json_false()) ? -ENOMEM : 0;
	return api_error__set(err, API_INVALID_ARGUMENT, name,
			      "must be true or false, not \"%.64s\"", value);
}

static int set__number(json_t *obj, const char *name, const char *value, struct api_error *err)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(value, &end);
	if (!*value || *end || errno)
		return api_error__set(err, API_INVALID_ARGUMENT, name,
				      "must be a number, not \"%.64s\"", value);
	return json_object_set_new(obj, name, json_real(d)) ? -ENOMEM : 0;
}

/* An enum by number ("4") or by name ("VM_STATE_RUNNING"): the JSON
 * decoder takes both, but only a JSON number as a number. */
static int set__enum(json_t *obj, const char *name, const char *value)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(value, &end, 10);
	if (*value && !*end && !errno)
		return json_object_set_new(obj, name, json_integer(n)) ? -ENOMEM : 0;
	return json_object_set_new(obj, name, json_string(value)) ? -ENOMEM : 0;
}

int rest_route__set_field(const ProtobufCMessageDescriptor *d, json_t *obj, const char *name,
			  const char *value, struct api_error *err)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(d, name);
	json_t *s;

	if (!f)
		return api_error__set(err, API_INVALID_ARGUMENT, name,
				      "unknown parameter \"%.64s\"", name);
	if (f->label == PROTOBUF_C_LABEL_REPEATED || f->type == PROTOBUF_C_TYPE_MESSAGE)
		return api_error__set(err, API_INVALID_ARGUMENT, name,
				      "cannot be given in the URL; send it in a JSON body");
	if (json_object_get(obj, name))
		return api_error__set(err, API_INVALID_ARGUMENT, name, "given twice");

	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL: return set__bool(obj, name, value, err);
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: return set__number(obj, name, value, err);
	case PROTOBUF_C_TYPE_ENUM: return set__enum(obj, name, value);
	default:
		/* Strings, bytes (base64) and integers: proto3's JSON mapping
		 * takes integers as strings, so api_json checks their range. */
		s = json_string(value);
		if (!s)
			return api_error__set(err, API_INVALID_ARGUMENT, name, "is not UTF-8");
		return json_object_set_new(obj, name, s) ? -ENOMEM : 0;
	}
}
