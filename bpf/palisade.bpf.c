// SPDX-License-Identifier: Apache-2.0
/*
 * Palisade eBPF host routing: three tc programs that route pod traffic past
 * netfilter and enforce identity policy from BPF maps (layout: palisade.h).
 *
 *   pod ──► lxc (tc ingress: from_container)
 *             anti-spoof ─► ClusterIP DNAT ─► CT ─► egress policy
 *             ├─ local pod:   its ingress policy ─► bpf_redirect_peer(its lxc)
 *             ├─ remote pod:  bpf_fib_lookup ─► bpf_redirect[_neigh](underlay)
 *             └─ anything else (world, nodes): TC_ACT_OK, the kernel stack
 *                (routing, masquerade in `ip palisade_nat`)
 *   underlay eth0 (tc ingress: from_netdev)
 *             to a local pod: CT ─► ingress policy ─► bpf_redirect_peer
 *             else TC_ACT_OK (node traffic)
 *   lxc (tc egress: to_container)   only what the stack delivers to a pod
 *             (replies from world and nodes, host-originated traffic, the
 *             proxies' onward connections): reverse NAT, ingress policy for
 *             new non-host peers
 *
 * L7 (policy entries with POLICY_REDIRECT): the connection's packets are
 * handed to the node's transparent proxy socket (bpf_sk_assign + PROXY_MARK,
 * then the stack delivers them locally), as nftables TPROXY does in the
 * legacy datapath; the proxy sees the client as peer and the original
 * destination (a ClusterIP's backend) as its local address. The proxy
 * connects onward from the client's own address; the answers to that
 * connection are handed back to its socket, never to the client pod:
 *
 *   pod ─► from_container / from_netdev ─► policy says redirect
 *            ─► CT (CT_F_TO_PROXY) ─► sk_assign(proxy) ─► stack ─► proxy
 *   proxy ─► client pod: the CT reply of that entry, through to_container
 *   proxy ─► upstream (source: client pod): to_container (local upstream,
 *            CT_F_PROXY_UPSTREAM) or the underlay (remote upstream)
 *   upstream ─► proxy: from_container (CT_F_PROXY_UPSTREAM reply) or
 *            from_netdev (no CT entry: a socket of the node bound to the
 *            pod's address) ─► sk_assign(that socket) ─► stack
 *   masqueraded (world) answers to the proxy come back de-NATed through the
 *   stack: an nftables `socket transparent` rule marks them (ebpf-datapath.ts).
 *
 * Connection tracking judges only a connection's first packet: replies and
 * established flows skip policy, as in Cilium ("Replies of allowed
 * connections pass"). Policy precedence (src/policy/compiled.ts):
 *   1. a matching deny entry denies, whatever allows;
 *   2. an allow entry allows (most specific reported: L3+L4, L4-only, L3-only, all);
 *   3. otherwise the direction's default: drop when enforced.
 *
 * Fragments are tracked as Cilium tracks them (bpf/lib/ipv4.h): a datagram's
 * first fragment carries the L4 header and is judged like any packet; it
 * records its L4 fields in `frags`, and each later fragment (no L4 header)
 * takes them from there, so CT, policy and service translation treat it as
 * they treated the first. A later fragment whose first was not seen (lost,
 * reordered, or never sent) is dropped: FRAG_NOT_FOUND.
 *
 * Caveats: IPv4 only (IPv6 is passed to the stack); a fragmented datagram
 * steered to a proxy's listener is dropped (FRAG_NOSUPPORT: the stack's
 * reassembly orphans the socket assignment, so only a flow's own socket,
 * which the stack finds again by the tuple, can take fragments); ICMP errors
 * are judged as new ICMP traffic (no "related" state) and are not
 * reverse-NATed; a pod reaching itself through a ClusterIP (hairpin) is not
 * SNATed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <linux/if_packet.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "palisade.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* linux/icmp.h drags in libc's socket headers: the four fields needed here. */
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
struct icmp_echo {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 id;
	__u16 sequence;
};

#define NSEC 1000000000ULL
#define CT_LIFETIME_TCP (21600ULL * NSEC)   /* Cilium: 6 h for established TCP */
#define CT_LIFETIME_SYN (60ULL * NSEC)      /* until the reply is seen */
#define CT_LIFETIME_NONTCP (60ULL * NSEC)
#define CT_LIFETIME_CLOSE (10ULL * NSEC)
#define CT_REFRESH_GRANULARITY (1ULL * NSEC) /* write `expires` at most once a second per flow */

#define IP_OFF_CHECK (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_OFF_SADDR (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_OFF_DADDR (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_OFF_TTL (ETH_HLEN + offsetof(struct iphdr, ttl))

/* ------------------------------------------------------------------ maps */

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct endpoint_info);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct endpoint_info);
} ep_ifindex SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} policy SEC(".maps");

/*
 * Pod address (network order) → the identity of the Kubernetes ipBlocks
 * holding it (src/datapath/ebpf/ipblock-identities.ts). An ipBlock selects
 * pods by address, and pods sharing an identity may lie on both sides of an
 * `except`: policy_decide looks the address up here besides its identity.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ipblock_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} ct SEC(".maps");

/* Cilium's default size (CILIUM_IPV4_FRAG_MAP_MAX_ENTRIES): datagrams in flight, not connections. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct frag_key);
	__type(value, struct frag_l4);
} frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct slot_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} svc_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct counter_key);
	__type(value, struct counter_value);
} counters SEC(".maps");

/* Bounded: the least recently updated pairs make room for new ones. Reading
 * costs a syscall per pair, and one pod can fill it with world addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct traffic_key);
	__type(value, struct counter_value);
} traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FWD_SLOTS);
	__type(key, __u32);
	__type(value, struct counter_value);
} fwd_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct node_config);
} config SEC(".maps");

/* ------------------------------------------------------------------ parsing */

