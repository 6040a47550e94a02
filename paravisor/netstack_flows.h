/* paravisor/netstack_flows.h — the guest's TCP connections a netstack
 * carries, as seen in the frames going through it, so that a netstack being
 * replaced can keep serving them while a new one takes every new connection
 * (netstack.c, "draining").  IPv4 only: the stack is slirp's IPv4 network. */
#ifndef VMMD_PARAVISOR_NETSTACK_FLOWS_H
#define VMMD_PARAVISOR_NETSTACK_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A connection from the guest's side, addresses and ports in network order. */
struct ns_flow_key {
	uint32_t gaddr, raddr; /* the guest's address, the remote one */
	uint16_t gport, rport;
};

#define NS_FLOWS_BUCKETS 1024

struct ns_flow;

struct ns_flows {
	struct ns_flow *bucket[NS_FLOWS_BUCKETS];
	unsigned int count;
};

/* What a frame says about its connection. */
enum ns_flow_event {
	NS_FLOW_NONE,  /* not TCP over IPv4, or malformed */
	NS_FLOW_SYN,   /* opens one */
	NS_FLOW_FIN,   /* one side closes */
	NS_FLOW_RST,   /* aborts one */
	NS_FLOW_OTHER, /* data or an ACK */
};

/* Reads an Ethernet frame; to_guest says which way it goes (the key is
 * always the guest's view).  *k is filled unless NS_FLOW_NONE. */
enum ns_flow_event ns_flow__parse(const uint8_t *frame, size_t len, bool to_guest,
				  struct ns_flow_key *k);

bool ns_flows__has(const struct ns_flows *t, const struct ns_flow_key *k);
/* 1: added, 0: there already, -ENOMEM. */
int ns_flows__add(struct ns_flows *t, const struct ns_flow_key *k);
/* 1: removed, 0: not there. */
int ns_flows__del(struct ns_flows *t, const struct ns_flow_key *k);
void ns_flows__clear(struct ns_flows *t);
/* Calls fn for every connection; stops at fn's first non-zero result and
 * returns it. */
int ns_flows__each(const struct ns_flows *t, int (*fn)(const struct ns_flow_key *, void *),
		   void *opaque);

/*
 * Follows one frame: a SYN adds its connection, an RST removes it, and so
 * does the second FIN (one from each side).  Returns +1 when the frame
 * added the connection, -1 when it removed it, 0 otherwise (*k filled
 * whenever the frame is TCP).
 */
int ns_flows__track(struct ns_flows *t, const uint8_t *frame, size_t len, bool to_guest,
		    struct ns_flow_key *k);

#endif
