/* A hostile guest's toolbox for the network matrix, compiled with `gcc -static` by the test fixture
 * and uploaded into the VM (the base runtime has no curl/nc). Reads probe lines on stdin:
 *   ID tcp ADDR PORT              connect()
 *   ID tls ADDR PORT SNI|-        ClientHello with that server name; ok = a TLS record came back
 *   ID http ADDR PORT HOST        GET / with that Host header; ok:<first body line>
 *   ID dns SERVER NAME TYPE udp|tcp   one query; noerror:<addresses> / nxdomain / rcode:N
 *   ID udp ADDR PORT              datagram out, wait for the echo
 *   ID banner ADDR PORT           connect and wait for the server to speak first (SSH-like); ok:<line>
 *   ID icmp ADDR                  ICMP echo (needs root)
 *   ID name NAME PORT SNI|-       resolve NAME through /etc/resolv.conf (A), then tls to the first address
 *   ID namehttp NAME PORT HOST    resolve NAME, then http
 * and prints "ID RESULT" per line. RESULT: ok[:detail], refused (RST/ECONNREFUSED), reset (RST after
 * connect), closed (EOF without data), unreachable (ICMP unreachable/prohibited, no route),
 * timeout (nothing within 3 s: a hang), nxdomain, noerror:..., error:...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 3000

static int addr_of(const char *a, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) { s4->sin_family = AF_INET; s4->sin_port = htons(port); *len = sizeof *s4; return AF_INET; }
    if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) { s6->sin6_family = AF_INET6; s6->sin6_port = htons(port); *len = sizeof *s6; return AF_INET6; }
    return -1;
}

static const char *errname(int e) {
    switch (e) {
    case ECONNREFUSED: return "refused";
    case ECONNRESET: return "reset";
    case EHOSTUNREACH: case ENETUNREACH: case EACCES: case EPERM: case EPROTO: return "unreachable";
    case ETIMEDOUT: case EAGAIN: return "timeout";
    default: { static char b[64]; snprintf(b, sizeof b, "error:%s", strerror(e)); return b; }
    }
}

/* Connect with a deadline; returns fd or -errno. */
static int dial(const char *a, int port, int type) {
    struct sockaddr_storage ss; socklen_t len;
    int fam = addr_of(a, port, &ss, &len);
    if (fam < 0) return -EINVAL;
    int fd = socket(fam, type | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) { int e = errno; close(fd); return -e; }
    if (type == SOCK_STREAM) {
        struct pollfd p = { fd, POLLOUT, 0 };
        int r = poll(&p, 1, TIMEOUT_MS);
        if (r == 0) { close(fd); return -ETIMEDOUT; }
        int err = 0; socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) { close(fd); return -err; }
    }
    fcntl(fd, F_SETFL, 0);
    struct timeval tv = { TIMEOUT_MS / 1000, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int put16(unsigned char *p, int v) { p[0] = v >> 8; p[1] = v; return 2; }

static int client_hello(unsigned char *out, const char *sni) {
    unsigned char body[1024]; int n = 0;
    body[n++] = 3; body[n++] = 3;
    for (int i = 0; i < 32; i++) body[n++] = (unsigned char)rand();
    body[n++] = 0;
    /* TLS 1.2 ECDHE-RSA-AES128-GCM / ECDHE-ECDSA, plus TLS 1.3 AES128-GCM */
    n += put16(body + n, 8); n += put16(body + n, 0xc02f); n += put16(body + n, 0xc02b); n += put16(body + n, 0x1301); n += put16(body + n, 0x009c);
    body[n++] = 1; body[n++] = 0;
    unsigned char ext[600]; int e = 0;
    if (sni && strcmp(sni, "-")) {
        int l = strlen(sni);
        e += put16(ext + e, 0); e += put16(ext + e, l + 5); e += put16(ext + e, l + 3); ext[e++] = 0; e += put16(ext + e, l);
        memcpy(ext + e, sni, l); e += l;
    }
    /* supported_groups x25519,secp256r1; ec_point_formats; signature_algorithms */
    unsigned char groups[] = { 0, 10, 0, 6, 0, 4, 0, 0x1d, 0, 0x17, 0, 11, 0, 2, 1, 0,
                               0, 13, 0, 8, 0, 6, 4, 1, 4, 3, 8, 4 };
    memcpy(ext + e, groups, sizeof groups); e += sizeof groups;
    n += put16(body + n, e); memcpy(body + n, ext, e); n += e;
    int m = 0;
    out[m++] = 0x16; out[m++] = 3; out[m++] = 1; m += put16(out + m, n + 4);
    out[m++] = 1; out[m++] = 0; m += put16(out + m, n);
    memcpy(out + m, body, n); m += n;
    return m;
}

static void tls(const char *id, const char *a, int port, const char *sni) {
    int fd = dial(a, port, SOCK_STREAM);
    if (fd < 0) { printf("%s %s\n", id, errname(-fd)); return; }
    unsigned char buf[2048]; int n = client_hello(buf, sni);
    if (send(fd, buf, n, MSG_NOSIGNAL) < 0) { printf("%s %s\n", id, errname(errno)); close(fd); return; }
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r > 0) printf("%s %s\n", id, buf[0] == 0x16 ? "ok" : "ok:not-tls");
    else if (r == 0) printf("%s closed\n", id);
    else printf("%s %s\n", id, errno == ECONNREFUSED ? "reset" : errname(errno));
    close(fd);
}

