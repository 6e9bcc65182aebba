// nats_bench: the W1, W2 and W3 workloads of ibsm-bench against a NATS
// JetStream server, for tests/bench/compare-nats.sh (which builds it with
// `cc ... -lnats` against Debian's libnats-dev and starts the server).
//
//   nats_bench --workload=W1|W2|W3 --url=tls://127.0.0.1:PORT
//              --ca=FILE --cert=FILE --key=FILE [--messages=N] [--size=BYTES]
//              [--subscribers=K] [--rate=PER_SEC] [--seconds=T]
//
// Each run deletes and re-creates one file-storage stream (BENCH, subject
// bench.x, one replica) so that runs do not see each other's messages.
// W1  1 publisher, N asynchronous JetStream publishes, at most 256 without a
//     publish ack (PublishAsync.MaxPending); msgs_per_sec = acked / seconds.
// W2  K durable push consumers (one connection each, explicit acks, every
//     message acked with natsMsg_Ack) each receive all N while one
//     publisher publishes them as in W1; msgs_per_sec = N*K / seconds.
// W3  one durable push consumer; R messages/s for T s, paced; each payload
//     carries its CLOCK_MONOTONIC send time; latency = delivery - send.
// It prints exactly one JSON line in ibsm-bench's shape (keys that do not
// apply are null; broker_rss_kib is null: the script measures the server).
// Every wait has a deadline (2 minutes without progress): exit 2 instead of
// hanging. Single-threaded main; counters shared with the library's
// callback threads are C11 atomics.
#define _GNU_SOURCE
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALL_SECONDS 120
#define MAX_SUBSCRIBERS 64
#define STREAM "BENCH"
#define SUBJECT "bench.x"

static const char* workload = "";
static const char *url = "", *ca = "", *cert = "", *key = "";
static long long messages = 100000, size = 1024, subscribers = 4,
                 rate = 2000, seconds = 10;

static atomic_llong acked, publish_errors;
static atomic_llong received[MAX_SUBSCRIBERS];
static int64_t* latencies_ns;  // W3: one slot per message, by sequence
static atomic_llong latency_count;

static void die(const char* what, natsStatus s) {
  fprintf(stderr, "nats_bench: %s: %s\n", what,
          s == NATS_OK ? "failed" : natsStatus_GetText(s));
  const char* last = nats_GetLastError(NULL);
  if (last != NULL && *last) fprintf(stderr, "nats_bench: %s\n", last);
  exit(2);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long long parse_count(const char* flag, const char* v, long long max) {
  char* end;
  long long n = strtoll(v, &end, 10);
  if (*v == 0 || *end != 0 || n < 1 || n > max) {
    fprintf(stderr, "nats_bench: %s must be an integer in 1..%lld\n", flag,
            max);
    exit(1);
  }
  return n;
}

static void parse_flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* eq = strchr(a, '=');
    if (strncmp(a, "--", 2) != 0 || eq == NULL) {
      fprintf(stderr, "nats_bench: bad argument %s (want --flag=value)\n", a);
      exit(1);
    }
    size_t n = (size_t)(eq - a);
    const char* v = eq + 1;
#define IS(name) (n == strlen(name) && strncmp(a, name, n) == 0)
    if (IS("--workload")) workload = v;
    else if (IS("--url")) url = v;
    else if (IS("--ca")) ca = v;
    else if (IS("--cert")) cert = v;
    else if (IS("--key")) key = v;
    else if (IS("--messages")) messages = parse_count(a, v, 100000000);
    else if (IS("--size")) size = parse_count(a, v, 1 << 20);
    else if (IS("--subscribers"))
      subscribers = parse_count(a, v, MAX_SUBSCRIBERS);
    else if (IS("--rate")) rate = parse_count(a, v, 1000000);
    else if (IS("--seconds")) seconds = parse_count(a, v, 3600);
    else {
      fprintf(stderr, "nats_bench: unknown flag %.*s\n", (int)n, a);
      exit(1);
    }
#undef IS
  }
  if (strcmp(workload, "W1") && strcmp(workload, "W2") &&
      strcmp(workload, "W3")) {
    fprintf(stderr, "nats_bench: --workload must be W1, W2 or W3\n");
    exit(1);
  }
  if (!*url || !*ca || !*cert || !*key) {
    fprintf(stderr, "nats_bench: --url, --ca, --cert and --key are needed\n");
    exit(1);
  }
  if (size < 8) size = 8;  // W3 needs room for the send time
}