/* What one packet is, as the programs need it. Addresses and ports: network order. */
struct pkt {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 has_ports;  /* TCP/UDP/SCTP: sport/dport are real ports (NAT can rewrite them) */
	__u16 policy_port; /* host order: the L4 port policy matches, the ICMP type for ICMP */
	__u16 l4_off;      /* 0 until an IPv4 header was read: addresses are known once it is set */
	__u32 len;
	__u16 ip_id;       /* fragments only: the datagram's IP id (network order) */
	__u8 frag;         /* FRAG_* */
	__u8 pad;
};

/* pkt.frag */
#define FRAG_NONE 0
#define FRAG_FIRST 1 /* offset 0, more to come: the L4 header is here */
#define FRAG_LATER 2 /* no L4 header: its L4 fields are its first fragment's (frags) */

#define PARSE_OK 0
#define PARSE_PASS 1 /* not IPv4: leave it to the stack */

#define IP_MF_OFFSET 0x3fff /* frag_off: "more fragments" and the offset */
#define IP_OFFSET 0x1fff

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04

/*
 * `len` header bytes at `off`: read straight from the packet when they are in
 * its linear part (where the stack builds headers, so nearly always), else
 * through the helper. `off` is at most ETH_HLEN + 60 (an IPv4 header's
 * longest), which lets the verifier bound the direct read.
 */
static __always_inline int load_hdr(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (off <= ETH_HLEN + 60 && data + off + len <= end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* A later fragment takes the L4 fields its datagram's first fragment recorded. */
static __always_inline int frag_lookup(struct pkt *p)
{
	struct frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id, .proto = p->proto };
	struct frag_l4 *f = bpf_map_lookup_elem(&frags, &k);

	if (!f)
		return -DROP_FRAG_NOT_FOUND;
	p->sport = f->sport;
	p->dport = f->dport;
	p->policy_port = f->policy_port;
	p->has_ports = f->has_ports;
	return PARSE_OK;
}

/*
 * The first fragment's L4 fields, for the later ones. Called once the packet
 * is known to be the sender's own (after anti-spoofing), before any
 * translation. A full map costs only the later fragments (FRAG_NOT_FOUND);
 * this one goes on, as in Cilium's ipv4_handle_fragmentation().
 */
static __always_inline void frag_register(const struct pkt *p)
{
	struct frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id, .proto = p->proto };
	struct frag_l4 v = { .sport = p->sport, .dport = p->dport, .policy_port = p->policy_port, .has_ports = p->has_ports };

	bpf_map_update_elem(&frags, &k, &v, BPF_ANY);
}

/* The shortest L4 header a first fragment must hold whole (RFC 1858: no tiny fragments). */
static __always_inline __u16 l4_min_len(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return sizeof(struct tcphdr);
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
		return 8;
	case IPPROTO_SCTP:
		return 12;
	default:
		return 0;
	}
}

/*
 * Returns PARSE_OK, PARSE_PASS or -DROP_*; on a drop the addresses are set
 * whenever the IPv4 header could be read (p->l4_off != 0), the ports when
 * known.
 */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	struct iphdr ip;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return PARSE_PASS;
	if (load_hdr(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -DROP_INVALID;
	if (ip.version != 4 || ip.ihl < 5)
		return -DROP_INVALID;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->ttl = ip.ttl;
	p->l4_off = ETH_HLEN + ip.ihl * 4;
	p->len = skb->len;
	p->sport = 0;
	p->dport = 0;
	p->tcp_flags = 0;
	p->has_ports = 0;
	p->policy_port = 0;
	p->frag = FRAG_NONE;
	if (ip.frag_off & bpf_htons(IP_MF_OFFSET)) {
		p->ip_id = ip.id;
		if (ip.frag_off & bpf_htons(IP_OFFSET)) {
			p->frag = FRAG_LATER;
			return frag_lookup(p);
		}
		p->frag = FRAG_FIRST;
		if (bpf_ntohs(ip.tot_len) < ip.ihl * 4 + l4_min_len(ip.protocol))
			return -DROP_INVALID;
	}

	switch (ip.protocol) {
	case IPPROTO_TCP: {
		__u8 hdr[14];
		if (load_hdr(skb, p->l4_off, hdr, sizeof(hdr)) < 0)
			return -DROP_INVALID;
		__builtin_memcpy(&p->sport, &hdr[0], 2);
		__builtin_memcpy(&p->dport, &hdr[2], 2);
		p->tcp_flags = hdr[13];
		p->has_ports = 1;
		break;
	}
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		__u16 ports[2];
		if (load_hdr(skb, p->l4_off, ports, sizeof(ports)) < 0)
			return -DROP_INVALID;
		p->sport = ports[0];
		p->dport = ports[1];
		p->has_ports = 1;
		break;
	}
	case IPPROTO_ICMP: {
		struct icmp_echo ic;
		if (load_hdr(skb, p->l4_off, &ic, sizeof(ic)) < 0)
			return -DROP_INVALID;
		/* Cilium matches ICMP types as ports of ICMP. Echo request and reply
		 * share their identifier, which stands in for both ports in CT. */
		p->policy_port = ic.type;
		if (ic.type == ICMP_ECHO || ic.type == ICMP_ECHOREPLY) {
			p->sport = ic.id;
			p->dport = ic.id;
		}
		return PARSE_OK;
	}
	default:
		return PARSE_OK;
	}
	p->policy_port = bpf_ntohs(p->dport);
	return PARSE_OK;
}

/* ------------------------------------------------------------------ observability */

static __always_inline void count(__u16 ep_id, __u8 dir, __u8 reason, __u32 len)
{
	if (reason == REASON_FORWARDED) {
		__u32 slot = ((__u32)ep_id << 1) | (dir == DIR_EGRESS);
		struct counter_value *f = bpf_map_lookup_elem(&fwd_counters, &slot);
		if (f) {
			f->packets += 1;
			f->bytes += len;
		}
		return;
	}
	struct counter_key k = { .ep_id = ep_id, .dir = dir, .reason = reason };
	struct counter_value *v = bpf_map_lookup_elem(&counters, &k);

	if (v) {
		v->packets += 1;
		v->bytes += len;
		return;
	}
	struct counter_value nv = { .packets = 1, .bytes = len };
	bpf_map_update_elem(&counters, &k, &nv, BPF_NOEXIST);
}

