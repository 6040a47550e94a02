/* tests/tools/dnsreply.c — a name server that knows one name: the tests'
 * stand-in for the host's resolver, so a guest's DNS query through slirp's
 * 10.0.2.3 can be answered without a network.  Serves UDP on ADDR:PORT until
 * killed; an A query for NAME gets IPV4, any other query for NAME an empty
 * answer, any other name NXDOMAIN.  Prints one line per query it answers. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNS_HDR 12

/* The first question's name as "a.b.c" and where its type starts; -1 if
 * the message is not a query we can read. */
static int dns__qname(const uint8_t *m, int len, char *name, size_t size)
{
	int at = DNS_HDR;
	size_t out = 0;

	while (at < len && m[at]) {
		int l = m[at++];

		if (l > 63 || at + l > len || out + l + 2 > size)
			return -1;
		if (out)
			name[out++] = '.';
		memcpy(name + out, m + at, l);
		out += l;
		at += l;
	}
	if (at + 5 > len)
		return -1;
	name[out] = '\0';
	return at + 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct in_addr answer;
	int fd;

	if (argc != 5 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[4], &answer) != 1) {
		fprintf(stderr, "usage: dnsreply ADDR PORT NAME IPV4\n");
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("dnsreply: bind");
		return 1;
	}
	for (;;) {
		uint8_t m[512 + 16];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		char name[256];
		int len = recvfrom(fd, m, 512, 0, (struct sockaddr *)&from, &fl);
		int qend, type, match;

		if (len < DNS_HDR || (m[2] & 0x80) || m[4] != 0 || m[5] < 1)
			continue;
		qend = dns__qname(m, len, name, sizeof(name));
		if (qend < 0)
			continue;
		type = m[qend] << 8 | m[qend + 1];
		match = !strcasecmp(name, argv[3]);
		len = qend + 4;		       /* the question, echoed */
		m[2] = 0x80 | (m[2] & 0x01);   /* a response; RD as asked */
		m[3] = 0x80 | (match ? 0 : 3); /* RA; NOERROR or NXDOMAIN */
		m[5] = 1;
		memset(m + 6, 0, 6);
		if (match && type == 1) {
			static const uint8_t rr[] = {0xc0, DNS_HDR, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};

			m[7] = 1;
			memcpy(m + len, rr, sizeof(rr));
			memcpy(m + len + sizeof(rr), &answer, 4);
			len += sizeof(rr) + 4;
		}
		sendto(fd, m, len, 0, (struct sockaddr *)&from, fl);
		printf("dnsreply: %s type %d from %s: %s\n", name, type, inet_ntoa(from.sin_addr),
		       match ? (type == 1 ? argv[4] : "no record") : "NXDOMAIN");
		fflush(stdout);
	}
}