static natsConnection* connect_tls(void) {
  natsOptions* opts;
  natsConnection* nc;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url);
  if (s == NATS_OK) s = natsOptions_SetSecure(opts, true);
  if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(opts, ca);
  if (s == NATS_OK) s = natsOptions_LoadCertificatesChain(opts, cert, key);
  if (s == NATS_OK) s = natsOptions_SetExpectedHostname(opts, "localhost");
  if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(opts, 1000000);
  if (s != NATS_OK) die("TLS options", s);
  s = natsConnection_Connect(&nc, opts);
  if (s != NATS_OK) die(url, s);
  natsOptions_Destroy(opts);
  return nc;
}

static jsCtx* jetstream(natsConnection* nc) {
  jsOptions o;
  jsCtx* js;
  jsOptions_Init(&o);
  o.PublishAsync.MaxPending = 256;
  o.PublishAsync.AckHandler = NULL;
  natsStatus s = natsConnection_JetStream(&js, nc, &o);
  if (s != NATS_OK) die("JetStream context", s);
  return js;
}

static void on_pub_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae,
                       void* closure) {
  (void)js;
  (void)closure;
  if (pa != NULL) atomic_fetch_add(&acked, 1);
  if (pae != NULL) atomic_fetch_add(&publish_errors, 1);
  natsMsg_Destroy(msg);
}

static jsCtx* publisher(natsConnection* nc) {
  jsOptions o;
  jsCtx* js;
  jsOptions_Init(&o);
  o.PublishAsync.MaxPending = 256;
  o.PublishAsync.AckHandler = on_pub_ack;
  o.PublishAsync.StallWait = STALL_SECONDS * 1000;
  natsStatus s = natsConnection_JetStream(&js, nc, &o);
  if (s != NATS_OK) die("JetStream publisher", s);
  return js;
}

static void fresh_stream(jsCtx* js) {
  jsErrCode jerr = 0;
  js_DeleteStream(js, STREAM, NULL, &jerr);  // absent on the first run
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {SUBJECT};
  cfg.Name = STREAM;
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = 1;
  jsStreamInfo* si = NULL;
  natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
  if (s != NATS_OK) die("add stream " STREAM, s);
  jsStreamInfo_Destroy(si);
}

// Subscriber i's handler: counts, records W3 latency, acks.
static void on_message(natsConnection* nc, natsSubscription* sub, natsMsg* msg,
                       void* closure) {
  (void)nc;
  (void)sub;
  const long long i = (long long)(intptr_t)closure;
  if (latencies_ns != NULL && natsMsg_GetDataLength(msg) >= 8) {
    int64_t sent;
    memcpy(&sent, natsMsg_GetData(msg), sizeof sent);
    long long slot = atomic_fetch_add(&latency_count, 1);
    if (slot < rate * seconds) latencies_ns[slot] = now_ns() - sent;
  }
  natsMsg_Ack(msg, NULL);
  atomic_fetch_add(&received[i], 1);
  natsMsg_Destroy(msg);
}

static natsSubscription* durable_consumer(jsCtx* js, long long i) {
  char durable[32];
  snprintf(durable, sizeof durable, "bench-sub%lld", i);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = STREAM;
  so.Config.Durable = durable;
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.DeliverPolicy = js_DeliverAll;
  so.Config.MaxAckPending = 65536;
  so.ManualAck = true;
  natsSubscription* sub;
  jsErrCode jerr = 0;
  natsStatus s = js_Subscribe(&sub, js, SUBJECT, on_message,
                              (void*)(intptr_t)i, NULL, &so, &jerr);
  if (s != NATS_OK) die("durable consumer", s);
  natsSubscription_SetPendingLimits(sub, -1, -1);
  return sub;
}