/*
 * One forwarded packet between two addresses (palisade.h traffic_key says
 * which node counts it). One lookup per packet, an insert only for a new pair;
 * per-CPU values, so no atomics.
 */
static __always_inline void count_traffic(__u32 saddr, __u32 daddr, __u32 len)
{
	struct traffic_key k = { .saddr = saddr, .daddr = daddr };
	struct counter_value *v = bpf_map_lookup_elem(&traffic, &k);
	__u32 ip_len = len > ETH_HLEN ? len - ETH_HLEN : 0;

	if (v) {
		v->packets += 1;
		v->bytes += ip_len;
		return;
	}
	struct counter_value nv = { .packets = 1, .bytes = ip_len };
	bpf_map_update_elem(&traffic, &k, &nv, BPF_NOEXIST);
}

/* A ring buffer record; a full ring buffer is counted, never silent. */
static __always_inline void emit(struct __sk_buff *skb, const struct pkt *p, __u8 type, __u8 reason, __u8 dir,
				 __u16 ep_id, __u32 src_id, __u32 dst_id, __u8 match, __u8 verdict, __u8 is_reply)
{
	struct pl_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&lost_events, &zero);
		if (lost)
			*lost += 1;
		return;
	}
	e->ts = bpf_ktime_get_ns();
	e->type = type;
	e->reason = reason;
	e->dir = dir;
	e->proto = p->proto;
	e->ep_id = ep_id;
	e->match = match;
	e->verdict = verdict;
	e->ifindex = skb->ifindex;
	e->src_identity = src_id;
	e->dst_identity = dst_id;
	e->saddr = p->saddr;
	e->daddr = p->daddr;
	e->sport = p->sport;
	e->dport = p->dport;
	e->len = p->len;
	e->tcp_flags = p->tcp_flags;
	e->is_reply = is_reply;
	e->icmp_type = p->proto == IPPROTO_ICMP ? p->policy_port : 0;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int drop(struct __sk_buff *skb, const struct pkt *p, __u8 reason, __u8 dir, __u16 ep_id,
				__u32 src_id, __u32 dst_id)
{
	count(ep_id, dir, reason, p->len);
	emit(skb, p, EVENT_DROP, reason, dir, ep_id, src_id, dst_id, MATCH_NONE,
	     reason == DROP_POLICY_DENY ? VERDICT_DENY_RULE : VERDICT_DENIED, 0);
	return TC_ACT_SHOT;
}

static __always_inline struct node_config *node_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&config, &zero);
}

/* ------------------------------------------------------------------ identity */

static __always_inline __u32 identity_of(__u32 addr)
{
	struct ipcache_key k = { .prefixlen = 32, .addr = addr };
	struct ipcache_value *v = bpf_map_lookup_elem(&ipcache, &k);
	return v ? v->identity : IDENTITY_WORLD;
}

/* ------------------------------------------------------------------ policy */

struct verdict {
	__u8 verdict;     /* VERDICT_* */
	__u8 match;       /* MATCH_* of the most specific allow entry */
	__u16 proxy_port; /* VERDICT_REDIRECTED: the proxy of the most specific L7 entry */
};

/* Looks up one key; returns 1 when it holds a deny entry. */
static __always_inline int probe(struct policy_key *k, __u32 peer, __u8 proto, __u16 port, __u8 kind,
				 struct verdict *v)
{
	struct policy_value *pv;

	k->peer_id = peer;
	k->proto = proto;
	k->dport = port;
	pv = bpf_map_lookup_elem(&policy, k);
	if (!pv)
		return 0;
	if (pv->action == POLICY_DENY)
		return 1;
	if (pv->action == POLICY_ALLOW && v->match == MATCH_NONE)
		v->match = kind;
	else if (pv->action == POLICY_REDIRECT && !v->proxy_port)
		v->proxy_port = pv->proxy_port;
	return 0;
}

/*
 * The decision for a connection's first packet in one direction of one
 * endpoint; `addr` is the peer's address (after Service translation), for
 * Kubernetes ipBlocks that select pods by address: its ipblock_pods identity
 * is probed beside the peer identity, at the same ranks (L3+L4, L3-only).
 * Every key that could hold a matching entry is looked up, because
 * "If there are any DENY policies that match the request, deny the request"
 * (deny wins over any allow, however specific); among allows the order of
 * probes is compiled.ts's rank: L3+L4, L4-only, L3-only, allow-all; and
 * "allow entries without L7 win over L7 ones": a redirect only when no allow
 * matched.
 */
static __always_inline struct verdict policy_decide(const struct endpoint_info *ep, __u8 dir, __u32 peer,
						   __u32 addr, const struct pkt *p)
{
	struct verdict v = { .verdict = VERDICT_NOT_ENFORCED, .match = MATCH_NONE, .proxy_port = 0 };
	__u16 sel = dir == DIR_INGRESS ? EP_F_INGRESS_POLICY : EP_F_EGRESS_POLICY;
	__u16 enf = dir == DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED;
	struct policy_key k = { .ep_id = ep->ep_id, .dir = dir };
	int deny = 0;

	if (!(ep->flags & sel))
		return v;
	__u32 *block = bpf_map_lookup_elem(&ipblock_pods, &addr);
	__u32 block_id = block ? *block : 0;
	if (p->policy_port)
		deny |= probe(&k, peer, p->proto, p->policy_port, MATCH_L3_L4, &v);
	deny |= probe(&k, peer, p->proto, 0, MATCH_L3_L4, &v);
	if (block_id) {
		if (p->policy_port)
			deny |= probe(&k, block_id, p->proto, p->policy_port, MATCH_L3_L4, &v);
		deny |= probe(&k, block_id, p->proto, 0, MATCH_L3_L4, &v);
	}
	if (p->policy_port)
		deny |= probe(&k, 0, p->proto, p->policy_port, MATCH_L4_ONLY, &v);
	deny |= probe(&k, 0, p->proto, 0, MATCH_L4_ONLY, &v);
	deny |= probe(&k, peer, 0, 0, MATCH_L3_ONLY, &v);
	if (block_id)
		deny |= probe(&k, block_id, 0, 0, MATCH_L3_ONLY, &v);
	deny |= probe(&k, 0, 0, 0, MATCH_ALL, &v);
	if (deny) {
		v.verdict = VERDICT_DENY_RULE;
		v.match = MATCH_NONE;
		v.proxy_port = 0;
	} else if (v.match != MATCH_NONE) {
		v.verdict = VERDICT_ALLOWED;
		v.proxy_port = 0;
	} else if (v.proxy_port) {
		v.verdict = VERDICT_REDIRECTED;
		v.match = MATCH_L7;
	} else if (ep->flags & enf) {
		v.verdict = VERDICT_DENIED;
	}
	return v;
}

