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
'use strict';

const S3rver = require('s3rver');

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
