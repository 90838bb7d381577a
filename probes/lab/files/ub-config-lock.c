/*
 * ub-config-lock: serialise libunbound's ub_ctx_config() (LD_PRELOAD for OpenDKIM).
 *
 * OpenDKIM 2.11.0~beta2 (Debian 12) reads its ResolverConfiguration with ub_ctx_config() for
 * every message (the VBR handle), from many threads at once; unbound's config parser (flex)
 * is not reentrant, and concurrent messages crash the filter ("fatal flex scanner internal
 * error"). Upstream fixed it after that release ("Protect calls to ub_ctx_config() with a
 * mutex", OpenDKIM issue #14); this does the same from outside. Built into the lab's
 * postfix and sendmail images by probes/lab/image.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>

struct ub_ctx;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int ub_ctx_config(struct ub_ctx *ctx, const char *fname)
{
	static int (*real)(struct ub_ctx *, const char *);
	int status;

	pthread_mutex_lock(&lock);
	if (real == NULL)
		real = (int (*)(struct ub_ctx *, const char *)) dlsym(RTLD_NEXT, "ub_ctx_config");
	status = real != NULL ? real(ctx, fname) : -1;
	pthread_mutex_unlock(&lock);
	return status;
}
