/* count_records: how many objects a local store lists under a prefix.
 *
 *   count_records DIR PREFIX
 *
 * Opens the store in DIR (following the record log of the octopusd that
 * owns it, if one runs) and prints the number of keys starting with
 * PREFIX, such as the job records "jobs/". Exits non-zero when the store
 * cannot be opened or listed. */
#include <stdio.h>
#include <string.h>

#include <octopus/octopus.h>

typedef struct {
	unsigned long n;
	char last[OCTO_STORE_KEY_MAX + 1]; /* where the next page starts */
} tally;

static int count(const char *key, const octo_object_info *info, void *payload)
{
	tally *t = payload;

	(void)info;
	t->n++;
	snprintf(t->last, sizeof(t->last), "%s", key);
	return 0;
}

int main(int argc, char **argv)
{
	tally t = { 0, "" };
	octo_store *store;
	int more = 1, rc = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: count_records DIR PREFIX\n");
		return 2;
	}
	if (octo_store_open_local(&store, argv[1]) < 0) {
		fprintf(stderr, "count_records: %s\n", octo_error_last());
		return 1;
	}
	while (more && rc == 0)
		rc = octo_store_list(store, argv[2], t.last, 1000, count, &t, &more);
	if (rc < 0)
		fprintf(stderr, "count_records: %s\n", octo_error_last());
	else
		printf("%lu\n", t.n);
	octo_store_free(store);
	return rc < 0;
}
