// The S3 server the tests run against: s3rver on loopback, signature
// checks on, bucket "downloads" created at start.
//
//   node server.js DATA_DIR [PORT]    prints "listening PORT" when ready
//
// One adapter sits in front of s3rver. For bucket-level requests (list,
// bucket head) libs3 signs the resource "/bucket/", as the AWS Signature
// V2 documentation specifies; s3rver computes "/bucket", as aws-sdk-js
// signs. The adapter presents such a request to s3rver in its virtual-host
// form, for which s3rver computes "/bucket/". Signatures are still checked
// with the real secret; object requests pass through untouched.
//
// A second adapter gives s3rver the atomic PUT of S3: s3rver truncates an
// object and streams the new bytes into it, so a concurrent GET may read
// a torn object and an upload cut short (a client killed mid-request)
// leaves a truncated one. S3 replaces an object only once its upload is
// complete. Here an object is written to a temporary file and renamed
// over the old one when, and only when, all its bytes arrived.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Transform } = require('stream');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const tmpPath = `${objectPath}.upload-${crypto.randomBytes(8).toString('hex')}`;
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const md5 = crypto.createHash('md5');
  let size = 0;
  try {
    await new Promise((resolve, reject) => {
      const out = fs.createWriteStream(tmpPath);
      out.on('error', reject).on('finish', resolve);
      if (Buffer.isBuffer(object.content)) {
        md5.update(object.content);
        size = object.content.length;
        out.end(object.content);
        return;
      }
      object.content
        .on('error', reject)
        .on('aborted', () => reject(new Error('upload aborted')))
        .pipe(new Transform({
          transform(chunk, encoding, done) {
            md5.update(chunk, encoding);
            size += chunk.length;
            done(null, chunk);
          },
        }))
        .pipe(out);
    });
    await fs.promises.rename(tmpPath, objectPath);
  } catch (err) {
    await fs.promises.rm(tmpPath, { force: true });
    throw err;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

const [dir, portArg] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node server.js DATA_DIR [PORT]');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(portArg || 0),
  directory: dir,
  silent: true,
  configureBuckets: [{ name: 'downloads', configs: [] }],
});

server.middleware.unshift(async (ctx, next) => {
  const m = /^\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/?$/.exec(ctx.path);
  if (m) {
    ctx.request.header.host = m[1];
    ctx.path = '/';
    ctx.mountPath = '/';
  }
  await next();
});

server.run().then(({ port }) => {
  console.log(`listening ${port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close().then(() => process.exit(0)));
}
