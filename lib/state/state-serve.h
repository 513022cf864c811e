/*
 * state-serve.h - the server side of the state protocol: what vine-state(1)
 * runs on the manager host, answering the requests of a remote backend
 * (state-remote.c) with the local state's operations.
 */
#ifndef VINE_STATE_SERVE_H
#define VINE_STATE_SERVE_H

/*
 * Serve the state at path (a local state; not a URL) on the byte stream
 * in/out until the client closes it: handshake, then the "open" request
 * opens the state (creating it if asked), then every request is answered.
 * Temporary files for streamed result files go in the state's directory.
 * Returns 0 when the client hung up between requests, -1 with a message
 * when the connection or the protocol failed.
 */
int vine_state_serve(const char *path, int in, int out);

#endif