static __always_inline int verdict_drops(struct verdict v)
{
	return v.verdict == VERDICT_DENIED || v.verdict == VERDICT_DENY_RULE;
}

/* Drops (with the reason) or reports an allowed first packet. Returns TC_ACT_SHOT or 0. */
static __always_inline int enforce(struct __sk_buff *skb, const struct pkt *p, struct verdict v, __u8 dir,
				   __u16 ep_id, __u32 src_id, __u32 dst_id)
{
	if (verdict_drops(v)) {
		__u8 reason = v.verdict == VERDICT_DENY_RULE ? DROP_POLICY_DENY : DROP_POLICY;
		count(ep_id, dir, reason, p->len);
		emit(skb, p, EVENT_POLICY_VERDICT, reason, dir, ep_id, src_id, dst_id, v.match, v.verdict, 0);
		emit(skb, p, EVENT_DROP, reason, dir, ep_id, src_id, dst_id, v.match, v.verdict, 0);
		return TC_ACT_SHOT;
	}
	struct node_config *cfg = node_config();
	if (cfg && (cfg->flags & CFG_VERDICT_EVENTS) && (v.verdict == VERDICT_ALLOWED || v.verdict == VERDICT_REDIRECTED))
		emit(skb, p, EVENT_POLICY_VERDICT, 0, dir, ep_id, src_id, dst_id, v.match, v.verdict, 0);
	return 0;
}

/* ------------------------------------------------------------------ connection tracking */

#define CT_NEW 0
#define CT_ESTABLISHED 1
#define CT_REPLY 2

/*
 * CT's clock: CLOCK_MONOTONIC at tick resolution. Lifetimes are seconds long,
 * and the coarse clock reads a stored value where bpf_ktime_get_ns() reads
 * the TSC: measured on a same-node request/response, ~70 ns less per packet.
 */
static __always_inline __u64 ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

static __always_inline __u64 ct_lifetime(__u8 proto, __u8 flags)
{
	if (proto != IPPROTO_TCP)
		return CT_LIFETIME_NONTCP;
	if (flags & CT_F_CLOSING)
		return CT_LIFETIME_CLOSE;
	return (flags & CT_F_SEEN_REPLY) ? CT_LIFETIME_TCP : CT_LIFETIME_SYN;
}

static __always_inline void ct_refresh(struct ct_entry *e, const struct pkt *p, int reply, __u64 now)
{
	__u8 flags = e->flags;

	if (reply)
		flags |= CT_F_SEEN_REPLY;
	if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		flags |= CT_F_CLOSING;
	else if ((p->tcp_flags & TCP_FLAG_SYN) && !reply)
		flags &= ~CT_F_CLOSING; /* a new connection reusing the tuple */
	__u64 expires = now + ct_lifetime(p->proto, flags);
	if (flags != e->flags || expires > e->expires + CT_REFRESH_GRANULARITY || expires < e->expires) {
		e->flags = flags;
		e->expires = expires;
	}
}

static __always_inline int ct_lookup(const struct pkt *p, struct ct_entry **out)
{
	struct ct_key k = { .saddr = p->saddr, .daddr = p->daddr, .sport = p->sport, .dport = p->dport,
			    .proto = p->proto, .scope = CT_SCOPE_CONN };
	__u64 now = ct_now();
	struct ct_entry *e = bpf_map_lookup_elem(&ct, &k);
	int dir = CT_ESTABLISHED;

	if (!e || e->expires < now) {
		k.saddr = p->daddr;
		k.daddr = p->saddr;
		k.sport = p->dport;
		k.dport = p->sport;
		e = bpf_map_lookup_elem(&ct, &k);
		dir = CT_REPLY;
	}
	if (!e || e->expires < now)
		return CT_NEW;
	ct_refresh(e, p, dir == CT_REPLY, now);
	*out = e;
	return dir;
}

static __always_inline int ct_create(const struct pkt *p, __u32 rev_addr, __u16 rev_port, __u32 src_id, __u8 flags,
				     __u16 proxy_port)
{
	struct ct_key k = { .saddr = p->saddr, .daddr = p->daddr, .sport = p->sport, .dport = p->dport,
			    .proto = p->proto, .scope = CT_SCOPE_CONN };
	struct ct_entry e = {};

	e.flags = flags | (rev_addr ? CT_F_REV_NAT : 0);
	e.proxy_port = proxy_port;
	e.rev_nat_addr = rev_addr;
	e.rev_nat_port = rev_port;
	e.src_identity = src_id;
	e.expires = ct_now() + ct_lifetime(p->proto, 0);
	return bpf_map_update_elem(&ct, &k, &e, BPF_ANY);
}

/* ------------------------------------------------------------------ rewriting */

/*
 * Rewrites the destination (which = 0) or source (1) address and port,
 * checksums included. A later fragment has no L4 header: only its address
 * changes; the first fragment's L4 checksum and ports stood for the whole
 * datagram.
 */
