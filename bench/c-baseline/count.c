/*
 * Minimal C responders for the benchmark's comparisons, libfcgi + hiredis, classic threaded
 * libfcgi (each thread blocks in FCGX_Accept_r and keeps its connection). Built by bench/run
 * with gcc; never used in production. Two modes:
 *
 *   strict     the same one-round-trip semantics as session-fcgi's GET /count: the same Lua
 *              scripts by EVALSHA, 192-bit ids from getrandom, unknown ids never adopted, the
 *              same headers
 *   pipelined  what one would write by hand without the strict check: HINCRBY + EXPIRE on
 *              sid_<id>, pipelined in one round trip. Any well-formed id is adopted (a forged
 *              or expired id becomes a session), there are no timeouts but the TTL, no
 *              rotation, no users: the floor of the work, not the same contract
 *
 * usage: count-c REDIS THREADS SCRIPT_DIR [strict|pipelined]
 *   REDIS: a TCP port on 127.0.0.1, or the absolute path of Redis's Unix socket
 *   (the listening socket on fd 0, from spawn-fcgi)
 */
#include <fcgiapp.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static int redis_port;
static const char *redis_socket; /* a Unix socket path instead of the port */
static int pipelined;

/* The same Lua scripts as session-fcgi (increment.lua and create.lua in bench/scripts, checked equal by a unit test). */
static char *INCREMENT, *CREATE;
static __thread char increment_sha[41], create_sha[41];

static redisContext *connect_redis(void) {
    struct timeval connect_timeout = {0, 200000}, timeout = {0, 500000};
    redisContext *c = redis_socket ? redisConnectUnixWithTimeout(redis_socket, connect_timeout)
                                   : redisConnectWithTimeout("127.0.0.1", redis_port, connect_timeout);
    if (c == NULL || c->err) { if (c) redisFree(c); return NULL; }
    redisSetTimeout(c, timeout);
    if (pipelined) return c;
    /* Learn the script names once per connection (EVAL on NOSCRIPT covers a later flush). */
    const char *sources[2] = {INCREMENT, CREATE};
    char *shas[2] = {increment_sha, create_sha};
    for (int i = 0; i < 2; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", sources[i]};
        size_t lens[3] = {6, 4, strlen(sources[i])};
        redisReply *r = redisCommandArgv(c, 3, argv, lens);
        if (r == NULL) { redisFree(c); return NULL; }
        if (r->type == REDIS_REPLY_STRING && r->len == 40) { memcpy(shas[i], r->str, 40); shas[i][40] = 0; }
        freeReplyObject(r);
    }
    return c;
}

/* EVALSHA with fallback to EVAL on NOSCRIPT. Returns a reply to free, or NULL (context dead). */
static redisReply *run_script(redisContext **cp, const char *sha, const char *source, int argc, const char **argv, size_t *lens) {
    if (*cp == NULL && (*cp = connect_redis()) == NULL) return NULL;
    argv[0] = "EVALSHA"; lens[0] = 7; argv[1] = sha; lens[1] = 40;
    redisReply *r = redisCommandArgv(*cp, argc, argv, lens);
    if (r == NULL) { redisFree(*cp); *cp = NULL; return NULL; }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL"; lens[0] = 4; argv[1] = source; lens[1] = strlen(source);
        r = redisCommandArgv(*cp, argc, argv, lens);
        if (r == NULL) { redisFree(*cp); *cp = NULL; return NULL; }
    }
    return r;
}

static char *read_file(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(66); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = calloc(1, (size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) { perror(path); exit(66); }
    fclose(f);
    return text;
}

static int valid_id(const char *s, size_t n) {
    if (n != 32) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')) return 0;
    }
    return 1;
}

static void new_id(char out[33]) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char bytes[24];
    size_t filled = 0;
    while (filled < sizeof bytes) {
        ssize_t n = getrandom(bytes + filled, sizeof bytes - filled, 0);
        if (n > 0) filled += (size_t)n;
    }
    for (int i = 0, o = 0; i < 24; i += 3) {
        unsigned v = (unsigned)bytes[i] << 16 | (unsigned)bytes[i + 1] << 8 | bytes[i + 2];
        out[o++] = alphabet[(v >> 18) & 63]; out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63]; out[o++] = alphabet[v & 63];
    }
    out[32] = 0;
}

/* First well-formed sid in the Cookie header, copied into id. */
static int find_sid(const char *cookie, char id[33]) {
    if (!cookie) return 0;
    const char *p = cookie;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';') p++;
        const char *name = p;
        while (*p && *p != '=' && *p != ';') p++;
        if (*p != '=') continue;
        size_t name_len = (size_t)(p - name);
        while (name_len && (name[name_len - 1] == ' ')) name_len--;
        const char *value = ++p;
        while (*p && *p != ';') p++;
        size_t value_len = (size_t)(p - value);
        while (value_len && value[value_len - 1] == ' ') value_len--;
        if (name_len == 3 && memcmp(name, "sid", 3) == 0 && valid_id(value, value_len)) {
            memcpy(id, value, 32); id[32] = 0; return 1;
        }
    }
    return 0;
}

/* The cookie is only sent for a new session (as session-fcgi does: never re-sent for the id
 * the request presented). */