static void http(const char *id, const char *a, int port, const char *host) {
    int fd = dial(a, port, SOCK_STREAM);
    if (fd < 0) { printf("%s %s\n", id, errname(-fd)); return; }
    char req[512]; int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    if (send(fd, req, n, MSG_NOSIGNAL) < 0) { printf("%s %s\n", id, errname(errno)); close(fd); return; }
    char buf[4096]; int got = 0; ssize_t r;
    while (got < (int)sizeof buf - 1 && (r = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0) got += r;
    int e = errno;
    close(fd);
    buf[got] = 0;
    if (got == 0) { printf("%s %s\n", id, r == 0 ? "closed" : (e == ECONNREFUSED ? "reset" : errname(e))); return; }
    char *body = strstr(buf, "\r\n\r\n");
    char *eol = body ? strpbrk(body + 4, "\r\n") : NULL;
    if (eol) *eol = 0;
    printf("%s ok:%s\n", id, body ? body + 4 : "?");
}

static int qtype_of(const char *t) {
    if (!strcmp(t, "A")) return 1;
    if (!strcmp(t, "AAAA")) return 28;
    if (!strcmp(t, "TXT")) return 16;
    if (!strcmp(t, "HTTPS")) return 65;
    return atoi(t);
}

/* Returns rcode (>=0) and fills addrs, or -errno. */
static int dns(const char *server, const char *name, int qtype, int tcp, char *addrs, int alen, unsigned char *first4) {
    unsigned char q[600]; int n = 0;
    int id = rand() & 0xffff;
    n += put16(q + n, id); n += put16(q + n, 0x0100); n += put16(q + n, 1); n += put16(q + n, 0); n += put16(q + n, 0); n += put16(q + n, 0);
    const char *p = name;
    while (*p) { const char *d = strchr(p, '.'); int l = d ? d - p : (int)strlen(p); q[n++] = l; memcpy(q + n, p, l); n += l; p += l; if (*p) p++; }
    q[n++] = 0; n += put16(q + n, qtype); n += put16(q + n, 1);
    int fd = dial(server, 53, tcp ? SOCK_STREAM : SOCK_DGRAM);
    if (fd < 0) return fd;
    unsigned char r[4096]; ssize_t got;
    if (tcp) {
        unsigned char f[602]; put16(f, n); memcpy(f + 2, q, n);
        if (send(fd, f, n + 2, MSG_NOSIGNAL) < 0) { int e = errno; close(fd); return -e; }
        got = 0; ssize_t k;
        while ((k = recv(fd, r + got, sizeof r - got, 0)) > 0) { got += k; if (got >= 2 && got >= 2 + ((r[0] << 8) | r[1])) break; }
        if (got < 2) { int e = k == 0 ? ECONNRESET : errno; close(fd); return -e; }
        memmove(r, r + 2, got - 2); got -= 2;
    } else {
        if (send(fd, q, n, 0) < 0) { int e = errno; close(fd); return -e; }
        got = recv(fd, r, sizeof r, 0);
        if (got < 0) { int e = errno; close(fd); return -e; }
    }
    close(fd);
    if (got < 12 || ((r[0] << 8) | r[1]) != id) return -EPROTO;
    int rcode = r[3] & 15, an = (r[6] << 8) | r[7];
    int pos = 12;
    while (pos < got && r[pos]) pos += r[pos] + 1;
    pos += 5;
    addrs[0] = 0;
    for (int i = 0; i < an && pos + 12 <= got; i++) {
        if ((r[pos] & 0xc0) == 0xc0) pos += 2; else { while (pos < got && r[pos]) pos += r[pos] + 1; pos++; }
        int type = (r[pos] << 8) | r[pos + 1], rdl = (r[pos + 8] << 8) | r[pos + 9];
        pos += 10;
        char s[64] = "";
        if (type == 1 && rdl == 4) { inet_ntop(AF_INET, r + pos, s, sizeof s); if (first4 && !first4[0]) memcpy(first4, r + pos, 4); }
        else if (type == 28 && rdl == 16) inet_ntop(AF_INET6, r + pos, s, sizeof s);
        else if (type == 65) snprintf(s, sizeof s, "https%s", memmem(r + pos, rdl, "\0\5", 2) ? "+ech" : "");
        else snprintf(s, sizeof s, "t%d", type);
        if ((int)(strlen(addrs) + strlen(s) + 2) < alen) { if (addrs[0]) strcat(addrs, ","); strcat(addrs, s); }
        pos += rdl;
    }
    return rcode;
}

static void print_dns(const char *id, int rc, const char *addrs) {
    if (rc < 0) printf("%s %s\n", id, rc == -EPROTO ? "error:bad-reply" : errname(-rc));
    else if (rc == 0) printf("%s noerror:%s\n", id, addrs[0] ? addrs : "empty");
    else if (rc == 3) printf("%s nxdomain\n", id);
    else printf("%s rcode:%d\n", id, rc);
}

static int resolver(char *out) {
    FILE *f = fopen("/etc/resolv.conf", "r");
    char line[256];
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "nameserver %63s", out) == 1) { fclose(f); return 0; }
    fclose(f);
    return -1;
}

