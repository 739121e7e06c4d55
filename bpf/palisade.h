/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Palisade eBPF host routing: the layout of every map shared between the tc
 * programs (palisade.bpf.c) and the agent (src/datapath/ebpf/maps.ts, which
 * mirrors these structs byte for byte — change both together).
 *
 *   ipcache      LPM  prefix            -> identity        who an address is
 *   endpoints    hash pod IP            -> endpoint_info   local pods, by address
 *   ep_ifindex   hash host veth ifindex -> endpoint_info   local pods, by their veth
 *   policy       hash policy_key        -> policy_value    per endpoint, per direction
 *   ct           LRU  ct_key            -> ct_entry        connections (and service picks)
 *   frags        LRU  frag_key          -> frag_l4         L4 fields of fragmented datagrams
 *   services     hash svc_key           -> svc_value       ClusterIP frontends
 *   svc_slots    hash slot_key          -> backend id      slot 1..count of a service
 *   backends     hash backend id        -> backend         where a backend lives
 *   fwd_counters percpu array slot      -> counter_value   forwarded per endpoint and direction
 *   counters     percpu hash counter_key-> counter_value   dropped per endpoint, direction and reason
 *   traffic      percpu LRU  traffic_key-> counter_value   forwarded per address pair (readTraffic)
 *   lost_events  percpu array [1]       -> u64             ring buffer reserve failures
 *   events       ringbuf                                    pl_event records
 *   config       array [1]              -> node_config     this node
 *
 * Addresses and L4 ports in keys are in network byte order unless said
 * otherwise; identities, ids and policy ports are host order.
 */
#ifndef PALISADE_H
#define PALISADE_H

#include <linux/types.h>

/* Reserved identities (Cilium's numbers). */
#define IDENTITY_HOST 1
#define IDENTITY_WORLD 2

/* Drop reasons: Cilium's numbers (bpf/lib/common.h), Hubble's DropReason names. */
#define DROP_INVALID_SIP 132        /* INVALID_SOURCE_IP */
#define DROP_POLICY 133             /* POLICY_DENIED: no allow entry, direction enforced */
#define DROP_INVALID 134            /* INVALID_PACKET_DROPPED */
#define DROP_WRITE_ERROR 141        /* ERROR_WRITING_TO_PACKET */
#define DROP_CSUM_L3 153            /* ERROR_WHILE_CORRECTING_L3_CHECKSUM */
#define DROP_CSUM_L4 154            /* ERROR_WHILE_CORRECTING_L4_CHECKSUM */
#define DROP_CT_CREATE_FAILED 155   /* CT_MAP_INSERTION_FAILED */
#define DROP_FRAG_NOSUPPORT 157     /* IP_FRAGMENTATION_NOT_SUPPORTED: a fragment for a proxy's listener */
#define DROP_NO_SERVICE 158         /* SERVICE_BACKEND_NOT_FOUND */
#define DROP_FIB_LOOKUP 169         /* FIB_LOOKUP_FAILED */
#define DROP_FRAG_NOT_FOUND 175     /* FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND: a later fragment, its first unseen */
#define DROP_PROXY_LOOKUP_FAILED 178 /* SOCKET_LOOKUP_FAILED: no proxy socket (proxy down) */
#define DROP_PROXY_SET_FAILED 179   /* SOCKET_ASSIGN_FAILED */
#define DROP_PROXY_UNKNOWN_PROTO 180 /* PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL */
#define DROP_POLICY_DENY 181        /* POLICY_DENY: a deny entry matched */

/* counter_key.reason for forwarded packets. */
#define REASON_FORWARDED 0

#define DIR_INGRESS 1
#define DIR_EGRESS 2

/*
 * Endpoint ids are 1..EP_ID_MAX (the agent allocates them). Forwarded packets
 * are counted in fwd_counters at slot ep_id * 2 + (dir == DIR_EGRESS): an
 * array slot is an inlined address computation, where a hash lookup is a
 * helper call that hashes the key, and every forwarded packet counts twice.
 */
#define EP_ID_MAX 4096
#define FWD_SLOTS ((EP_ID_MAX + 1) * 2)

/*
 * skb->mark of packets handed to a proxy socket: the node's policy route
 * (`ip rule fwmark 0x40000/0x40000 lookup 100`, `local 0.0.0.0/0 dev lo
 * table 100`, set up with the legacy datapath's node setup) delivers them
 * locally whatever their destination, as TPROXY's mark does.
 */
#define PROXY_MARK 0x40000

struct ipcache_key {
	__u32 prefixlen; /* LPM: bits of addr that count */
	__u32 addr;
};

struct ipcache_value {
	__u32 identity;
	__u32 flags; /* reserved */
};

/* endpoint_info.flags */
#define EP_F_INGRESS_POLICY (1 << 0)   /* some rule speaks about ingress: look up the policy map */
#define EP_F_INGRESS_ENFORCED (1 << 1) /* ... and no allow entry means drop (POLICY_DENIED) */
#define EP_F_EGRESS_POLICY (1 << 2)
#define EP_F_EGRESS_ENFORCED (1 << 3)

struct endpoint_info {
	__u32 ifindex;  /* host-side veth */
	__u32 identity;
	__u16 ep_id;    /* 1..65535, the policy map's subject */
	__u16 flags;
	__u32 ip;       /* the pod's address: anti-spoofing on its veth */
};

/* policy_value.action */
#define POLICY_ALLOW 1
#define POLICY_DENY 2
#define POLICY_REDIRECT 3 /* an L7 entry: the connection goes to the node's proxy on proxy_port */

