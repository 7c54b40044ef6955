// Guest-side probe: reads "NAME PROTO ADDR [PORT]" lines on stdin, prints "NAME RESULT MS DETAIL".
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000L + t.tv_nsec / 1000000; }

static const char *classify(int e) {
  switch (e) {
    case EAGAIN: case EINPROGRESS: case ETIMEDOUT: return "timeout";
    default: return "refused";
  }
}

static void timeouts(int s, int ms) {
  struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// "probe serve PORT": a TCP server that greets every client with "hello-from-guest".
static int serve(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) { perror("serve"); return 1; }
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    (void)!write(c, "hello-from-guest\n", 17);
    close(c);
  }
}

// "probe route6 GW DEV [del]": what a hostile root guest can do without iproute2 — give itself an
// IPv6 default route via GW (a link-local address) on DEV, over rtnetlink (or take it away again).
static int route6(const char *gw, const char *dev, int del) {
  struct { struct nlmsghdr n; struct rtmsg r; char attrs[64]; } req;
  memset(&req, 0, sizeof req);
  req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
  req.n.nlmsg_type = del ? RTM_DELROUTE : RTM_NEWROUTE;
  req.n.nlmsg_flags = del ? NLM_F_REQUEST | NLM_F_ACK : NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK;
  req.r.rtm_family = AF_INET6; req.r.rtm_table = RT_TABLE_MAIN; req.r.rtm_protocol = RTPROT_STATIC;
  req.r.rtm_scope = RT_SCOPE_UNIVERSE; req.r.rtm_type = RTN_UNICAST;
  struct in6_addr g; int ifindex = (int)if_nametoindex(dev);
  if (inet_pton(AF_INET6, gw, &g) != 1 || ifindex == 0) { fprintf(stderr, "route6: bad gateway or device\n"); return 1; }
  struct rtattr *a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.n.nlmsg_len));
  a->rta_type = RTA_GATEWAY; a->rta_len = RTA_LENGTH(sizeof g); memcpy(RTA_DATA(a), &g, sizeof g);
  req.n.nlmsg_len = NLMSG_ALIGN(req.n.nlmsg_len) + RTA_ALIGN(a->rta_len);
  a = (struct rtattr *)((char *)&req + req.n.nlmsg_len);
  a->rta_type = RTA_OIF; a->rta_len = RTA_LENGTH(sizeof ifindex); memcpy(RTA_DATA(a), &ifindex, sizeof ifindex);
  req.n.nlmsg_len += RTA_ALIGN(a->rta_len);
  int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (s < 0 || send(s, &req, req.n.nlmsg_len, 0) < 0) { perror("route6"); return 1; }
  char buf[512]; ssize_t n = recv(s, buf, sizeof buf, 0);
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  if (n < (ssize_t)NLMSG_LENGTH(sizeof(int)) || h->nlmsg_type != NLMSG_ERROR) { fprintf(stderr, "route6: no ack\n"); return 1; }
  int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
  if (err != 0) { fprintf(stderr, "route6: %s\n", strerror(-err)); return 1; }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]));
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "route6") == 0) return route6(argv[2], argv[3], argc == 5 && strcmp(argv[4], "del") == 0);
  char line[512];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    char name[128], proto[16], addr[128], port[16] = "0";
    if (sscanf(line, "%127s %15s %127s %15s", name, proto, addr, port) < 3) continue;
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *ai;
    hints.ai_socktype = strcmp(proto, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM;
    if (getaddrinfo(addr, port, &hints, &ai) != 0) { printf("%s badaddr 0 -\n", name); continue; }
    long t0 = now_ms();
    const char *result; char detail[64] = "-";
    if (strcmp(proto, "icmp") == 0) {
      int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
      timeouts(s, 2000);
      struct icmphdr h = { .type = ICMP_ECHO, .un.echo.id = htons(0x7a7a), .un.echo.sequence = htons(1) };
      unsigned sum = 0; unsigned short *w = (unsigned short *)&h;
      for (size_t i = 0; i < sizeof h / 2; i++) sum += w[i];
      sum = (sum >> 16) + (sum & 0xffff); sum += sum >> 16; h.checksum = ~sum;
      result = "timeout";
      if (sendto(s, &h, sizeof h, 0, ai->ai_addr, ai->ai_addrlen) < 0) { result = classify(errno); snprintf(detail, sizeof detail, "%s", strerror(errno)); }
      else for (;;) {
        unsigned char buf[1500]; struct sockaddr_in from; socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0) break;
        if (now_ms() - t0 > 2000) break;
        int ihl = (buf[0] & 15) * 4; if (n < ihl + 8) continue;
        struct icmphdr *r = (struct icmphdr *)(buf + ihl);
        if (r->type == ICMP_ECHOREPLY && r->un.echo.id == htons(0x7a7a)) { result = "open"; break; }
        if (r->type == ICMP_DEST_UNREACH) { result = "refused"; snprintf(detail, sizeof detail, "icmp-3/%d", r->code); break; }
      }
      close(s);
    } else {
      int s = socket(ai->ai_family, hints.ai_socktype, 0);
      timeouts(s, 2000);
      if (connect(s, ai->ai_addr, ai->ai_addrlen) < 0) { result = classify(errno); snprintf(detail, sizeof detail, "%s", strerror(errno)); }
      else if (hints.ai_socktype == SOCK_STREAM) result = "open";
      else {
        char b[64];
        if (send(s, "probe\n", 6, 0) < 0 || recv(s, b, sizeof b, 0) < 0) { result = classify(errno); snprintf(detail, sizeof detail, "%s", strerror(errno)); }
        else result = "open";
      }
      close(s);
    }
    for (char *p = detail; *p; p++) if (*p == ' ') *p = '_';
    printf("%s %s %ld %s\n", name, result, now_ms() - t0, detail);
    freeaddrinfo(ai);
  }
  return 0;
}