static void udp(const char *id, const char *a, int port) {
    int fd = dial(a, port, SOCK_DGRAM);
    if (fd < 0) { printf("%s %s\n", id, errname(-fd)); return; }
    char buf[256];
    send(fd, "probe", 5, 0);
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    int e = errno;
    close(fd);
    if (r > 0) printf("%s ok\n", id); else printf("%s %s\n", id, errname(e));
}

static unsigned short csum(unsigned short *p, int n) {
    unsigned long s = 0; for (; n > 1; n -= 2) s += *p++; if (n) s += *(unsigned char *)p;
    s = (s >> 16) + (s & 0xffff); s += s >> 16; return ~s;
}

static void icmp(const char *id, const char *a) {
    struct sockaddr_storage ss; socklen_t len;
    if (addr_of(a, 0, &ss, &len) != AF_INET) { printf("%s error:v4-only\n", id); return; }
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0) { printf("%s error:%s\n", id, strerror(errno)); return; }
    struct timeval tv = { TIMEOUT_MS / 1000, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct icmphdr h = { .type = ICMP_ECHO, .un.echo.id = htons(getpid() & 0xffff), .un.echo.sequence = htons(1) };
    h.checksum = csum((unsigned short *)&h, sizeof h);
    if (sendto(fd, &h, sizeof h, 0, (struct sockaddr *)&ss, len) < 0) { printf("%s %s\n", id, errname(errno)); close(fd); return; }
    struct timespec t0; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        unsigned char buf[1500];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 0) { printf("%s %s\n", id, errname(errno)); break; }
        int ihl = (buf[0] & 15) * 4;
        if (r < ihl + 8) continue;
        struct icmphdr *rh = (struct icmphdr *)(buf + ihl);
        if (rh->type == ICMP_ECHOREPLY && rh->un.echo.id == h.un.echo.id) { printf("%s ok\n", id); break; }
        if (rh->type == ICMP_DEST_UNREACH) { printf("%s unreachable\n", id); break; }
        struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 3) { printf("%s timeout\n", id); break; }
    }
    close(fd);
}

int main(void) {
    char line[1024];
    srand(time(NULL) ^ getpid());
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        char id[64], kind[16], a[256], b[256] = "", c[256] = "", d[16] = "";
        int n = sscanf(line, "%63s %15s %255s %255s %255s %15s", id, kind, a, b, c, d);
        if (n < 3) continue;
        if (!strcmp(kind, "tcp")) {
            int fd = dial(a, atoi(b), SOCK_STREAM);
            printf("%s %s\n", id, fd >= 0 ? "ok" : errname(-fd));
            if (fd >= 0) close(fd);
        } else if (!strcmp(kind, "banner")) {
            int fd = dial(a, atoi(b), SOCK_STREAM);
            if (fd < 0) { printf("%s %s\n", id, errname(-fd)); continue; }
            char buf[256]; ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
            int e = errno;
            close(fd);
            if (r > 0) { buf[r] = 0; buf[strcspn(buf, "\r\n")] = 0; printf("%s ok:%s\n", id, buf); }
            else printf("%s %s\n", id, r == 0 ? "closed" : (e == ECONNREFUSED ? "reset" : errname(e)));
        } else if (!strcmp(kind, "tls")) tls(id, a, atoi(b), c);
        else if (!strcmp(kind, "http")) http(id, a, atoi(b), c);
        else if (!strcmp(kind, "dns")) {
            char addrs[512]; int rc = dns(a, b, qtype_of(c), !strcmp(d, "tcp"), addrs, sizeof addrs, NULL);
            print_dns(id, rc, addrs);
        } else if (!strcmp(kind, "udp")) udp(id, a, atoi(b));
        else if (!strcmp(kind, "icmp")) icmp(id, a);
        else if (!strcmp(kind, "name") || !strcmp(kind, "namehttp")) {
            char server[64], addrs[512], ip[64]; unsigned char first[4] = { 0 };
            if (resolver(server) < 0) { printf("%s error:no-resolver\n", id); continue; }
            int rc = dns(server, a, 1, 0, addrs, sizeof addrs, first);
            if (rc != 0 || !first[0]) { print_dns(id, rc, addrs); continue; }
            inet_ntop(AF_INET, first, ip, sizeof ip);
            if (!strcmp(kind, "name")) tls(id, ip, atoi(b), c); else http(id, ip, atoi(b), c);
        } else printf("%s error:unknown-probe\n", id);
    }
    return 0;
}
