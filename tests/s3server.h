/* A real S3 server for the tests: s3rver (tests/s3/server.js) on a free
 * loopback port with its own data directory and the bucket "downloads". */
#ifndef OCTO_TEST_S3SERVER_H
#define OCTO_TEST_S3SERVER_H

#include <sys/types.h>

#define TS3_ACCESS_KEY "S3RVER"
#define TS3_SECRET_KEY "S3RVER"
#define TS3_BUCKET "downloads"

typedef struct {
	pid_t pid;
	int port;
	char dir[256];
	char endpoint[64]; /* http://127.0.0.1:PORT */
} ts3_server;

/* 1 when $OCTO_S3_SERVER names a script whose npm packages are installed. */
int ts3_available(void);

/* Starts the server (fresh data dir, any free port) and waits until it
 * listens. Fails the test when it cannot. */
void ts3_start(ts3_server *srv);

/* Stops it (SIGTERM, then waits); the data dir stays for ts3_restart(). */
void ts3_stop(ts3_server *srv);

/* Starts it again on the same port and data dir. */
void ts3_restart(ts3_server *srv);

/* Stops it and removes its data dir. */
void ts3_destroy(ts3_server *srv);

#endif