static __always_inline int nat_rewrite(struct __sk_buff *skb, struct pkt *p, int which, __u32 addr, __u16 port)
{
	__u32 old_addr = which ? p->saddr : p->daddr;
	__u16 old_port = which ? p->sport : p->dport;
	int l4 = p->frag != FRAG_LATER;
	__u32 csum_off = 0;
	__u64 mangled0 = 0;

	if (p->proto == IPPROTO_TCP) {
		csum_off = p->l4_off + offsetof(struct tcphdr, check);
	} else if (p->proto == IPPROTO_UDP) {
		csum_off = p->l4_off + offsetof(struct udphdr, check);
		mangled0 = BPF_F_MARK_MANGLED_0; /* UDP checksum 0 means none: keep it 0 */
	} else {
		return -DROP_WRITE_ERROR;
	}
	if (old_addr != addr) {
		if (l4 && bpf_l4_csum_replace(skb, csum_off, old_addr, addr, BPF_F_PSEUDO_HDR | mangled0 | sizeof(addr)) < 0)
			return -DROP_CSUM_L4;
		if (bpf_l3_csum_replace(skb, IP_OFF_CHECK, old_addr, addr, sizeof(addr)) < 0)
			return -DROP_CSUM_L3;
		if (bpf_skb_store_bytes(skb, which ? IP_OFF_SADDR : IP_OFF_DADDR, &addr, sizeof(addr), 0) < 0)
			return -DROP_WRITE_ERROR;
	}
	if (l4 && old_port != port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, port, mangled0 | sizeof(port)) < 0)
			return -DROP_CSUM_L4;
		if (bpf_skb_store_bytes(skb, p->l4_off + (which ? 0 : 2), &port, sizeof(port), 0) < 0)
			return -DROP_WRITE_ERROR;
	}
	if (which) {
		p->saddr = addr;
		p->sport = port;
	} else {
		p->daddr = addr;
		p->dport = port;
		p->policy_port = bpf_ntohs(port);
	}
	return 0;
}

/*
 * A routed packet loses one hop, as the kernel's forwarding would take it:
 * written in place, with the checksum adjusted as ip_decrease_ttl() does
 * (TTL is the high byte of its 16-bit word). Writing the packet directly makes
 * the verifier unclone a cloned skb before the program runs, as the helpers'
 * writes would have, and spares two helper calls per forwarded packet.
 */
static __always_inline int ttl_decrement(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > end) {
		/* The header is not in the linear part (never seen): the helpers pull it. */
		__u16 old = bpf_htons(((__u16)p->ttl << 8) | p->proto);
		__u16 new = bpf_htons(((__u16)(p->ttl - 1) << 8) | p->proto);
		__u8 ttl = p->ttl - 1;

		if (bpf_l3_csum_replace(skb, IP_OFF_CHECK, old, new, sizeof(__u16)) < 0)
			return -DROP_CSUM_L3;
		if (bpf_skb_store_bytes(skb, IP_OFF_TTL, &ttl, 1, 0) < 0)
			return -DROP_WRITE_ERROR;
		p->ttl = ttl;
		return 0;
	}
	__u32 check = ip->check;
	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl -= 1;
	p->ttl = ip->ttl;
	return 0;
}

/* ------------------------------------------------------------------ services */

/*
 * ClusterIP: the first packet of a client tuple picks a backend at random;
 * the pick is kept in CT (scope SERVICE) so the connection stays on it while
 * the backend exists. Returns 1 when the packet was translated, 0 when it is
 * not for a service, or -DROP_*.
 */
static __always_inline int lb_translate(struct __sk_buff *skb, struct pkt *p)
{
	struct svc_key sk = { .addr = p->daddr, .port = p->dport, .proto = p->proto };
	struct svc_value *svc;
	struct backend *be = 0;
	struct ct_entry *e;
	__u64 now;

	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return 0;
	svc = bpf_map_lookup_elem(&services, &sk);
	if (!svc)
		return 0;
	struct ct_key k = { .saddr = p->saddr, .daddr = p->daddr, .sport = p->sport, .dport = p->dport,
			    .proto = p->proto, .scope = CT_SCOPE_SERVICE };
	now = ct_now();
	e = bpf_map_lookup_elem(&ct, &k);
	if (e && e->expires >= now) {
		__u32 id = e->backend_id;
		be = bpf_map_lookup_elem(&backends, &id);
		if (be)
			ct_refresh(e, p, 1, now);
	}
	if (!be) {
		__u16 n = svc->count;
		if (n == 0)
			return -DROP_NO_SERVICE;
		struct slot_key slot = { .svc_id = svc->svc_id, .slot = (bpf_get_prandom_u32() % n) + 1 };
		__u32 *id = bpf_map_lookup_elem(&svc_slots, &slot);
		if (!id)
			return -DROP_NO_SERVICE;
		__u32 bid = *id;
		be = bpf_map_lookup_elem(&backends, &bid);
		if (!be)
			return -DROP_NO_SERVICE;
		struct ct_entry ne = {};
		ne.backend_id = bid;
		ne.flags = CT_F_SEEN_REPLY;
		ne.expires = now + ct_lifetime(p->proto, CT_F_SEEN_REPLY);
		if (bpf_map_update_elem(&ct, &k, &ne, BPF_ANY) < 0)
			return -DROP_CT_CREATE_FAILED;
	}
	__u32 addr = be->addr;
	__u16 port = be->port;
	int err = nat_rewrite(skb, p, 0, addr, port);
	return err < 0 ? err : 1;
}

/* A reply of a translated connection leaves with the ClusterIP as its source. */
static __always_inline int rev_nat(struct __sk_buff *skb, struct pkt *p, const struct ct_entry *e)
{
	if (!(e->flags & CT_F_REV_NAT))
		return 0;
	return nat_rewrite(skb, p, 1, e->rev_nat_addr, e->rev_nat_port);
}

/* ------------------------------------------------------------------ forwarding */

/* To a local pod: straight into its namespace, past the node's stack. */
static __always_inline int to_local(struct __sk_buff *skb, struct pkt *p, const struct endpoint_info *dst)
{
	if (p->ttl <= 1)
		return TC_ACT_OK; /* the stack answers "time exceeded" */
	int err = ttl_decrement(skb, p);
	if (err < 0)
		return drop(skb, p, -err, DIR_INGRESS, dst->ep_id, 0, dst->identity);
	count(dst->ep_id, DIR_INGRESS, REASON_FORWARDED, p->len);
	return bpf_redirect_peer(dst->ifindex, 0);
}

