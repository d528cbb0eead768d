/*
 * fastpath DPDK shim: non-inline wrappers for the DPDK calls fastpath makes.
 *
 * DPDK's hot functions (rte_eth_rx_burst, rte_eth_tx_burst, the mbuf accessors) are static
 * inline in its headers, so Rust cannot call them through FFI. This file compiles them into
 * real symbols (prefix `fp_`), and does the setup steps whose argument structs (rte_eth_conf,
 * rte_eth_dev_info, rte_eth_link) are large or use bit-fields, so Rust mirrors only
 * `struct rte_eth_stats` (size-checked against fp_sizeof_rte_eth_stats).
 *
 * Built by crates/fastpath/build.rs only with the cargo feature `dpdk`; declared by hand in
 * crates/fastpath/src/backend/dpdk/ffi.rs. Keep the two in sync.
 *
 * Error convention: functions return 0 or a negative errno (as DPDK's ethdev calls do).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

/* One received packet as Rust sees it: the first segment's bytes and the whole packet's length. */
struct fp_pkt {
	const uint8_t *data;
	uint32_t data_len;
	uint32_t pkt_len;
};

/* rte_errno is a per-lcore (thread-local) macro: read it here. */
int fp_errno(void) { return rte_errno; }

/* The size Rust's `rte_eth_stats` mirror must have. */
size_t fp_sizeof_rte_eth_stats(void) { return sizeof(struct rte_eth_stats); }

/* The size of `struct fp_pkt` (checked against the Rust mirror). */
size_t fp_sizeof_fp_pkt(void) { return sizeof(struct fp_pkt); }

/* rte_lcore_id() for the calling thread (LCORE_ID_ANY = UINT32_MAX for unregistered threads). */
unsigned int fp_lcore_id(void) { return rte_lcore_id(); }

/* rte_eth_rx_burst, then the data pointer and lengths of each mbuf, in one call per burst. */
uint16_t fp_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs, struct fp_pkt *pkts,
		     uint16_t n)
{
	uint16_t got = rte_eth_rx_burst(port, queue, mbufs, n);
	for (uint16_t i = 0; i < got; i++) {
		struct rte_mbuf *m = mbufs[i];
		pkts[i].data = rte_pktmbuf_mtod(m, const uint8_t *);
		pkts[i].data_len = rte_pktmbuf_data_len(m);
		pkts[i].pkt_len = rte_pktmbuf_pkt_len(m);
	}
	return got;
}

/* Frees `n` mbufs (each with all its segments). */
void fp_free_bulk(struct rte_mbuf **mbufs, unsigned int n) { rte_pktmbuf_free_bulk(mbufs, n); }

/*
 * Copies each frame into a fresh mbuf from `pool` (rte_pktmbuf_alloc + append) and hands them to
 * rte_eth_tx_burst. Returns how many the driver accepted (a prefix of `frames`); mbufs it did not
 * take are freed here. Stops early (returning fewer) when the pool is empty. A frame longer than
 * one mbuf's data room is refused: returns -EMSGSIZE if it is the first, else the count so far.
 */
int fp_tx_copy(uint16_t port, uint16_t queue, struct rte_mempool *pool,
	       const uint8_t *const *frames, const uint32_t *lens, uint16_t n)
{
	struct rte_mbuf *mbufs[64];
	uint16_t total = 0;
	while (total < n) {
		uint16_t want = n - total;
		if (want > 64)
			want = 64;
		uint16_t built = 0;
		for (; built < want; built++) {
			uint32_t len = lens[total + built];
			struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
			if (m == NULL)
				break;
			char *dst = len <= UINT16_MAX ? rte_pktmbuf_append(m, (uint16_t)len) : NULL;
			if (dst == NULL) {
				rte_pktmbuf_free(m);
				if (total + built == 0)
					return -EMSGSIZE;
				break;
			}
			memcpy(dst, frames[total + built], len);
			mbufs[built] = m;
		}
		uint16_t sent = built ? rte_eth_tx_burst(port, queue, mbufs, built) : 0;
		if (sent < built)
			rte_pktmbuf_free_bulk(&mbufs[sent], built - sent);
		total += sent;
		if (sent < want)
			break;
	}
	return total;
}

