/* error.c: names and messages of the error codes of bg/error.h, generated from BG_ERR_MAP. */
#include <stddef.h>

#include "bg/error.h"

static const struct {
    int code;
    const char *name, *msg;
} errors[] = {{BG_OK, "OK", "success"},
#define BG__ERR_ROW(name, num, msg) {num, #name, msg},
              BG_ERR_MAP(BG__ERR_ROW)
#undef BG__ERR_ROW
};

/* The row of code, or -1 for a code bg never returns. */
static long row(int code) {
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == code)
            return (long)i;
    return -1;
}

const char *bg_strerror(int code) {
    long i = row(code);
    return i < 0 ? "unknown error" : errors[i].msg;
}

const char *bg_err_name(int code) {
    long i = row(code);
    return i < 0 ? "EUNKNOWN" : errors[i].name;
}
