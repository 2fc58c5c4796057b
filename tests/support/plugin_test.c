/* plugin_test.c: a plugin the end-to-end tests load with bg-worker -p. It registers
 * test.echo (writes the job's fields and arg to the file named by $BG_TEST_OUT, one job a
 * line), test.fail (fails with err "Plugin::Error"), test.wait (waits until cancelled) and
 * test.stubborn (ignores cancellation for 60 s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bg/bg.h"

static void nap(void) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int echo(const bg_job *job, bg_error *err, void *ud) {
    const char *path = getenv("BG_TEST_OUT");
    size_t len;
    const char *arg = bg_job_arg(job, &len);
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f) {
        bg_error_set(err, "IOError", "cannot open $BG_TEST_OUT");
        return -1;
    }
    fprintf(f, "%s %s %s %s %d %s ", bg_job_id(job), bg_job_attempt_id(job), bg_job_class(job),
            bg_job_queue(job), bg_job_attempt(job), (const char *)ud);
    fwrite(arg, 1, len, f);
    fputc('\n', f);
    fclose(f);
    return 0;
}

static int fail(const bg_job *job, bg_error *err, void *ud) {
    (void)ud;
    bg_error_set(err, "Plugin::Error", "failed on attempt %d", bg_job_attempt(job));
    return -1;
}

static int wait_cancel(const bg_job *job, bg_error *err, void *ud) {
    (void)err;
    (void)ud;
    while (!bg_job_cancelled(job))
        nap();
    return -1;
}

static int stubborn(const bg_job *job, bg_error *err, void *ud) {
    (void)job;
    (void)err;
    (void)ud;
    for (int i = 0; i < 6000; i++)
        nap();
    return 0;
}

int bg_plugin_init(bg_registry *reg);

int bg_plugin_init(bg_registry *reg) {
    static char tag[] = "from-plugin";
    if (bg_registry_add(reg, "test.echo", echo, tag) != BG_OK ||
        bg_registry_add(reg, "test.fail", fail, NULL) != BG_OK ||
        bg_registry_add(reg, "test.wait", wait_cancel, NULL) != BG_OK ||
        bg_registry_add(reg, "test.stubborn", stubborn, NULL) != BG_OK)
        return 1;
    return 0;
}