static void set_err(char *err, size_t errlen, const char *call, int ret)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", call, rte_strerror(ret < 0 ? -ret : ret));
}

/*
 * Configures `port` with `nb_q` RX and TX queues (RSS over IP/TCP/UDP when nb_q > 1), sets them up
 * with `rx_desc`/`tx_desc` descriptors and mbufs from `pool`, starts the port, resets its counters
 * and sets promiscuous mode if asked (a driver without it is not an error). On failure writes
 * "<call>: <reason>" to err and returns the negative errno.
 */
int fp_port_start(uint16_t port, uint16_t nb_q, uint16_t rx_desc, uint16_t tx_desc,
		  struct rte_mempool *pool, int promisc, char *err, size_t errlen)
{
	struct rte_eth_dev_info info;
	int ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0) {
		set_err(err, errlen, "rte_eth_dev_info_get", ret);
		return ret;
	}
	if (nb_q > info.max_rx_queues || nb_q > info.max_tx_queues) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
				 "the driver offers at most %u rx and %u tx queues, asked for %u",
				 info.max_rx_queues, info.max_tx_queues, nb_q);
		return -EINVAL;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (nb_q > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
		if (conf.rx_adv_conf.rss_conf.rss_hf == 0)
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	}
	ret = rte_eth_dev_configure(port, nb_q, nb_q, &conf);
	if (ret != 0) {
		set_err(err, errlen, "rte_eth_dev_configure", ret);
		return ret;
	}
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_desc, &tx_desc);
	if (ret != 0) {
		set_err(err, errlen, "rte_eth_dev_adjust_nb_rx_tx_desc", ret);
		return ret;
	}
	int socket = rte_eth_dev_socket_id(port);
	if (socket < 0)
		socket = (int)SOCKET_ID_ANY;
	for (uint16_t q = 0; q < nb_q; q++) {
		ret = rte_eth_rx_queue_setup(port, q, rx_desc, (unsigned int)socket, NULL, pool);
		if (ret != 0) {
			set_err(err, errlen, "rte_eth_rx_queue_setup", ret);
			return ret;
		}
		ret = rte_eth_tx_queue_setup(port, q, tx_desc, (unsigned int)socket, NULL);
		if (ret != 0) {
			set_err(err, errlen, "rte_eth_tx_queue_setup", ret);
			return ret;
		}
	}
	ret = rte_eth_dev_start(port);
	if (ret != 0) {
		set_err(err, errlen, "rte_eth_dev_start", ret);
		return ret;
	}
	rte_eth_stats_reset(port);
	if (promisc) {
		ret = rte_eth_promiscuous_enable(port);
		if (ret != 0 && ret != -ENOTSUP) {
			set_err(err, errlen, "rte_eth_promiscuous_enable", ret);
			rte_eth_dev_stop(port);
			return ret;
		}
	}
	return 0;
}

/* Copies the port's driver name (e.g. "net_af_packet") into buf. */
int fp_driver_name(uint16_t port, char *buf, size_t len)
{
	struct rte_eth_dev_info info;
	int ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0)
		return ret;
	snprintf(buf, len, "%s", info.driver_name != NULL ? info.driver_name : "unknown");
	return 0;
}

/*
 * Stops `port`; with `detach`, also closes it and removes its device from its bus (for a vdev:
 * runs the driver's remove, which closes e.g. af_packet's socket), so that the same devargs can
 * be probed again.
 */
int fp_port_release(uint16_t port, int detach)
{
	struct rte_eth_dev_info info;
	struct rte_device *dev = NULL;
	if (rte_eth_dev_info_get(port, &info) == 0)
		dev = info.device;
	int ret = rte_eth_dev_stop(port);
	if (!detach)
		return ret;
	ret = rte_eth_dev_close(port);
	if (dev != NULL) {
		int r = rte_dev_remove(dev);
		if (ret == 0)
			ret = r;
	}
	return ret;
}
