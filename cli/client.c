/* cli/client.c — HTTP to vmmd over its Unix socket with libcurl.
 *
 * Every call is a fresh easy handle: vmmctl makes a handful of requests per
 * run, and a fresh handle keeps the console's two directions (a long GET and
 * short POSTs from another thread) independent. */
#include "cli/client.h"

#include "api/service.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *client__find_socket(const char *opt)
{
	const char *env = getenv("VMMD_SOCKET");
	struct stat st;

	if (opt && *opt)
		return opt;
	if (env && *env)
		return env;
	if (!stat("./run/vmmd.sock", &st))
		return "./run/vmmd.sock";
	return "/run/vmmd/vmmd.sock";
}

const char *client__verb(const char *route)
{
	const struct api_route *r = api_route__by_name(route);

	return r ? r->http_verb : "GET";
}

/* Appends s to the growing string *buf, percent-escaping it if esc. */
static int append(char **buf, size_t *len, const char *s, bool esc)
{
	char *e = esc ? curl_easy_escape(NULL, s, 0) : NULL, *n;
	const char *add = esc ? e : s;
	size_t l;

	if (esc && !e)
		return -ENOMEM;
	l = strlen(add);
	n = realloc(*buf, *len + l + 1);
	if (n) {
		memcpy(n + *len, add, l + 1);
		*buf = n;
		*len += l;
	}
	curl_free(e);
	return n ? 0 : -ENOMEM;
}

char *client__path(const char *route, const char *id, ...)
{
	const struct api_route *r = api_route__by_name(route);
	const char *p, *open, *close, *key, *val;
	char *buf = NULL, sep = '?';
	size_t len = 0;
	va_list ap;
	int ret = 0;

	if (!r)
		return NULL;
	p = r->http_path;
	open = strchr(p, '{');
	close = open ? strchr(open, '}') : NULL;
	if (open && close) {
		char head[256];

		snprintf(head, sizeof(head), "%.*s", (int)(open - p), p);
		ret |= append(&buf, &len, head, false);
		ret |= append(&buf, &len, id ? id : "", true);
		ret |= append(&buf, &len, close + 1, false);
	} else {
		ret |= append(&buf, &len, p, false);
	}
	va_start(ap, id);
	while ((key = va_arg(ap, const char *))) {
		char kv[64];

		val = va_arg(ap, const char *);
		if (!val || !*val)
			continue;
		snprintf(kv, sizeof(kv), "%c%s=", sep, key);
		sep = '&';
		ret |= append(&buf, &len, kv, false);
		ret |= append(&buf, &len, val, true);
	}
	va_end(ap);
	if (ret) {
		free(buf);
		return NULL;
	}
	return buf;
}

void client__print_error(const struct client *c, json_t *reply, long http_status)
{
	json_t *e = json_object_get(reply, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));
	const char *code = json_string_value(json_object_get(e, "code"));

	if (!msg) {
		fprintf(stderr,
			"vmmctl: %s: the daemon answered HTTP %ld without an error message\n",
			c->cmd, http_status);
		return;
	}
	if (!*msg && code)
		msg = code;
	fprintf(stderr, "vmmctl: %s: %s%s%s\n", c->cmd, field && *field ? field : "",
		field && *field ? ": " : "", msg);
}

struct body {
	char *data;
	size_t len;
	/* streams */
	CURL *curl;
	struct client *c;
	client_sink sink;
	void (*opened)(void *opaque);
	void *opaque;
	bool stopped_by_sink;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct body *b = opaque;
	size_t n = size * nmemb;
	long status = 0;
	char *d;

	if (b->sink) {
		curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status < 300) {
			char *ct = NULL;

			curl_easy_getinfo(b->curl, CURLINFO_CONTENT_TYPE, &ct);
			if (b->sink(ptr, n, ct ? ct : "", b->opaque)) {
				b->stopped_by_sink = true;
				return 0; /* ends the transfer */
			}
			return n;
		}
	}
	/* Unary bodies are small; an error body of a stream is kept too. */
	if (b->len + n > (16u << 20))
		return 0;
	d = realloc(b->data, b->len + n + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, ptr, n);
	b->len += n;
	d[b->len] = 0;
	b->data = d;
	return n;
}

/* A stream's headers: the blank line after a 2xx status means the server
 * has set the stream up (vmmd subscribes before it answers). */