static void respond(FCGX_Request *req, int status, const char *id, int is_new, long long count) {
    char body[64], head[512];
    int body_len = snprintf(body, sizeof body, status == 200 ? "{\"count\":%lld}" : "{\"error\":\"session store unavailable\"}", count);
    int head_len;
    if (status == 200 && is_new)
        head_len = snprintf(head, sizeof head,
            "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            "Set-Cookie: sid=%s; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax\r\nContent-Length: %d\r\n\r\n", id, body_len);
    else if (status == 200)
        head_len = snprintf(head, sizeof head,
            "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            "Content-Length: %d\r\n\r\n", body_len);
    else
        head_len = snprintf(head, sizeof head,
            "Status: 503 Service Unavailable\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            "Retry-After: 1\r\nContent-Length: %d\r\n\r\n", body_len);
    FCGX_PutStr(head, head_len, req->out);
    FCGX_PutStr(body, body_len, req->out);
}

/* HINCRBY sid_<id> count 1 and EXPIRE sid_<id> 1800 in one round trip. Returns the count, or
 * -1 when Redis failed (the context is then dropped). */
static long long increment_pipelined(redisContext **cp, const char *key) {
    if (*cp == NULL && (*cp = connect_redis()) == NULL) return -1;
    const char *incr[4] = {"HINCRBY", key, "count", "1"};
    size_t incr_lens[4] = {7, 36, 5, 1};
    const char *expire[3] = {"EXPIRE", key, "1800"};
    size_t expire_lens[3] = {6, 36, 4};
    redisAppendCommandArgv(*cp, 4, incr, incr_lens);
    redisAppendCommandArgv(*cp, 3, expire, expire_lens);
    redisReply *r1 = NULL, *r2 = NULL;
    long long count = -1;
    if (redisGetReply(*cp, (void **)&r1) == REDIS_OK && redisGetReply(*cp, (void **)&r2) == REDIS_OK
        && r1 && r1->type == REDIS_REPLY_INTEGER) count = r1->integer;
    if (r1) freeReplyObject(r1);
    if (r2) freeReplyObject(r2);
    if (r1 == NULL || r2 == NULL) { redisFree(*cp); *cp = NULL; }
    return count;
}

static void *worker_pipelined(void *arg) {
    (void)arg;
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, 0);
    redisContext *c = NULL;
    while (FCGX_Accept_r(&req) >= 0) {
        char id[33], key[40];
        int is_new = 0;
        if (!find_sid(FCGX_GetParam("HTTP_COOKIE", req.envp), id)) { new_id(id); is_new = 1; }
        snprintf(key, sizeof key, "sid_%s", id);
        long long count = increment_pipelined(&c, key);
        respond(&req, count >= 0 ? 200 : 503, id, is_new, count);
        FCGX_Finish_r(&req);
    }
    return NULL;
}

static void *worker(void *arg) {
    (void)arg;
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, 0);
    redisContext *c = NULL;
    while (FCGX_Accept_r(&req) >= 0) {
        char id[33], key[40];
        const char *argv[11]; size_t lens[11];
        long long count = 0;
        int ok = 0, is_new = 0;
        if (find_sid(FCGX_GetParam("HTTP_COOKIE", req.envp), id)) {
            snprintf(key, sizeof key, "sid_%s", id);
            argv[2] = "1"; lens[2] = 1; argv[3] = key; lens[3] = 36;
            /* ARGV idle, field, amount, touch interval (session-fcgi's default for a 1800 s idle timeout) */
            argv[4] = "1800"; lens[4] = 4; argv[5] = "count"; lens[5] = 5; argv[6] = "1"; lens[6] = 1;
            argv[7] = "60"; lens[7] = 2;
            redisReply *r = run_script(&c, increment_sha, INCREMENT, 8, argv, lens);
            if (r) {
                /* {1, value} found; {0} missing; {2, id} alias, {4} superseded (none here) */
                if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[0]->integer == 1) {
                    count = r->element[1]->integer; ok = 1;
                } else if (r->type == REDIS_REPLY_ARRAY) ok = 2;
                freeReplyObject(r);
            }
        } else ok = 2;
        if (ok == 2) {
            ok = 0;
            is_new = 1;
            new_id(id);
            snprintf(key, sizeof key, "sid_%s", id);
            argv[2] = "1"; lens[2] = 1; argv[3] = key; lens[3] = 36;
            argv[4] = "1800"; lens[4] = 4; argv[5] = "43200"; lens[5] = 5; argv[6] = "64"; lens[6] = 2; argv[7] = "16384"; lens[7] = 5;
            argv[8] = "0"; lens[8] = 1; /* values not sealed */
            argv[9] = "count"; lens[9] = 5; argv[10] = "1"; lens[10] = 1;
            redisReply *r = run_script(&c, create_sha, CREATE, 11, argv, lens);
            /* {1, now} created */
            if (r) {
                if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->integer == 1) { count = 1; ok = 1; }
                freeReplyObject(r);
            }
        }
        respond(&req, ok ? 200 : 503, id, is_new, count);
        FCGX_Finish_r(&req);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: count-c REDIS THREADS SCRIPT_DIR [strict|pipelined]\n"); return 64; }
    if (argv[1][0] == '/') redis_socket = argv[1]; else redis_port = atoi(argv[1]);
    if (argc == 5 && strcmp(argv[4], "pipelined") == 0) pipelined = 1;
    else if (argc == 5 && strcmp(argv[4], "strict") != 0) { fprintf(stderr, "mode: strict or pipelined\n"); return 64; }
    int threads = atoi(argv[2]);
    INCREMENT = read_file(argv[3], "increment.lua");
    CREATE = read_file(argv[3], "create.lua");
    signal(SIGPIPE, SIG_IGN);
    FCGX_Init();
    pthread_t tid;
    void *(*entry)(void *) = pipelined ? worker_pipelined : worker;
    for (int i = 1; i < threads; i++) pthread_create(&tid, NULL, entry, NULL);
    entry(NULL);
    return 0;
}
