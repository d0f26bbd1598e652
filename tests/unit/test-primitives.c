/* Shared primitives of libokg-common: intrusive lists (okg-list.h), enum name tables
 * (okg-string-table.h), json-c cleanups (okg-json.h) and timer arming (okg-event.h). */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <signal.h>

#include "log.h"
#include "okg-event.h"
#include "okg-json.h"
#include "okg-list.h"
#include "okg-signal.h"
#include "okg-string-table.h"
#include "okg-test.h"

#define SAFETY_TIMEOUT_USEC (30 * USEC_PER_SEC)

typedef struct Item Item;
struct Item {
        int v;
        LIST_FIELDS(Item, items);
        LIST_FIELDS(Item, odd);
};

/* The values of the list in order, as a string of digits, checking the back links. */
static const char *order(Item *head) {
        static char buf[32];
        size_t n = 0;
        Item *i, *prev = NULL;

        LIST_FOREACH(items, i, head) {
                ASSERT_TRUE(i->items_prev == prev);
                buf[n++] = (char) ('0' + i->v);
                prev = i;
        }
        buf[n] = 0;
        return buf;
}

static void test_list(void) {
        Item it[6] = {};
        Item *head = NULL, *i, *n;

        for (int k = 0; k < 6; k++)
                it[k].v = k;
        ASSERT_STREQ(order(head), "");
        ASSERT_EQ(LIST_LENGTH(items, head), 0);

        LIST_PREPEND(items, head, &it[1]);
        LIST_PREPEND(items, head, &it[0]);
        LIST_APPEND(items, head, &it[2]);
        LIST_APPEND(items, head, &it[3]);
        ASSERT_STREQ(order(head), "0123");
        ASSERT_EQ(LIST_LENGTH(items, head), 4);
        Item *const chead = head; /* a const head pointer, as in a const owner */
        ASSERT_EQ(LIST_LENGTH(items, chead), 4);
        ASSERT_TRUE(LIST_LINKED(items, head, &it[0]));
        ASSERT_TRUE(LIST_LINKED(items, head, &it[3]));
        ASSERT_TRUE(!LIST_LINKED(items, head, &it[4]));

        /* Middle, first, last: links cleared, the element can go back on. */
        LIST_REMOVE(items, head, &it[1]);
        ASSERT_STREQ(order(head), "023");
        ASSERT_TRUE(!it[1].items_next && !it[1].items_prev);
        ASSERT_TRUE(!LIST_LINKED(items, head, &it[1]));
        LIST_REMOVE(items, head, &it[0]);
        ASSERT_STREQ(order(head), "23");
        LIST_REMOVE(items, head, &it[3]);
        ASSERT_STREQ(order(head), "2");
        LIST_PREPEND(items, head, &it[1]);
        ASSERT_STREQ(order(head), "12");
        LIST_REMOVE(items, head, &it[2]);
        LIST_REMOVE(items, head, &it[1]);
        ASSERT_TRUE(head == NULL);
        LIST_APPEND(items, head, &it[5]);
        ASSERT_STREQ(order(head), "5");

        /* One element on two lists. */
        Item *odd = NULL;
        for (int k = 0; k < 5; k++) {
                LIST_APPEND(items, head, &it[k]);
                if (k % 2)
                        LIST_PREPEND(odd, odd, &it[k]);
        }
        ASSERT_STREQ(order(head), "501234");
        ASSERT_EQ(LIST_LENGTH(odd, odd), 2);
        ASSERT_TRUE(odd == &it[3] && it[3].odd_next == &it[1]);
        LIST_REMOVE(odd, odd, &it[3]);
        ASSERT_STREQ(order(head), "501234");
        ASSERT_TRUE(odd == &it[1]);

        /* Removing while walking. */
        LIST_FOREACH_SAFE(items, i, n, head)
                if (i->v % 2 == 0)
                        LIST_REMOVE(items, head, i);
        ASSERT_STREQ(order(head), "513");
        ASSERT_TRUE(LIST_POP(items, head) == &it[5]);
        ASSERT_TRUE(LIST_POP(items, head) == &it[1]);
        ASSERT_TRUE(LIST_POP(items, head) == &it[3]);
        ASSERT_TRUE(LIST_POP(items, head) == NULL);
}

