/* listing.h: what `bg-cli failed` and `bg-cli dead` share: their options and how a list of
 * failures is printed, as a table or as JSON. */
#ifndef BG_CLI_LISTING_H
#define BG_CLI_LISTING_H

#include "cli.h"

/* The default and the largest --limit. */
#define LISTING_LIMIT 20
#define LISTING_LIMIT_MAX 10000

/* Takes --limit's value into *limit; returns 0, or CLI_EXIT_USAGE after reporting it. */
int listing_limit(const cli_cmd *self, const char *arg, long long *limit);

/* Prints the list, newest first: with json a one-line object {"<key>": [...]} (key "failed"
 * or "dead"), else the table job queue class err msg when, or the line empty_line when the list
 * is empty. Then reports bg_failures_warning(), if any, on stderr. Returns the exit status:
 * 1 after a warning or when out of memory, else 0. */
int listing_print(const cli_cmd *self, const bg_failures *f, const char *key,
                  const char *empty_line, int json);

#endif
