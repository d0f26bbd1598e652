/* sd-event timer helpers (see okg-event.h). */
#include <errno.h>
#include <time.h>

#include "okg-event.h"

static int rearm(sd_event_source *s, bool relative, uint64_t usec) {
        int r;

        if (!s)
                return -EINVAL;
        r = relative ? sd_event_source_set_time_relative(s, usec) : sd_event_source_set_time(s, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int okg_event_source_rearm(sd_event_source *s, uint64_t usec) {
        return rearm(s, true, usec);
}

int okg_event_source_rearm_at(sd_event_source *s, uint64_t when) {
        return rearm(s, false, when);
}

static int timer_add(sd_event *e, sd_event_source **s, bool relative, uint64_t usec,
                     uint64_t accuracy, sd_event_time_handler_t cb, void *userdata,
                     const char *description) {
        sd_event_source *n = NULL;
        int r;

        r = relative ? sd_event_add_time_relative(e, &n, CLOCK_MONOTONIC, usec, accuracy, cb,
                                                  userdata)
                     : sd_event_add_time(e, &n, CLOCK_MONOTONIC, usec, accuracy, cb, userdata);
        if (r < 0)
                return r;
        if (description)
                (void) sd_event_source_set_description(n, description);
        *s = n;
        return 0;
}

int okg_timer_arm(sd_event *e, sd_event_source **s, uint64_t usec, uint64_t accuracy,
                  sd_event_time_handler_t cb, void *userdata, const char *description) {
        if (*s)
                return okg_event_source_rearm(*s, usec);
        return timer_add(e, s, true, usec, accuracy, cb, userdata, description);
}

int okg_timer_arm_at(sd_event *e, sd_event_source **s, uint64_t when, uint64_t accuracy,
                     sd_event_time_handler_t cb, void *userdata, const char *description) {
        if (*s)
                return okg_event_source_rearm_at(*s, when);
        return timer_add(e, s, false, when, accuracy, cb, userdata, description);
}

int okg_defer_arm(sd_event *e, sd_event_source **s, sd_event_handler_t cb, void *userdata,
                  const char *description) {
        sd_event_source *n = NULL;
        int r;

        if (*s)
                return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
        r = sd_event_add_defer(e, &n, cb, userdata);
        if (r < 0)
                return r;
        if (description)
                (void) sd_event_source_set_description(n, description);
        *s = n;
        return 0;
}

int okg_timer_disarm(sd_event_source *s) {
        if (!s)
                return 0;
        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

bool okg_timer_armed(sd_event_source *s) {
        int enabled = SD_EVENT_OFF;

        if (!s || sd_event_source_get_enabled(s, &enabled) < 0)
                return false;
        return enabled != SD_EVENT_OFF;
}