static void test_queue(void) {
        Item it[4] = {};
        Item *head = NULL, *tail = NULL;

        for (int k = 0; k < 4; k++) {
                it[k].v = k;
                LIST_QUEUE_APPEND(items, head, tail, &it[k]);
        }
        ASSERT_STREQ(order(head), "0123");
        ASSERT_TRUE(tail == &it[3]);

        /* The last one: the tail moves back. */
        LIST_QUEUE_REMOVE(items, head, tail, &it[3]);
        ASSERT_TRUE(tail == &it[2]);
        LIST_QUEUE_REMOVE(items, head, tail, &it[1]);
        ASSERT_STREQ(order(head), "02");
        ASSERT_TRUE(tail == &it[2]);
        LIST_QUEUE_APPEND(items, head, tail, &it[3]);
        ASSERT_STREQ(order(head), "023");

        ASSERT_TRUE(LIST_QUEUE_POP(items, head, tail) == &it[0]);
        ASSERT_TRUE(LIST_QUEUE_POP(items, head, tail) == &it[2]);
        ASSERT_TRUE(head == &it[3] && tail == &it[3]);
        ASSERT_TRUE(LIST_QUEUE_POP(items, head, tail) == &it[3]);
        ASSERT_TRUE(head == NULL && tail == NULL);
        ASSERT_TRUE(LIST_QUEUE_POP(items, head, tail) == NULL);

        /* Emptied, it works again. */
        LIST_QUEUE_APPEND(items, head, tail, &it[1]);
        ASSERT_TRUE(head == &it[1] && tail == &it[1]);
}

typedef enum Colour {
        COLOUR_RED,
        COLOUR_GREEN,
        COLOUR_UNNAMED,
        COLOUR_BLUE,
        _COLOUR_MAX,
        _COLOUR_INVALID = -EINVAL,
} Colour;

static const char *const colour_table[_COLOUR_MAX] = {
        [COLOUR_RED] = "red",
        [COLOUR_GREEN] = "green",
        [COLOUR_BLUE] = "Blue",
};
DEFINE_PRIVATE_STRING_TABLE_LOOKUP(colour, Colour);

typedef enum Shape { SHAPE_ROUND, SHAPE_SQUARE, _SHAPE_MAX, _SHAPE_INVALID = -EINVAL } Shape;
static const char *const shape_table[_SHAPE_MAX] = {
        [SHAPE_ROUND] = "round",
        [SHAPE_SQUARE] = "square",
};
DEFINE_PRIVATE_STRING_TABLE_LOOKUP_FROM_STRING(shape, Shape);

static void test_string_table(void) {
        ASSERT_STREQ(colour_to_string(COLOUR_RED), "red");
        ASSERT_STREQ(colour_to_string(COLOUR_BLUE), "Blue");
        ASSERT_TRUE(colour_to_string(COLOUR_UNNAMED) == NULL);
        ASSERT_TRUE(colour_to_string(_COLOUR_MAX) == NULL);
        ASSERT_TRUE(colour_to_string(_COLOUR_INVALID) == NULL);
        ASSERT_TRUE(colour_to_string((Colour) 1000) == NULL);

        ASSERT_EQ(colour_from_string("green"), COLOUR_GREEN);
        ASSERT_EQ(colour_from_string("Blue"), COLOUR_BLUE);
        ASSERT_EQ(colour_from_string("blue"), _COLOUR_INVALID);
        ASSERT_EQ(colour_from_string(""), _COLOUR_INVALID);
        ASSERT_EQ(colour_from_string("greenish"), _COLOUR_INVALID);
        ASSERT_EQ(colour_from_string(NULL), _COLOUR_INVALID);

        ASSERT_EQ(shape_from_string("square"), SHAPE_SQUARE);
        ASSERT_EQ(shape_from_string("Square"), _SHAPE_INVALID);

        ASSERT_EQ(okg_string_table_lookup(colour_table, ELEMENTSOF(colour_table), "BLUE", true),
                  COLOUR_BLUE);
        ASSERT_EQ(okg_string_table_lookup(colour_table, ELEMENTSOF(colour_table), "RED", false),
                  -EINVAL);
        ASSERT_TRUE(okg_string_table_get(colour_table, ELEMENTSOF(colour_table), -1) == NULL);
        ASSERT_STREQ(okg_string_table_get(colour_table, ELEMENTSOF(colour_table), 1), "green");
}