/*
 * One allow or deny fact: "endpoint ep_id, in direction dir, from/to peer
 * identity peer_id (0 = any), protocol proto (0 = any), destination port
 * dport (0 = any; ICMP: the type)". The agent merges entries that land on
 * the same key: deny over allow over redirect ("L4 allow-all wins" over L7).
 */
struct policy_key {
	__u32 peer_id;
	__u16 ep_id;
	__u16 dport; /* host order */
	__u8 proto;
	__u8 dir;
	__u16 pad;
};

struct policy_value {
	__u8 action;
	__u8 pad;
	__u16 proxy_port; /* POLICY_REDIRECT: the proxy's port, host order */
};

/* ct_key.scope */
#define CT_SCOPE_CONN 0    /* a connection, keyed by its first packet's tuple (after DNAT) */
#define CT_SCOPE_SERVICE 1 /* the backend a client tuple to a ClusterIP was given */

struct ct_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport; /* ICMP echo: the identifier, in both */
	__u16 dport;
	__u8 proto;
	__u8 scope;
	__u16 pad;
};

/* ct_entry.flags */
#define CT_F_REV_NAT (1 << 0)    /* replies get their source turned back into rev_nat_addr:port */
#define CT_F_SEEN_REPLY (1 << 1)
#define CT_F_CLOSING (1 << 2)    /* FIN or RST seen */
#define CT_F_TO_PROXY (1 << 3)   /* the opener's packets go to the proxy on proxy_port; only the
				  * proxy (a local socket) answers, so "replies" from elsewhere drop */
#define CT_F_PROXY_UPSTREAM (1 << 4) /* opened by a proxy's transparent socket on this node in a
				      * pod's (or world's) name: replies go back to that socket */

struct ct_entry {
	__u64 expires;       /* CLOCK_MONOTONIC deadline (ct_now()); past it the entry is ignored */
	__u32 rev_nat_addr;  /* ClusterIP the client asked for */
	__u16 rev_nat_port;
	__u8 flags;
	__u8 pad;
	union {
		__u32 backend_id;    /* CT_SCOPE_SERVICE: the backend chosen */
		struct {
			__u16 proxy_port; /* CT_SCOPE_CONN with CT_F_TO_PROXY, host order */
			__u16 pad2;
		};
	};
	__u32 src_identity;  /* identity of the side that opened the connection */
};

/*
 * A fragmented datagram, as Cilium's IPV4_FRAG_DATAGRAMS_MAP keys it: only its
 * first fragment has an L4 header, so that fragment records its L4 fields
 * here and the later ones (same source, destination, protocol and IP id) take
 * them, to be judged by CT and policy as the first was. Keyed by the
 * addresses on the wire, before any service translation.
 */
struct frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;
	__u8 proto;
	__u8 pad;
};

struct frag_l4 {
	__u16 sport;       /* network order; ICMP echo: the identifier */
	__u16 dport;
	__u16 policy_port; /* host order: the port policy matches, the ICMP type for ICMP */
	__u8 has_ports;
	__u8 pad;
};

struct svc_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct svc_value {
	__u32 svc_id;
	__u16 count; /* backends in svc_slots, slots 1..count; 0 = drop (no backend) */
	__u16 flags;
};

struct slot_key {
	__u32 svc_id;
	__u32 slot;
};

struct backend {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

struct counter_key {
	__u16 ep_id;
	__u8 dir;
	__u8 reason; /* REASON_FORWARDED or a DROP_* */
};

struct counter_value {
	__u64 packets;
	__u64 bytes;
};

/*
 * traffic: forwarded bytes per address pair, network order, as the packet
 * had them before any NAT of this node (the pod's own address, the backend
 * a ClusterIP was translated to). 8 bytes, no padding:
 *
 *   0       4       8
 *   | saddr | daddr |
 *
 * Each packet is counted once in the cluster: by the node of the pod that
 * sends it, or, when its source is no pod of the cluster (world, a node),
 * by the node of the pod it is delivered to. Bytes are the IP packet's
 * (skb->len less the Ethernet header), as nftables' counters count them.
 */
struct traffic_key {
	__u32 saddr;
	__u32 daddr;
};

/* node_config.flags */
#define CFG_VERDICT_EVENTS (1 << 0) /* a POLICY_VERDICT event for every allowed new connection */

struct node_config {
	__u32 underlay_ifindex;
	__u32 cluster_addr; /* cluster pod CIDR: routed by FIB lookup + redirect to the underlay */
	__u32 cluster_mask;
	__u32 flags;
};

/* pl_event.type */
#define EVENT_DROP 1
#define EVENT_POLICY_VERDICT 2

/* pl_event.match: the most specific allow entry that matched (precedence of compiled.ts) */
#define MATCH_NONE 0
#define MATCH_L3_L4 1
#define MATCH_L4_ONLY 2
#define MATCH_L3_ONLY 3
#define MATCH_ALL 4
#define MATCH_L7 5 /* only an L7 entry matched: redirected to the proxy */

/* pl_event.verdict */
#define VERDICT_ALLOWED 1
#define VERDICT_DENIED 2      /* default deny */
#define VERDICT_DENY_RULE 3   /* a deny entry */
#define VERDICT_NOT_ENFORCED 4
#define VERDICT_REDIRECTED 5  /* to the node's L7 proxy, which judges each request */

/* 48 bytes, one ring buffer record. */
struct pl_event {
	__u64 ts;
	__u8 type;
	__u8 reason;
	__u8 dir;
	__u8 proto;
	__u16 ep_id;
	__u8 match;
	__u8 verdict;
	__u32 ifindex;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 len;
	__u8 tcp_flags;
	__u8 is_reply;
	__u8 icmp_type; /* ICMP: the type (sport and dport hold an echo's identifier) */
	__u8 pad;
};

#endif
