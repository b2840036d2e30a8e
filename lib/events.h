/* Event streams of jobs (Server-Sent Events), for the HTTP API: who
 * watches which job, when each has something to send, and heartbeats.
 * An idle stream costs a few hundred bytes and no thread: it is woken
 * only when its job changes, on a heartbeat, at shutdown, or to end once
 * every stream of its finished job has the terminal event. */
#ifndef OCTO_LIB_EVENTS_H
#define OCTO_LIB_EVENTS_H

#include <octopus/api.h>
#include <octopus/job.h>

typedef struct octo__events octo__events;

/* Renders the event data of a job: its status JSON (release with free()),
 * its seq and whether it is finished. NULL when the job is gone. */
typedef char *(*octo__events_render)(void *payload, const char *job_id, const char *base,
                                     uint64_t *seq, int *finished);

/* Told of every job change, after the streams (on the engine's thread). */
typedef void (*octo__events_hook)(void *payload, const char *job_id, int finished);

/* Takes over the engine's listener. */
int octo__events_new(octo__events **out, octo_engine *engine, uint32_t heartbeat_ms,
                     octo__events_render render, octo__events_hook hook, void *payload);

/* Ends every stream with a final "shutdown" event and wakes it; streams
 * opened later end at once. Idempotent. */
void octo__events_shutdown(octo__events *ev);

/* Frees the registry; every stream must have been freed. NULL-safe. */
void octo__events_free(octo__events *ev);

/* A stream of `job_id`'s events after `last_id` (Last-Event-ID, 0 for
 * all); `base` is copied for the URLs in its events. */
int octo__events_open(octo__events *ev, const char *job_id, const char *base,
                      uint64_t last_id, octo_stream **out);

#endif