static size_t on_header(char *line, size_t size, size_t nmemb, void *opaque)
{
	struct body *b = opaque;
	size_t n = size * nmemb;
	long status = 0;

	if (b->opened && (n == 2 || n == 1) && (line[0] == '\r' || line[0] == '\n')) {
		curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300)
			b->opened(b->opaque);
	}
	return n;
}

static int on_progress(void *opaque, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct body *b = opaque;

	return b->c->stop && *b->c->stop;
}

static int unreachable(const struct client *c, CURL *curl, CURLcode rc)
{
	long os_errno = 0;

	curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
	fprintf(stderr,
		"vmmctl: cannot reach vmmd at %s: %s (is vmmd running? set --socket or "
		"$VMMD_SOCKET)\n",
		c->socket, os_errno ? strerror((int)os_errno) : curl_easy_strerror(rc));
	return EXIT_UNREACHABLE;
}

/* Runs the transfer; for unary calls (no sink) also decodes the reply. */
static int perform(struct client *c, const char *verb, const char *path, json_t *body,
		   const void *raw, size_t raw_len, struct body *b, json_t **out)
{
	struct curl_slist *hdrs = NULL;
	char url[2048], *text = NULL;
	CURLcode rc;
	CURL *curl;
	long status = 0;
	int ret = EXIT_API;
	json_t *reply;

	curl = curl_easy_init();
	if (!curl) {
		fprintf(stderr, "vmmctl: %s: cannot initialise libcurl\n", c->cmd);
		return EXIT_API;
	}
	b->curl = curl;
	b->c = c;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, verb);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			fprintf(stderr, "vmmctl: %s: out of memory\n", c->cmd);
			goto out;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
	} else if (raw) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)raw_len);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, raw);
	} else if (!strcmp(verb, "POST")) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	if (b->sink) {
		curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(curl, CURLOPT_HEADERDATA, b);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, b);
	} else {
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
	}

	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_COULDNT_CONNECT || (rc == CURLE_OPERATION_TIMEDOUT && !status)) {
		ret = unreachable(c, curl, rc);
		goto out;
	}
	if (b->sink && (b->stopped_by_sink || rc == CURLE_ABORTED_BY_CALLBACK) && status < 300) {
		ret = EXIT_OK;
		goto out;
	}
	if (rc != CURLE_OK) {
		fprintf(stderr, "vmmctl: %s: talking to vmmd at %s: %s\n", c->cmd, c->socket,
			curl_easy_strerror(rc));
		goto out;
	}
	reply = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	if (status >= 300) {
		client__print_error(c, reply, status);
		json_decref(reply);
		goto out;
	}
	if (b->sink) {
		json_decref(reply);
		ret = EXIT_OK;
		goto out;
	}
	if (!reply) {
		fprintf(stderr, "vmmctl: %s: the daemon's reply is not JSON\n", c->cmd);
		goto out;
	}
	*out = reply;
	ret = EXIT_OK;
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	free(text);
	free(b->data);
	b->data = NULL;
	return ret;
}

int client__call(struct client *c, const char *verb, const char *path, json_t *body, json_t **out)
{
	struct body b = {0};

	*out = NULL;
	return perform(c, verb, path, body, NULL, 0, &b, out);
}

int client__route(struct client *c, const char *route, const char *id, json_t *body, json_t **out)
{
	char *path = client__path(route, id, NULL);
	int ret;

	if (!path) {
		fprintf(stderr, "vmmctl: %s: out of memory\n", c->cmd);
		return EXIT_API;
	}
	ret = client__call(c, client__verb(route), path, body, out);
	free(path);
	return ret;
}

int client__stream(struct client *c, const char *path, client_sink sink, void *opaque)
{
	return client__stream_opened(c, path, sink, NULL, opaque);
}

int client__stream_opened(struct client *c, const char *path, client_sink sink,
			  void (*opened)(void *opaque), void *opaque)
{
	struct body b = {.sink = sink, .opened = opened, .opaque = opaque};

	return perform(c, "GET", path, NULL, NULL, 0, &b, NULL);
}

int client__post_raw(struct client *c, const char *path, const void *data, size_t len)
{
	struct body b = {0};
	json_t *reply = NULL;
	int ret = perform(c, "POST", path, NULL, data, len, &b, &reply);

	json_decref(reply);
	return ret;
}
