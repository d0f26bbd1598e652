/* Intrusive doubly linked lists: the links live in the element, the list is a head pointer
 * (plus a tail pointer for a queue). Nothing is allocated; removing an element clears its
 * links, so an element can tell whether it is listed (LIST_LINKED) and be put back later.
 *
 * An element type declares its links with LIST_FIELDS(Type, name), which adds the members
 * name_next and name_prev; every macro takes that NAME, so one element can sit on several
 * lists. HEAD (and TAIL) are lvalues of type Type *, an empty list is NULL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define LIST_FIELDS(type, name) type *name##_next, *name##_prev

/* Whether ITEM is on a list of NAME (given that HEAD is that list's head). */
#define LIST_LINKED(name, head, item)                                                 \
        ({                                                                            \
                __typeof__(*(item)) *_li_ = (item);                                   \
                _li_->name##_prev || (head) == _li_;                                  \
        })

/* Puts ITEM first. ITEM must not be on the list. */
#define LIST_PREPEND(name, head, item)                                                \
        do {                                                                          \
                __typeof__(*(item)) **_lh_ = &(head), *_li_ = (item);                 \
                _li_->name##_prev = NULL;                                             \
                _li_->name##_next = *_lh_;                                            \
                if (*_lh_)                                                            \
                        (*_lh_)->name##_prev = _li_;                                  \
                *_lh_ = _li_;                                                         \
        } while (0)

/* Puts ITEM last, walking from HEAD to the end (use the queue form for long lists). */
#define LIST_APPEND(name, head, item)                                                 \
        do {                                                                          \
                __typeof__(*(item)) **_lh_ = &(head), *_li_ = (item), *_lt_ = *_lh_;  \
                _li_->name##_next = NULL;                                             \
                if (!_lt_) {                                                          \
                        _li_->name##_prev = NULL;                                     \
                        *_lh_ = _li_;                                                 \
                        break;                                                        \
                }                                                                     \
                while (_lt_->name##_next)                                             \
                        _lt_ = _lt_->name##_next;                                     \
                _lt_->name##_next = _li_;                                             \
                _li_->name##_prev = _lt_;                                             \
        } while (0)

/* Takes ITEM off the list headed by HEAD and clears its links. ITEM must be on it. */
#define LIST_REMOVE(name, head, item)                                                 \
        do {                                                                          \
                __typeof__(*(item)) **_lh_ = &(head), *_li_ = (item);                 \
                if (_li_->name##_next)                                                \
                        _li_->name##_next->name##_prev = _li_->name##_prev;           \
                if (_li_->name##_prev)                                                \
                        _li_->name##_prev->name##_next = _li_->name##_next;           \
                else                                                                  \
                        *_lh_ = _li_->name##_next;                                    \
                _li_->name##_next = _li_->name##_prev = NULL;                         \
        } while (0)

/* A queue: HEAD and TAIL, appending in constant time. */
#define LIST_QUEUE_APPEND(name, head, tail, item)                                     \
        do {                                                                          \
                __typeof__(*(item)) **_lh_ = &(head), **_lt_ = &(tail), *_li_ = (item); \
                _li_->name##_next = NULL;                                             \
                _li_->name##_prev = *_lt_;                                            \
                if (*_lt_)                                                            \
                        (*_lt_)->name##_next = _li_;                                  \
                else                                                                  \
                        *_lh_ = _li_;                                                 \
                *_lt_ = _li_;                                                         \
        } while (0)

/* Takes ITEM (anywhere) off the queue HEAD/TAIL and clears its links. */
#define LIST_QUEUE_REMOVE(name, head, tail, item)                                     \
        do {                                                                          \
                __typeof__(*(item)) **_lq_ = &(tail), *_lj_ = (item);                 \
                if (*_lq_ == _lj_)                                                    \
                        *_lq_ = _lj_->name##_prev;                                    \
                LIST_REMOVE(name, head, _lj_);                                        \
        } while (0)

/* Takes the first element off the list (a queue: also give TAIL) and returns it, or NULL. */
#define LIST_POP(name, head)                                                          \
        ({                                                                            \
                __typeof__(head) _lp_ = (head);                                       \
                if (_lp_)                                                             \
                        LIST_REMOVE(name, head, _lp_);                                \
                _lp_;                                                                 \
        })
#define LIST_QUEUE_POP(name, head, tail)                                              \
        ({                                                                            \
                __typeof__(head) _lp_ = (head);                                       \
                if (_lp_)                                                             \
                        LIST_QUEUE_REMOVE(name, head, tail, _lp_);                    \
                _lp_;                                                                 \
        })

/* Walks the list. The loop body must not remove I: use LIST_FOREACH_SAFE for that. */
#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)

/* Walks the list; the body may remove (and free) I, N holds the next element. */
#define LIST_FOREACH_SAFE(name, i, n, head)                                           \
        for ((i) = (head); (i) && (((n) = (i)->name##_next), true); (i) = (n))

/* Counts the elements. */
#define LIST_LENGTH(name, head)                                                       \
        ({                                                                            \
                size_t _ln_ = 0;                                                      \
                for (__typeof__(*(head)) *_lx_ = (head); _lx_; _lx_ = _lx_->name##_next) \
                        _ln_++;                                                       \
                _ln_;                                                                 \
        })
