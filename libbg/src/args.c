/* args.c: a growable argument vector for redisCommandArgv, so commands are always sent with
 * explicit lengths and user data never meets a format string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_int.h"

void bg__args_init(bg__args *a) {
    memset(a, 0, sizeof *a);
}

void bg__args_reset(bg__args *a) {
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    a->argc = 0;
    a->oom = 0;
}

void bg__args_free(bg__args *a) {
    bg__args_reset(a);
    free(a->argv);
    free(a->lens);
    bg__args_init(a);
}

void bg__args_add(bg__args *a, const char *s, size_t len) {
    if (a->argc == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        char **argv = realloc(a->argv, sizeof *argv * (size_t)cap);
        if (argv)
            a->argv = argv;
        size_t *lens = realloc(a->lens, sizeof *lens * (size_t)cap);
        if (lens)
            a->lens = lens;
        if (!argv || !lens) {
            a->oom = 1;
            return;
        }
        a->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        a->oom = 1;
        return;
    }
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    a->argv[a->argc] = copy;
    a->lens[a->argc] = len;
    a->argc++;
}

void bg__args_str(bg__args *a, const char *s) {
    bg__args_add(a, s, strlen(s));
}

void bg__args_ll(bg__args *a, long long v) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    bg__args_add(a, buf, (size_t)n);
}

void bg__args_strs(bg__args *a, int n, const char **s) {
    for (int i = 0; i < n; i++)
        bg__args_str(a, s[i]);
}
