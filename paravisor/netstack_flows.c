/* paravisor/netstack_flows.c — the TCP connections going through a
 * netstack (see the header).  A table of a few hundred entries at most: a
 * chained hash keyed by the four-tuple. */
#include "paravisor/netstack_flows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ETH_HLEN     14
#define ETH_P_IPV4   0x0800
#define IPPROTO_TCP_ 6
#define TCP_FIN	     0x01
#define TCP_SYN	     0x02
#define TCP_RST	     0x04
#define TCP_MIN_HLEN 20

struct ns_flow {
	struct ns_flow *next;
	struct ns_flow_key k;
	bool fin_guest, fin_remote;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

enum ns_flow_event ns_flow__parse(const uint8_t *f, size_t len, bool to_guest,
				  struct ns_flow_key *k)
{
	const uint8_t *ip = f + ETH_HLEN, *tcp;
	size_t ihl;
	uint32_t src, dst;
	uint8_t flags;

	if (len < ETH_HLEN + 20 || get16(f + 12) != ETH_P_IPV4)
		return NS_FLOW_NONE;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	/* A later fragment has no TCP header; slirp reassembles, and the
	 * first fragment names the connection. */
	if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != IPPROTO_TCP_ ||
	    (get16(ip + 6) & 0x1fff) != 0 || len < ETH_HLEN + ihl + TCP_MIN_HLEN)
		return NS_FLOW_NONE;
	tcp = ip + ihl;
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	memset(k, 0, sizeof(*k));
	if (to_guest) {
		k->gaddr = dst;
		k->raddr = src;
		memcpy(&k->gport, tcp + 2, 2);
		memcpy(&k->rport, tcp, 2);
	} else {
		k->gaddr = src;
		k->raddr = dst;
		memcpy(&k->gport, tcp, 2);
		memcpy(&k->rport, tcp + 2, 2);
	}
	flags = tcp[13];
	if (flags & TCP_RST)
		return NS_FLOW_RST;
	if (flags & TCP_SYN)
		return NS_FLOW_SYN;
	if (flags & TCP_FIN)
		return NS_FLOW_FIN;
	return NS_FLOW_OTHER;
}

static unsigned int ns_flows__hash(const struct ns_flow_key *k)
{
	uint32_t h = k->gaddr * 2654435761u;

	h ^= k->raddr * 2246822519u;
	h ^= ((uint32_t)k->gport << 16 | k->rport) * 3266489917u;
	return (h ^ (h >> 15)) % NS_FLOWS_BUCKETS;
}

static bool ns_flow__same(const struct ns_flow_key *a, const struct ns_flow_key *b)
{
	return a->gaddr == b->gaddr && a->raddr == b->raddr && a->gport == b->gport &&
	       a->rport == b->rport;
}

static struct ns_flow **ns_flows__slot(const struct ns_flows *t, const struct ns_flow_key *k)
{
	struct ns_flow **p = (struct ns_flow **)&t->bucket[ns_flows__hash(k)];

	while (*p && !ns_flow__same(&(*p)->k, k))
		p = &(*p)->next;
	return p;
}

bool ns_flows__has(const struct ns_flows *t, const struct ns_flow_key *k)
{
	return *ns_flows__slot(t, k) != NULL;
}

int ns_flows__add(struct ns_flows *t, const struct ns_flow_key *k)
{
	struct ns_flow **p = ns_flows__slot(t, k), *f;

	if (*p)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->k = *k;
	*p = f;
	t->count++;
	return 1;
}

int ns_flows__del(struct ns_flows *t, const struct ns_flow_key *k)
{
	struct ns_flow **p = ns_flows__slot(t, k), *f = *p;

	if (!f)
		return 0;
	*p = f->next;
	free(f);
	t->count--;
	return 1;
}

void ns_flows__clear(struct ns_flows *t)
{
	for (unsigned int i = 0; i < NS_FLOWS_BUCKETS; i++)
		while (t->bucket[i]) {
			struct ns_flow *f = t->bucket[i];

			t->bucket[i] = f->next;
			free(f);
		}
	t->count = 0;
}

int ns_flows__each(const struct ns_flows *t, int (*fn)(const struct ns_flow_key *, void *),
		   void *opaque)
{
	for (unsigned int i = 0; i < NS_FLOWS_BUCKETS; i++)
		for (const struct ns_flow *f = t->bucket[i]; f; f = f->next) {
			int r = fn(&f->k, opaque);

			if (r)
				return r;
		}
	return 0;
}

int ns_flows__track(struct ns_flows *t, const uint8_t *frame, size_t len, bool to_guest,
		    struct ns_flow_key *k)
{
	struct ns_flow *f;

	switch (ns_flow__parse(frame, len, to_guest, k)) {
	case NS_FLOW_SYN: return ns_flows__add(t, k) > 0 ? 1 : 0;
	case NS_FLOW_RST: return -ns_flows__del(t, k);
	case NS_FLOW_FIN:
		f = *ns_flows__slot(t, k);
		if (!f)
			return 0;
		if (to_guest)
			f->fin_remote = true;
		else
			f->fin_guest = true;
		/* The last ACK after both FINs may still come; whoever gets
		 * it then has no connection for it and drops it. */
		return f->fin_guest && f->fin_remote ? -ns_flows__del(t, k) : 0;
	default: return 0;
	}
}
