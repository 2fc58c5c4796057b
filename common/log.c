/* log.c: the programs' log sink: one line an event on standard error, as text
 * (docs/operations.md#logs) or as one JSON object a line. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bg_common.h"
#include "text.h"

static const char level_letter[] = {'D', 'I', 'W', 'E'};
static const char *const level_name[] = {"debug", "info", "warn", "error"};

static void iso_now(char *buf, size_t len) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Adds the event's job fields to a JSON line, each under its own name (docs/operations.md#logs). */
static int add_fields(json_t *o, const bg_log_fields *f) {
    const struct {
        const char *name, *value;
    } s[] = {{"job", f->job},
             {"attempt", f->attempt},
             {"cls", f->cls},
             {"que", f->queue},
             {"err", f->err}};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (s[i].value &&
            json_object_set_new(o, s[i].name, text_json(s[i].value, strlen(s[i].value))))
            return -1;
    if (f->ms >= 0 && json_object_set_new(o, "ms", json_real(f->ms)))
        return -1;
    return 0;
}

static void json_line(const char *when, bg_log_level level, const char *role, const char *msg,
                      const bg_log_fields *fields) {
    /* Bytes that are not UTF-8 (a foreign class name, say) become U+FFFD: jansson refuses to
     * write a string that is not valid UTF-8, and the line would be lost. */
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "time", when, "level", level_name[level], "role", role);
    json_t *m = text_json(msg, strlen(msg));
    char *line = NULL;
    if (o && m && json_object_set_new(o, "msg", m) == 0) {
        m = NULL;
        if (!fields || add_fields(o, fields) == 0)
            line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    }
    json_decref(m);
    if (line) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
    json_decref(o);
}

static void text_line(const char *when, bg_log_level level, const char *role, const char *msg) {
    /* One line an event, whatever the message holds (a command's stderr, a class name a
     * producer wrote with a newline): control characters are written as escapes. */
    size_t len = strlen(msg), o = 0;
    char *text = malloc(len * 4 + 1);
    for (size_t i = 0; text && i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '\n' || c == '\r') {
            text[o++] = '\\';
            text[o++] = c == '\n' ? 'n' : 'r';
        } else if (c < 0x20 && c != '\t') {
            o += (size_t)sprintf(text + o, "\\x%02x", c);
        } else {
            text[o++] = (char)c;
        }
    }
    if (text)
        text[o] = '\0';
    /* One fprintf per line: stdio locks the stream, so lines from fibers never interleave. */
    fprintf(stderr, "%s %c %s: %s\n", when, level_letter[level], role, text ? text : msg);
    free(text);
}

void bgc_log_event(void *userdata, bg_log_level level, const char *role, const char *msg,
                   const bg_log_fields *fields) {
    const bgc_log_config *cfg = userdata;
    char when[40];
    if ((int)level < 0 || level > BG_LOG_ERROR)
        level = BG_LOG_ERROR;
    iso_now(when, sizeof when);
    if (cfg && cfg->json)
        json_line(when, level, role, msg, fields);
    else
        text_line(when, level, role, msg);
}

void bgc_log_sink(void *userdata, bg_log_level level, const char *role, const char *msg) {
    bgc_log_event(userdata, level, role, msg, NULL);
}

bg_logger bgc_logger(bgc_log_config *cfg) {
    bg_logger l;
    l.fn = bgc_log_sink;
    l.userdata = cfg;
    l.level = cfg->level;
    l.event = bgc_log_event;
    return l;
}

int bgc_parse_log_format(const char *s, bgc_log_config *cfg) {
    if (strcmp(s, "text") == 0)
        cfg->json = 0;
    else if (strcmp(s, "json") == 0)
        cfg->json = 1;
    else
        return -1;
    return 0;
}