/* libokg-common's own tables, now over the string-table helpers: names, aliases, numbers. */
static void test_common_tables(void) {
        static const struct {
                const char *name;
                int level, target;
        } cases[] = {
                { "warning", LOG_WARNING, -EINVAL },
                { "emerg", LOG_EMERG, -EINVAL },
                { "error", LOG_ERR, -EINVAL },
                { "6", LOG_INFO, -EINVAL },
                { "8", -EINVAL, -EINVAL },
                { "Debug", -EINVAL, -EINVAL },
                { "", -EINVAL, -EINVAL },
                { NULL, -EINVAL, -EINVAL },
                { "null", -EINVAL, LOG_TARGET_NULL },
                { "console", -EINVAL, LOG_TARGET_CONSOLE },
                { "journal", -EINVAL, LOG_TARGET_KMSG },
                { "syslog-or-kmsg", -EINVAL, LOG_TARGET_KMSG },
                { "Console", -EINVAL, -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ASSERT_EQ(log_level_from_string(cases[i].name), cases[i].level);
                ASSERT_EQ(log_target_from_string(cases[i].name), cases[i].target);
        }
        ASSERT_STREQ(log_level_to_string(LOG_ERR), "err");
        ASSERT_STREQ(log_level_to_string(LOG_DEBUG), "debug");
        ASSERT_TRUE(!log_level_to_string(-1) && !log_level_to_string(8));
        ASSERT_STREQ(log_target_to_string(LOG_TARGET_KMSG), "kmsg");
        ASSERT_TRUE(!log_target_to_string(_LOG_TARGET_MAX));
        ASSERT_TRUE(!log_target_to_string(_LOG_TARGET_INVALID));

        /* Signal names: one table serves both directions. */
        ASSERT_EQ(okg_signal_from_string("sigterm"), SIGTERM);
        ASSERT_EQ(okg_signal_from_string("SYS"), SIGSYS);
        ASSERT_EQ(okg_signal_from_string("HUPP"), -EINVAL);
        ASSERT_EQ(okg_signal_from_string("VTALRMVTALRMVTALRM"), -EINVAL);
        ASSERT_EQ(okg_signal_from_string("SIGVTALRMXXXXXXXXXXXXXXXXXXXX"), -EINVAL);
        ASSERT_STREQ(okg_signal_to_string(SIGHUP), "SIGHUP");
        ASSERT_STREQ(okg_signal_to_string(SIGSYS), "SIGSYS");
        ASSERT_TRUE(!okg_signal_to_string(-SIGHUP));
        ASSERT_TRUE(!okg_signal_to_string(SIGRTMAX));
        for (int sig = 1; sig < SIGRTMIN; sig++) {
                const char *name = okg_signal_to_string(sig);
                if (name)
                        ASSERT_EQ(okg_signal_from_string(name), sig);
        }
}

static void test_json_cleanup(void) {
        /* Under ASan a missing put shows up as a leak. */
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        _cleanup_(json_object_putp) json_object *none = NULL;
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new();

        ASSERT_TRUE(o && tok && !none);
        json_object_object_add(o, "k", json_object_new_int(1));
        _cleanup_(json_object_putp) json_object *parsed = json_tokener_parse_ex(tok, "[1]", 3);
        ASSERT_TRUE(parsed && json_object_is_type(parsed, json_type_array));
}

typedef struct Timers {
        sd_event *event;
        sd_event_source *t, *never;
        unsigned fired;
        uint64_t fired_at;
} Timers;

static int on_never(sd_event_source *s, uint64_t usec, void *userdata) {
        Timers *t = userdata;
        t->fired += 100;
        return 0;
}

/* Re-arms itself twice from its own callback. */
static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Timers *t = userdata;

        ASSERT_TRUE(s == t->t);
        ASSERT_TRUE(!okg_timer_armed(s));
        t->fired++;
        t->fired_at = usec;
        if (t->fired < 3) {
                ASSERT_EQ(okg_event_source_rearm(s, USEC_PER_MSEC), 0);
                ASSERT_TRUE(okg_timer_armed(s));
        }
        return 0;
}

static void run_until_fired(Timers *t) {
        while (t->fired < 3)
                ASSERT_TRUE(sd_event_run(t->event, UINT64_MAX) >= 0);
}

static int on_safety(sd_event_source *s, uint64_t usec, void *userdata) {
        fprintf(stderr, "the timers did not fire\n");
        exit(1);
}

