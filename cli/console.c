/* cli/console.c — the interactive console.  Output comes from the long
 * GET /v1/vms/{vm_id}/console:stream (read on a thread), input goes out as
 * POST /v1/vms/{vm_id}/console:write with the raw bytes as the body, one
 * request per read from the terminal (a typist makes few).  Input waits
 * until the output stream is open: the stream has no backlog, so what the
 * guest answered to input sent earlier would be lost.
 *
 * The stream's body is taken in whichever framing the daemon chose:
 * server-sent events or JSON lines carrying ConsoleStreamResponse
 * ({"data": base64}), or the raw bytes for any other Content-Type. */
#include "cli/console.h"

#include "cli/show.h"

#include "api/base64.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_tty;
static bool tty_raw;
static volatile int console_stop;

static void tty_restore(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_raw = false;
}

static void on_signal(int sig)
{
	console_stop = 1;
}

int console__key(struct console_esc *e, unsigned char ch, unsigned char *out, size_t *nr_out)
{
	*nr_out = 0;
	if (!e->armed) {
		if (ch == CONSOLE_ESC)
			e->armed = 1;
		else
			out[(*nr_out)++] = ch;
		return 0;
	}
	e->armed = 0;
	if (ch == 'q' || ch == 'Q' || ch == '.')
		return 1;
	/* Ctrl-] Ctrl-] sends one Ctrl-]; anything else sends both bytes. */
	if (ch != CONSOLE_ESC)
		out[(*nr_out)++] = CONSOLE_ESC;
	out[(*nr_out)++] = ch;
	return 0;
}

struct out_stream {
	struct client *c;
	char *path;
	int ret;
	int open; /* atomic: the daemon subscribed us, input may go out */
	/* framed bodies: the current line */
	char line[65536];
	size_t len;
};

static void write_all(const void *p, size_t n)
{
	const char *b = p;

	while (n) {
		ssize_t w = write(STDOUT_FILENO, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

/* One JSON ConsoleStreamResponse: writes its decoded data. */
static void out_message(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	const char *b64 = jstr(j, "data");
	uint8_t *data;
	size_t len;

	if (j && !base64__decode(b64, strlen(b64), &data, &len)) {
		write_all(data, len);
		free(data);
	}
	json_decref(j);
}

static int out_sink(const char *data, size_t len, const char *ct, void *opaque)
{
	struct out_stream *s = opaque;
	bool sse = strstr(ct, "event-stream"), lines = strstr(ct, "json");

	if (!sse && !lines) {
		write_all(data, len);
		return console_stop;
	}
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n') {
			if (s->len + 1 < sizeof(s->line))
				s->line[s->len++] = data[i];
			continue;
		}
		s->line[s->len] = 0;
		if (sse && !strncmp(s->line, "data:", 5))
			out_message(s->line + 5);
		else if (lines && s->len)
			out_message(s->line);
		s->len = 0;
	}
	return console_stop;
}

static void out_opened(void *opaque)
{
	struct out_stream *s = opaque;

	__atomic_store_n(&s->open, 1, __ATOMIC_RELEASE);
}

static void *out_thread(void *opaque)
{
	struct out_stream *s = opaque;
	const char *delay = getenv("VMMCTL_TEST_CONSOLE_DELAY_MS");

	/* Test hook: the stream opens late, as on a loaded host. */
	if (delay)
		poll(NULL, 0, atoi(delay));
	s->ret = client__stream_opened(s->c, s->path, out_sink, out_opened, s);
	console_stop = 1;
	return NULL;
}

int console__run(struct client *c, const char *id, const char *name)
{
	struct out_stream *s = calloc(1, sizeof(*s));
	struct client out_client = *c;
	struct console_esc esc = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	char *esc_id = curl_easy_escape(NULL, id, 0), write_path[512];
	bool input = true;
	pthread_t thr;
	int ret = EXIT_OK;

	if (!s || !esc_id) {
		free(s);
		curl_free(esc_id);
		return EXIT_API;
	}
	snprintf(write_path, sizeof(write_path), "/v1/vms/%s/console:write", esc_id);
	curl_free(esc_id);
	out_client.stop = &console_stop;
	s->c = &out_client;
	s->path = client__path("ConsoleStream", id, (const char *)NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &saved_tty)) {
		struct termios raw = saved_tty;

		cfmakeraw(&raw);
		tty_raw = !tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
		atexit(tty_restore);
		fprintf(stderr, "vmmctl: connected to %s's console; Ctrl-] then q quits\r\n", name);
	} else {
		sigaction(SIGINT, &sa, NULL);
	}
	if (!s->path || pthread_create(&thr, NULL, out_thread, s)) {
		tty_restore();
		free(s->path);
		free(s);
		return EXIT_API;
	}
	while (!console_stop) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		unsigned char buf[512], send[1024];
		size_t nr_send = 0;
		ssize_t n;

		if (!__atomic_load_n(&s->open, __ATOMIC_ACQUIRE)) {
			poll(NULL, 0, 10);
			continue;
		}
		/* The timeout notices the stream ending while nothing is typed. */
		if (!input || poll(&pfd, 1, 200) <= 0) {
			if (!input)
				poll(NULL, 0, 200);
			continue;
		}
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			input = false; /* input ended: keep showing output */
			continue;
		}
		for (ssize_t i = 0; i < n; i++) {
			size_t k;

			if (console__key(&esc, buf[i], send + nr_send, &k)) {
				console_stop = 1;
				break;
			}
			nr_send += k;
		}
		if (nr_send && client__post_raw(c, write_path, send, nr_send) == EXIT_UNREACHABLE) {
			ret = EXIT_UNREACHABLE;
			console_stop = 1;
		}
	}
	pthread_join(thr, NULL);
	tty_restore();
	if (!ret)
		ret = s->ret;
	if (!ret)
		fprintf(stderr, "\r\nvmmctl: console of %s closed\n", name);
	free(s->path);
	free(s);
	return ret;
}