static __always_inline int in_cluster(const struct node_config *cfg, __u32 addr)
{
	return cfg->cluster_mask && (addr & cfg->cluster_mask) == cfg->cluster_addr;
}

/* Delivered to a pod: counted here only when no pod of the cluster sent it (a pod's node counted it). */
static __always_inline void count_delivered(__u32 saddr, __u32 daddr, __u32 len)
{
	struct node_config *cfg = node_config();

	if (cfg && in_cluster(cfg, saddr))
		return;
	count_traffic(saddr, daddr, len);
}

/*
 * To a pod of another node: the node's routing table says which underlay
 * neighbour; the packet leaves on the underlay without crossing netfilter.
 * Anything not routed over the underlay is left to the stack.
 */
static __always_inline int to_remote(struct __sk_buff *skb, struct pkt *p, const struct node_config *cfg,
				     __u16 src_ep)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	fib.family = AF_INET;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	/* tot_len 0: the kernel checks the MTU with is_skb_forwardable(), which
	 * knows GSO packets; a non-zero tot_len would call every 64 KB GSO
	 * packet "frag needed" and push it to the stack (and through FORWARD). */
	fib.tot_len = 0;
	fib.ifindex = skb->ingress_ifindex;
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return TC_ACT_OK; /* unreachable, forwarding off…: the stack decides and answers */
	if (fib.ifindex != cfg->underlay_ifindex || p->ttl <= 1)
		return TC_ACT_OK;
	int err = ttl_decrement(skb, p);
	if (err < 0)
		return drop(skb, p, -err, DIR_EGRESS, src_ep, 0, 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0) < 0)
			return drop(skb, p, DROP_WRITE_ERROR, DIR_EGRESS, src_ep, 0, 0);
		return bpf_redirect(fib.ifindex, 0);
	}
	struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = fib.ipv4_dst };
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}

/* ------------------------------------------------------------------ proxies */

/*
 * Handing a packet to a socket of the node, as TPROXY does: the socket is
 * assigned at tc ingress (bpf_sk_assign), PROXY_MARK makes the policy route
 * deliver the packet locally whatever its destination, and the packet keeps
 * its addresses, so the socket's local address is the original destination.
 * Lookups follow Cilium's (bpf/lib/proxy.h): the flow's own socket first,
 * then the proxy's listener by its port alone.
 *
 * "Own socket" is a socket of this node for exactly this flow, bound to the
 * packet's destination: never a listener (a node service on the same port
 * is not the flow's), never an unconnected UDP socket (the DNS proxy's
 * reply sockets are bound to the servers' addresses and must not receive
 * queries), and never one bound to the wildcard address.
 */
static __always_inline int own_tcp_socket_ok(const struct bpf_sock *sk, __u32 daddr, int time_wait_ok)
{
	if (sk->state == BPF_TCP_LISTEN || (!time_wait_ok && sk->state == BPF_TCP_TIME_WAIT))
		return 0;
	return sk->src_ip4 == daddr;
}

/*
 * proxy_port 0: only the flow's own socket (the answers to a proxy's onward
 * connection). Returns 0 when assigned, 1 when no socket (proxy_port 0), or
 * -DROP_*. A fragment may go to a flow's own socket only: the stack finds
 * that one again by the tuple once it has reassembled the datagram.
 */
static __always_inline int assign_tcp(struct __sk_buff *skb, struct bpf_sock_tuple *t, __u16 proxy_port, __u8 frag)
{
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	long err;

	if (sk) {
		/* A redirected flow's TIME_WAIT socket is done: a new SYN goes to the listener. */
		if (own_tcp_socket_ok(sk, t->ipv4.daddr, !proxy_port))
			goto assign;
		bpf_sk_release(sk);
	}
	if (!proxy_port)
		return 1;
	/* Reassembly (ip_defrag) orphans the skb: an assigned listener would be
	 * lost, and the datagram's own tuple (original destination) finds none. */
	if (frag)
		return -DROP_FRAG_NOSUPPORT;
	t->ipv4.saddr = 0;
	t->ipv4.daddr = 0;
	t->ipv4.sport = 0;
	t->ipv4.dport = bpf_htons(proxy_port);
	sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -DROP_PROXY_LOOKUP_FAILED;
	if (sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return -DROP_PROXY_LOOKUP_FAILED;
	}
assign:
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return err ? -DROP_PROXY_SET_FAILED : 0;
}

static __always_inline int assign_udp(struct __sk_buff *skb, struct bpf_sock_tuple *t, __u16 proxy_port, __u8 frag)
{
	struct bpf_sock *sk = bpf_sk_lookup_udp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	long err;

	if (sk) {
		if (sk->dst_port && sk->src_ip4 == t->ipv4.daddr)
			goto assign;
		bpf_sk_release(sk);
	}
	if (!proxy_port)
		return 1;
	/* Reassembly (ip_defrag) orphans the skb: an assigned listener would be
	 * lost, and the datagram's own tuple (original destination) finds none. */
	if (frag)
		return -DROP_FRAG_NOSUPPORT;
	t->ipv4.saddr = 0;
	t->ipv4.daddr = 0;
	t->ipv4.sport = 0;
	t->ipv4.dport = bpf_htons(proxy_port);
	sk = bpf_sk_lookup_udp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -DROP_PROXY_LOOKUP_FAILED;
assign:
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return err ? -DROP_PROXY_SET_FAILED : 0;
}

/*
 * Hands the packet to the proxy on proxy_port (or, with proxy_port 0, to the
 * flow's own socket). Returns TC_ACT_OK, 1 when there is no own socket
 * (proxy_port 0 only), or -DROP_*: with no listener (the agent restarting)
 * steered packets are dropped, never passed unchecked.
 */
