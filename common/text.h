/* text.h: turning bytes read from Redis into text that is safe to print: on a terminal (control
 * characters escaped, long values cut with an ellipsis), in JSON (valid UTF-8), and times in
 * ISO 8601. Any of these bytes may have been written by a program other than bg. */
#ifndef BG_COMMON_TEXT_H
#define BG_COMMON_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A new string (the caller frees it) holding s (len bytes, any bytes) readable on one line:
 * printable characters as they are; \n, \r, \t and a backslash as \n, \r, \t and \\; every
 * other control character (C0, DEL, C1) and every byte that is not part of valid UTF-8 as
 * \xNN. With width > 0 the result is cut to at most width characters, the last of them "…"
 * when anything was cut. NULL s gives "-". Returns NULL only when out of memory. */
char *text_escape(const char *s, size_t len, size_t width);

/* A JSON string of s (len bytes) with each byte that is not valid UTF-8 replaced by U+FFFD,
 * NULs kept (as \u0000); JSON null for NULL s. NULL only when out of memory. */
json_t *text_json(const char *s, size_t len);

/* Writes ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into buf (at least 32
 * bytes). */
void text_iso_ms(int64_t ms, char *buf, size_t len);

#endif
