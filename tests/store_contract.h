/* The storage contract: the behaviour every backend owes octo_store's
 * callers, checked with the same assertions whichever backend is behind
 * the handle. A suite adds one TCase per backend it can reach. */
#ifndef OCTO_TEST_STORE_CONTRACT_H
#define OCTO_TEST_STORE_CONTRACT_H

#include <check.h>

#include <octopus/octopus.h>

typedef struct {
	const char *name;  /* the TCase's name, e.g. "contract_local" */
	/* A fresh handle on the store under test; fails the test when it
	 * cannot. Stores may be shared between tests (S3: one bucket): every
	 * test keeps to keys under its own prefix. */
	octo_store *(*open)(void);
	/* Frees the handle and whatever open() made for it. */
	void (*close)(octo_store *store);
	/* 1: octo_store_presign() must give URLs that work over HTTP;
	 * 0: it must fail with OCTO_EUNSUPPORTED. */
	int presign;
	/* The longest key the backend writes: OCTO_STORE_KEY_MAX, or less
	 * where a library it uses cannot handle that (S3 over libs3: 1023).
	 * Longer valid keys must fail to be written with OCTO_EINVAL. */
	size_t key_max;
} store_contract;

/* Returns a TCase running the whole contract against `contract`, which
 * must outlive the suite's run. The caller may add fixtures (such as one
 * starting a server) before adding it to a suite. At most 8 per process. */
TCase *store_contract_tcase(const store_contract *contract);

#endif