static void test_timer(void) {
        Timers t = {};
        sd_event_source *keep;
        uint64_t now;

        ASSERT_EQ(sd_event_new(&t.event), 0);
        ASSERT_EQ(sd_event_add_time_relative(t.event, NULL, CLOCK_MONOTONIC, SAFETY_TIMEOUT_USEC,
                                             0, on_safety, NULL),
                  0);
        ASSERT_TRUE(!okg_timer_armed(NULL));
        ASSERT_EQ(okg_timer_disarm(NULL), 0);
        ASSERT_EQ(okg_event_source_rearm(NULL, 0), -EINVAL);
        ASSERT_EQ(okg_event_source_rearm_at(NULL, 0), -EINVAL);

        /* First arm creates; a second arm moves the same source (the callback stays). */
        ASSERT_EQ(okg_timer_arm(t.event, &t.t, SAFETY_TIMEOUT_USEC, 0, on_tick, &t, "tick"), 0);
        ASSERT_TRUE(t.t && okg_timer_armed(t.t));
        keep = t.t;
        ASSERT_EQ(okg_timer_arm(t.event, &t.t, 0, 0, on_never, NULL, "other"), 0);
        ASSERT_TRUE(t.t == keep);
        const char *d = NULL;
        ASSERT_EQ(sd_event_source_get_description(t.t, &d), 0);
        ASSERT_STREQ(d, "tick");

        /* A disarmed timer does not fire; the never timer is armed and disarmed too. */
        ASSERT_EQ(okg_timer_arm(t.event, &t.never, 0, 0, on_never, &t, NULL), 0);
        ASSERT_EQ(okg_timer_disarm(t.never), 0);
        ASSERT_TRUE(!okg_timer_armed(t.never));

        run_until_fired(&t);
        ASSERT_EQ(t.fired, 3);
        ASSERT_TRUE(!okg_timer_armed(t.t));

        /* The absolute form: fires at or after the time asked for. */
        ASSERT_EQ(sd_event_now(t.event, CLOCK_MONOTONIC, &now), 0);
        t.fired = 2;
        ASSERT_EQ(okg_timer_arm_at(t.event, &t.t, now + USEC_PER_MSEC, 0, NULL, NULL, NULL), 0);
        ASSERT_TRUE(t.t == keep);
        run_until_fired(&t);
        ASSERT_EQ(t.fired, 3);
        ASSERT_TRUE(t.fired_at >= now + USEC_PER_MSEC);

        /* A fresh absolute timer. */
        sd_event_source *abs = NULL;
        ASSERT_EQ(okg_timer_arm_at(t.event, &abs, now, 0, on_never, &t, "abs"), 0);
        ASSERT_TRUE(okg_timer_armed(abs));
        ASSERT_EQ(okg_event_source_rearm_at(abs, now + 1), 0);
        ASSERT_EQ(okg_timer_disarm(abs), 0);

        sd_event_source_unref(abs);
        sd_event_source_unref(t.t);
        sd_event_source_unref(t.never);
        sd_event_unref(t.event);
}

static int on_defer(sd_event_source *s, void *userdata) {
        unsigned *runs = userdata;
        (*runs)++;
        return 0;
}

/* Three triggers before the loop runs make one run; a trigger after it makes another. */
static void test_defer(void) {
        sd_event *e = NULL;
        sd_event_source *s = NULL;
        unsigned runs = 0;

        ASSERT_EQ(sd_event_new(&e), 0);
        for (int i = 0; i < 3; i++)
                ASSERT_EQ(okg_defer_arm(e, &s, on_defer, &runs, "defer"), 0);
        ASSERT_TRUE(okg_timer_armed(s));
        while (runs == 0)
                ASSERT_TRUE(sd_event_run(e, SAFETY_TIMEOUT_USEC) > 0);
        ASSERT_TRUE(!okg_timer_armed(s));
        ASSERT_EQ(sd_event_run(e, 0), 0);
        ASSERT_EQ(runs, 1);
        ASSERT_EQ(okg_defer_arm(e, &s, NULL, NULL, NULL), 0);
        ASSERT_TRUE(sd_event_run(e, SAFETY_TIMEOUT_USEC) > 0);
        ASSERT_EQ(runs, 2);
        sd_event_source_unref(s);
        sd_event_unref(e);
}

int main(void) {
        test_list();
        test_queue();
        test_string_table();
        test_common_tables();
        test_json_cleanup();
        test_timer();
        test_defer();
        return 0;
}
