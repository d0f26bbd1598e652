/* sd-event timer helpers: one way to arm, re-arm and disarm a one-shot CLOCK_MONOTONIC timer
 * kept in a sd_event_source pointer, instead of each daemon writing add-or-move again. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/* Moves the existing time source S to fire USEC after now (or at the absolute time WHEN on its
 * clock, for the _at form) and turns it on as a one-shot. For a timer that re-arms itself from
 * its own callback. 0 or a negative errno (-EINVAL for S NULL). */
int okg_event_source_rearm(sd_event_source *s, uint64_t usec);
int okg_event_source_rearm_at(sd_event_source *s, uint64_t when);

/* Arms the timer *S to fire USEC from now (okg_timer_arm) or at WHEN on CLOCK_MONOTONIC
 * (okg_timer_arm_at). The first call (*S NULL) adds a one-shot source on E with ACCURACY (0:
 * sd-event's default), CB, USERDATA and DESCRIPTION (NULL: none) and stores it in *S; the
 * caller owns that reference (drop it with sd_event_source_disable_unref()). Later calls move
 * that same source and turn it back on; CB, USERDATA, ACCURACY and DESCRIPTION are then the
 * ones it was created with (unref the source first to change them). 0 or a negative errno; *S
 * stays NULL when adding fails. */
int okg_timer_arm(sd_event *e, sd_event_source **s, uint64_t usec, uint64_t accuracy,
                  sd_event_time_handler_t cb, void *userdata, const char *description);
int okg_timer_arm_at(sd_event *e, sd_event_source **s, uint64_t when, uint64_t accuracy,
                     sd_event_time_handler_t cb, void *userdata, const char *description);

/* Makes the defer source *S run CB once on the next loop iteration: the first call (*S NULL)
 * adds it on E with CB, USERDATA and DESCRIPTION (NULL: none), later calls turn the same
 * source on again (a no-op while it is still pending), so that several triggers in one
 * iteration make one run. 0 or a negative errno; *S stays NULL when adding fails. */
int okg_defer_arm(sd_event *e, sd_event_source **s, sd_event_handler_t cb, void *userdata,
                  const char *description);

/* Turns the timer S off if there is one (it stays allocated for a later arm). 0 or a negative
 * errno. */
int okg_timer_disarm(sd_event_source *s);

/* Whether S exists and is on (armed, not yet fired). */
bool okg_timer_armed(sd_event_source *s);
