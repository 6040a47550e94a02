/* paravisor/netstack.h — `paravisor --netstack`: a NIC's slirp stack apart
 * from the serviced paravisor (see netstack.c). */
#ifndef VMMD_PARAVISOR_NETSTACK_H
#define VMMD_PARAVISOR_NETSTACK_H

struct netstack;

/* Starts slirp as --net slirp,... says (its hostfwd sockets listen from
 * here on) for frames on fd, a SOCK_SEQPACKET socket; ctl_fd (-1: none)
 * takes control requests (net/socket.h); drain_fd (-1: none) links it to
 * the netstack it replaces, which drains into it (netstack.c).  NULL after
 * a line saying what is wrong. */
struct netstack *netstack__open(int fd, int ctl_fd, int drain_fd, const char *opt);
/* Sends NET_SOCKET_READY (net/socket.h).  0 or negative errno after a
 * line. */
int netstack__ready(struct netstack *ns);
/* Carries frames until every holder of the socket's other end has closed
 * it, or (draining) until its last connection closed: 0 then, negative
 * errno after a line saying what failed. */
int netstack__run(struct netstack *ns);
void netstack__close(struct netstack *ns);

#endif
