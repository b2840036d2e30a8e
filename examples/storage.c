/* The storage API, the same calls on either backend: put an object, read
 * it back, and hand out a presigned URL for it.
 * Usage: storage DIRECTORY
 *        S3_BUCKET_NAME=b S3_ENDPOINT=http://minio:9000 \
 *        S3_ACCESS_KEY_ID=... S3_SECRET_ACCESS_KEY=... storage */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <octopus/octopus.h>

static int open_store(octo_store **store, const char *dir)
{
	octo_s3_options s3 = OCTO_S3_OPTIONS_INIT;

	if (!getenv("S3_BUCKET_NAME"))
		return octo_store_open_local(store, dir);
	s3.bucket = getenv("S3_BUCKET_NAME");
	s3.endpoint = getenv("S3_ENDPOINT");
	s3.access_key_id = getenv("S3_ACCESS_KEY_ID");
	s3.secret_access_key = getenv("S3_SECRET_ACCESS_KEY");
	return octo_store_open_s3(store, &s3);
}

int main(int argc, char **argv)
{
	static const char text[] = "an object stored through libocto\n";
	octo_store *store = NULL;
	char *data = NULL, *url = NULL;
	size_t len = 0;
	int rc;

	if (argc != 2 && !getenv("S3_BUCKET_NAME")) {
		fprintf(stderr, "usage: %s DIRECTORY (or set S3_BUCKET_NAME and S3_*)\n", argv[0]);
		return 2;
	}
	if ((rc = open_store(&store, argv[1])) < 0 ||
	    (rc = octo_store_put(store, "examples/object.txt", text, sizeof(text) - 1)) < 0 ||
	    (rc = octo_store_get(store, "examples/object.txt", &data, &len)) < 0)
		goto out;
	printf("%s store: read back %zu bytes: %s", octo_store_backend(store), len, data);
	rc = octo_store_presign(store, "examples/object.txt", 600, &url);
	if (rc == 0)
		printf("presigned for 10 minutes: %s\n", url);
	else if (rc == OCTO_EUNSUPPORTED) /* a directory has no URLs of its own */
		printf("no presigned URL: %s\n", octo_error_last());
	rc = rc == OCTO_EUNSUPPORTED ? 0 : rc;
	if (rc == 0 && (len != sizeof(text) - 1 || memcmp(data, text, len) != 0))
		rc = OCTO_EIO;
out:
	if (rc < 0)
		fprintf(stderr, "storage: %s: %s\n", octo_strerror(rc), octo_error_last());
	octo_free(data);
	octo_free(url);
	octo_store_free(store);
	return rc < 0 ? 1 : 0;
}
