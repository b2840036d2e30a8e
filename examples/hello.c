/* The smallest libocto program: open a store, write an object, read its
 * size back. Usage: hello DIRECTORY */
#include <stdio.h>

#include <octopus/octopus.h>

int main(int argc, char **argv)
{
	static const char text[] = "hello from libocto\n";
	octo_store *store = NULL;
	octo_object_info info;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
		return 2;
	}
	if ((rc = octo_store_open_local(&store, argv[1])) < 0 ||
	    (rc = octo_store_put(store, "greetings/hello.txt", text, sizeof(text) - 1)) < 0 ||
	    (rc = octo_store_head(store, "greetings/hello.txt", &info)) < 0) {
		fprintf(stderr, "hello: %s: %s\n", octo_strerror(rc), octo_error_last());
		octo_store_free(store);
		return 1;
	}
	printf("libocto %s: stored %llu bytes in %s\n", octo_version(),
	       (unsigned long long)info.size, argv[1]);
	octo_store_free(store);
	return info.size == sizeof(text) - 1 ? 0 : 1;
}
