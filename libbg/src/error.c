/* error.c: names and messages of the error codes of bg/error.h, generated from BG_ERR_MAP. */
#include "bg/error.h"

const char *bg_strerror(int code) {
    switch (code) {
    case BG_OK:
        return "success";
#define BG__ERR_MSG(name, num, msg)                                                                \
    case num:                                                                                      \
        return msg;
        BG_ERR_MAP(BG__ERR_MSG)
#undef BG__ERR_MSG
    }
    return "unknown error";
}

const char *bg_err_name(int code) {
    switch (code) {
    case BG_OK:
        return "OK";
#define BG__ERR_NAME(name, num, msg)                                                               \
    case num:                                                                                      \
        return #name;
        BG_ERR_MAP(BG__ERR_NAME)
#undef BG__ERR_NAME
    }
    return "EUNKNOWN";
}