static __always_inline int to_socket(struct __sk_buff *skb, const struct pkt *p, __u16 proxy_port)
{
	struct bpf_sock_tuple t = {};
	int rc;

	t.ipv4.saddr = p->saddr;
	t.ipv4.daddr = p->daddr;
	t.ipv4.sport = p->sport;
	t.ipv4.dport = p->dport;
	if (p->proto == IPPROTO_TCP)
		rc = assign_tcp(skb, &t, proxy_port, p->frag);
	else if (p->proto == IPPROTO_UDP)
		rc = assign_udp(skb, &t, proxy_port, p->frag);
	else
		rc = proxy_port ? -DROP_PROXY_UNKNOWN_PROTO : 1;
	if (rc != 0)
		return rc;
	skb->mark = PROXY_MARK;
	/* Frames for a pod carry the pod's MAC; the stack takes only PACKET_HOST up. */
	bpf_skb_change_type(skb, PACKET_HOST);
	return TC_ACT_OK;
}

/* The answer to a proxy's onward connection: to its socket, or dropped (the pod never opened it). */
static __always_inline int to_proxy_upstream(struct __sk_buff *skb, const struct pkt *p, __u8 dir, __u16 ep_id)
{
	int rc = to_socket(skb, p, 0);

	if (rc == 1)
		rc = -DROP_PROXY_LOOKUP_FAILED;
	if (rc < 0)
		return drop(skb, p, -rc, dir, ep_id, 0, 0);
	count(ep_id, dir, REASON_FORWARDED, p->len);
	if (dir == DIR_EGRESS) /* sent by a pod of this node (from_container, before any NAT) */
		count_traffic(p->saddr, p->daddr, p->len);
	return rc;
}

static __always_inline int to_proxy(struct __sk_buff *skb, const struct pkt *p, __u16 proxy_port, __u8 dir,
				    __u16 ep_id, __u32 src_id, __u32 dst_id)
{
	int rc = to_socket(skb, p, proxy_port);

	if (rc < 0 || rc == 1)
		return drop(skb, p, rc < 0 ? -rc : DROP_PROXY_LOOKUP_FAILED, dir, ep_id, src_id, dst_id);
	count(ep_id, dir, REASON_FORWARDED, p->len);
	/* Sent by a pod of this node; what comes from elsewhere is counted when
	 * the proxy delivers it (to_container), as the proxy sends it on. */
	if (dir == DIR_EGRESS)
		count_traffic(p->saddr, p->daddr, p->len);
	return rc;
}