// Publishes n messages (W3: paced at `rate`, stamped with the send time).
static void publish_all(jsCtx* js, long long n, int paced) {
  char* payload = malloc((size_t)size);
  memset(payload, 'x', (size_t)size);
  const int64_t t0 = now_ns();
  for (long long i = 0; i < n; ++i) {
    if (paced) {
      const int64_t due = t0 + (int64_t)(i * (1e9 / (double)rate));
      int64_t wait = due - now_ns();
      if (wait > 0) {
        struct timespec ts = {wait / 1000000000, wait % 1000000000};
        nanosleep(&ts, NULL);
      }
      const int64_t sent = now_ns();
      memcpy(payload, &sent, sizeof sent);
    }
    natsStatus s = js_PublishAsync(js, SUBJECT, payload, (int)size, NULL);
    if (s != NATS_OK) die("publish", s);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = STALL_SECONDS * 1000;
  natsStatus s = js_PublishAsyncComplete(js, &po);
  if (s != NATS_OK) die("waiting for publish acks", s);
  free(payload);
  if (atomic_load(&publish_errors) > 0) {
    fprintf(stderr, "nats_bench: %lld publishes were refused\n",
            (long long)atomic_load(&publish_errors));
    exit(2);
  }
}

// Waits until every subscriber received n, failing after STALL_SECONDS
// without progress.
static void wait_received(long long n) {
  long long last_total = -1;
  int64_t last_progress = now_ns();
  for (;;) {
    long long total = 0, least = n;
    for (long long i = 0; i < subscribers; ++i) {
      long long r = atomic_load(&received[i]);
      total += r;
      if (r < least) least = r;
    }
    if (least >= n) return;
    if (total != last_total) {
      last_total = total;
      last_progress = now_ns();
    } else if (now_ns() - last_progress > (int64_t)STALL_SECONDS * 1000000000) {
      fprintf(stderr, "nats_bench: no delivery for %d s (%lld of %lld)\n",
              STALL_SECONDS, total, n * subscribers);
      exit(2);
    }
    nats_Sleep(1);
  }
}

static int cmp_i64(const void* a, const void* b) {
  int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  parse_flags(argc, argv);
  natsConnection* nc = connect_tls();
  jsCtx* admin = jetstream(nc);
  fresh_stream(admin);
  jsCtx* js = publisher(nc);

  double msgs_per_sec = 0;
  long long reported = messages;
  char p50[32] = "null", p99[32] = "null", p999[32] = "null",
       delivered[32] = "null";
  natsConnection* sub_conn[MAX_SUBSCRIBERS] = {0};
  natsSubscription* subs[MAX_SUBSCRIBERS] = {0};
  jsCtx* sub_js[MAX_SUBSCRIBERS] = {0};

  if (strcmp(workload, "W1") == 0) {
    const int64_t t0 = now_ns();
    publish_all(js, messages, 0);
    msgs_per_sec = atomic_load(&acked) / ((now_ns() - t0) / 1e9);
  } else {
    if (strcmp(workload, "W3") == 0) {
      subscribers = 1;
      reported = rate * seconds;
      latencies_ns = calloc((size_t)reported, sizeof(int64_t));
    }
    for (long long i = 0; i < subscribers; ++i) {
      sub_conn[i] = connect_tls();
      sub_js[i] = jetstream(sub_conn[i]);
      subs[i] = durable_consumer(sub_js[i], i);
    }
    const int64_t t0 = now_ns();
    publish_all(js, reported, latencies_ns != NULL);
    wait_received(reported);
    const double secs = (now_ns() - t0) / 1e9;
    msgs_per_sec = (double)reported * subscribers / secs;
    long long least = reported;
    for (long long i = 0; i < subscribers; ++i)
      if (atomic_load(&received[i]) < least) least = atomic_load(&received[i]);
    snprintf(delivered, sizeof delivered, "%lld", least);
    if (latencies_ns != NULL) {
      long long n = atomic_load(&latency_count);
      if (n > reported) n = reported;
      qsort(latencies_ns, (size_t)n, sizeof(int64_t), cmp_i64);
      // The same index rule as ibsm-bench's SetPercentiles.
#define PCT(q, buf)                                                    \
  do {                                                                 \
    long long k = (long long)((q) * (double)n);                        \
    if (k > n - 1) k = n - 1;                                          \
    snprintf(buf, sizeof buf, "%lld", (long long)(latencies_ns[k] / 1000)); \
  } while (0)
      PCT(0.50, p50);
      PCT(0.99, p99);
      PCT(0.999, p999);
#undef PCT
    }
  }
  printf(
      "{\"workload\":\"%s\",\"messages\":%lld,\"size\":%lld,"
      "\"msgs_per_sec\":%.1f,\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,"
      "\"broker_rss_kib\":null,\"signed\":false,\"topology\":\"single\","
      "\"payload\":\"repeated\",\"delivered\":%s,\"system\":\"nats\"}\n",
      workload, reported, size, msgs_per_sec, p50, p99, p999, delivered);
  fflush(stdout);
  for (long long i = 0; i < subscribers; ++i) {
    if (subs[i] == NULL) continue;
    natsSubscription_Unsubscribe(subs[i]);
    natsSubscription_Destroy(subs[i]);
    jsCtx_Destroy(sub_js[i]);
    natsConnection_Destroy(sub_conn[i]);
  }
  jsCtx_Destroy(js);
  jsCtx_Destroy(admin);
  natsConnection_Destroy(nc);
  return 0;
}