/* ------------------------------------------------------------------ programs */

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep_ifindex, &ifindex);
	struct endpoint_info *dst;
	struct ct_entry *e = 0;
	struct pkt p = {};
	__u32 rev_addr = 0;
	__u16 rev_port = 0;
	__u16 proxy_port = 0;
	__u32 dst_id = 0;
	int rc;

	if (!ep)
		return TC_ACT_OK; /* not (yet) a pod of ours */
	rc = parse(skb, &p);
	if (rc == PARSE_PASS)
		return TC_ACT_OK;
	if (rc < 0 && !p.l4_off) {
		p.len = skb->len;
		return drop(skb, &p, -rc, DIR_EGRESS, ep->ep_id, ep->identity, 0);
	}
	/* A pod may only speak with its own address: checked before anything the
	 * packet claims is believed (a spoofed fragment registers nothing). */
	if (p.saddr != ep->ip)
		return drop(skb, &p, DROP_INVALID_SIP, DIR_EGRESS, ep->ep_id, ep->identity, 0);
	if (rc < 0)
		return drop(skb, &p, -rc, DIR_EGRESS, ep->ep_id, ep->identity, 0);
	if (p.frag == FRAG_FIRST)
		frag_register(&p);

	/* A local pod's address is never a ClusterIP: only other destinations
	 * are looked up as services (pod → pod on the node skips that lookup). */
	dst = bpf_map_lookup_elem(&endpoints, &p.daddr);
	if (!dst) {
		__u32 vip = p.daddr;
		__u16 vport = p.dport;
		rc = lb_translate(skb, &p);
		if (rc < 0)
			return drop(skb, &p, -rc, DIR_EGRESS, ep->ep_id, ep->identity, 0);
		if (rc == 1) {
			rev_addr = vip;
			rev_port = vport;
			dst = bpf_map_lookup_elem(&endpoints, &p.daddr);
		}
	}
	rc = ct_lookup(&p, &e);
	/* A proxy of this node holds this tuple in the pod's name: the pod's own
	 * packet is a new connection, judged as one (its entry is replaced). */
	if (rc == CT_ESTABLISHED && e && (e->flags & CT_F_PROXY_UPSTREAM))
		rc = CT_NEW;
	if (rc == CT_ESTABLISHED && e && (e->flags & CT_F_TO_PROXY)) {
		proxy_port = e->proxy_port;
	} else if (rc == CT_REPLY && e) {
		/* This pod answers a proxy's onward connection (or, for a redirected
		 * flow, only the proxy may answer): to that socket, or nowhere. */
		if (e->flags & (CT_F_PROXY_UPSTREAM | CT_F_TO_PROXY))
			return to_proxy_upstream(skb, &p, DIR_EGRESS, ep->ep_id);
		int err = rev_nat(skb, &p, e);
		if (err < 0)
			return drop(skb, &p, -err, DIR_EGRESS, ep->ep_id, ep->identity, 0);
	} else if (rc == CT_NEW) {
		dst_id = dst ? dst->identity : identity_of(p.daddr);
		struct verdict v = policy_decide(ep, DIR_EGRESS, dst_id, p.daddr, &p);
		if (enforce(skb, &p, v, DIR_EGRESS, ep->ep_id, ep->identity, dst_id))
			return TC_ACT_SHOT;
		if (v.verdict == VERDICT_REDIRECTED)
			proxy_port = v.proxy_port;
		if (dst) {
			v = policy_decide(dst, DIR_INGRESS, ep->identity, p.saddr, &p);
			if (enforce(skb, &p, v, DIR_INGRESS, dst->ep_id, ep->identity, dst_id))
				return TC_ACT_SHOT;
			/* The proxy judges both sides' L7 rules of the connection. */
			if (v.verdict == VERDICT_REDIRECTED && !proxy_port)
				proxy_port = v.proxy_port;
		}
		if (ct_create(&p, rev_addr, rev_port, ep->identity, proxy_port ? CT_F_TO_PROXY : 0, proxy_port) < 0)
			return drop(skb, &p, DROP_CT_CREATE_FAILED, DIR_EGRESS, ep->ep_id, ep->identity, dst_id);
	}
	if (proxy_port)
		return to_proxy(skb, &p, proxy_port, DIR_EGRESS, ep->ep_id, ep->identity, dst_id);
	count(ep->ep_id, DIR_EGRESS, REASON_FORWARDED, p.len);
	/* The pod's own address: a reply's source may have been rewritten to its ClusterIP. */
	count_traffic(ep->ip, p.daddr, p.len);
	if (dst)
		return to_local(skb, &p, dst);
	struct node_config *cfg = node_config();
	if (cfg && in_cluster(cfg, p.daddr))
		return to_remote(skb, &p, cfg, ep->ep_id);
	return TC_ACT_OK;
}

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	struct endpoint_info *dst;
	struct ct_entry *e = 0;
	struct pkt p = {};
	__u16 proxy_port = 0;
	__u32 src_id = 0;
	__u32 sender;
	int rc;

	rc = parse(skb, &p);
	if (rc == PARSE_PASS || !p.l4_off)
		return TC_ACT_OK; /* not IPv4, or no header to say for whom: the stack judges */
	dst = bpf_map_lookup_elem(&endpoints, &p.daddr);
	if (!dst)
		return TC_ACT_OK; /* for the node itself (or masqueraded replies) */
	sender = p.saddr; /* before reverse NAT */
	if (rc < 0)
		return drop(skb, &p, -rc, DIR_INGRESS, dst->ep_id, identity_of(p.saddr), dst->identity);
	if (p.frag == FRAG_FIRST)
		frag_register(&p);
	rc = ct_lookup(&p, &e);
	if (rc == CT_ESTABLISHED && e && (e->flags & CT_F_PROXY_UPSTREAM))
		rc = CT_NEW;
	if (rc == CT_ESTABLISHED && e && (e->flags & CT_F_TO_PROXY)) {
		proxy_port = e->proxy_port;
	} else if (rc == CT_REPLY && e) {
		if (e->flags & (CT_F_PROXY_UPSTREAM | CT_F_TO_PROXY))
			return to_proxy_upstream(skb, &p, DIR_INGRESS, dst->ep_id);
		int err = rev_nat(skb, &p, e);
		if (err < 0)
			return drop(skb, &p, -err, DIR_INGRESS, dst->ep_id, 0, dst->identity);
	} else if (rc == CT_NEW) {
		/* A proxy of this node connected to another node in this pod's name:
		 * no CT entry here (it left through the stack), but its socket, bound
		 * to the pod's address, takes the answers (`socket transparent`). */
		if (p.has_ports) {
			rc = to_socket(skb, &p, 0);
			if (rc < 0)
				return drop(skb, &p, -rc, DIR_INGRESS, dst->ep_id, 0, dst->identity);
			if (rc != 1) {
				count(dst->ep_id, DIR_INGRESS, REASON_FORWARDED, p.len);
				return rc;
			}
		}
		src_id = identity_of(p.saddr);
		struct verdict v = policy_decide(dst, DIR_INGRESS, src_id, p.saddr, &p);
		if (enforce(skb, &p, v, DIR_INGRESS, dst->ep_id, src_id, dst->identity))
			return TC_ACT_SHOT;
		if (v.verdict == VERDICT_REDIRECTED)
			proxy_port = v.proxy_port;
		if (ct_create(&p, 0, 0, src_id, proxy_port ? CT_F_TO_PROXY : 0, proxy_port) < 0)
			return drop(skb, &p, DROP_CT_CREATE_FAILED, DIR_INGRESS, dst->ep_id, src_id, dst->identity);
	}
	if (proxy_port)
		return to_proxy(skb, &p, proxy_port, DIR_INGRESS, dst->ep_id, src_id, dst->identity);
	count_delivered(sender, dst->ip, p.len);
	return to_local(skb, &p, dst);
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep_ifindex, &ifindex);
	struct ct_entry *e = 0;
	struct pkt p = {};
	__u32 sender;
	int rc;

	if (!ep)
		return TC_ACT_OK;
	rc = parse(skb, &p);
	if (rc == PARSE_PASS || !p.l4_off)
		return TC_ACT_OK;
	if (rc < 0)
		return drop(skb, &p, -rc, DIR_INGRESS, ep->ep_id, identity_of(p.saddr), ep->identity);
	if (p.frag == FRAG_FIRST)
		frag_register(&p);
	sender = p.saddr; /* before reverse NAT */
	rc = ct_lookup(&p, &e);
	if (rc == CT_REPLY && e) {
		int err = rev_nat(skb, &p, e);
		if (err < 0)
			return drop(skb, &p, -err, DIR_INGRESS, ep->ep_id, 0, ep->identity);
	} else if (rc == CT_NEW) {
		__u32 src_id = identity_of(p.saddr);
		/* A socket of this node speaking from an address that is not the
		 * node's: a transparent proxy connecting onward in its client's name. */
		int from_proxy = skb->sk && src_id != IDENTITY_HOST;
		/* The node itself may always reach its pods (Cilium's allow-localhost). */
		if (src_id != IDENTITY_HOST) {
			struct verdict v = policy_decide(ep, DIR_INGRESS, src_id, p.saddr, &p);
			/* Redirection happens where packets enter the node: here only the
			 * proxy's own connection may pass an L7 entry, and it has judged
			 * the requests against this pod's ingress rules already. */
			if (v.verdict == VERDICT_REDIRECTED)
				v.verdict = from_proxy ? VERDICT_ALLOWED : VERDICT_DENIED;
			if (enforce(skb, &p, v, DIR_INGRESS, ep->ep_id, src_id, ep->identity))
				return TC_ACT_SHOT;
		}
		if (ct_create(&p, 0, 0, src_id, from_proxy ? CT_F_PROXY_UPSTREAM : 0, 0) < 0)
			return drop(skb, &p, DROP_CT_CREATE_FAILED, DIR_INGRESS, ep->ep_id, src_id, ep->identity);
	}
	count(ep->ep_id, DIR_INGRESS, REASON_FORWARDED, p.len);
	count_delivered(sender, ep->ip, p.len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
