#!/usr/bin/env node
// receiver.js: a test OTLP/HTTP receiver on 127.0.0.1.
//
// Usage: node receiver.js PORT_FILE OUT_DIR [STATUS]
//
// Listens on 127.0.0.1 on a free port and writes the port to PORT_FILE
// once listening. Each request is saved as OUT_DIR/request-N.json
// ({"method","url","httpVersion","headers","body"}, body as UTF-8 text)
// and answered with STATUS (default 200) and the JSON body "{}" (an empty
// ExportTraceServiceResponse). Runs until killed.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const [portFile, outDir, statusArg] = process.argv.slice(2);
if (!portFile || !outDir) {
	process.stderr.write('usage: node receiver.js PORT_FILE OUT_DIR [STATUS]\n');
	process.exit(100);
}
const status = Number(statusArg || 200);
let n = 0;

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		n += 1;
		const rec = {
			method: req.method,
			url: req.url,
			httpVersion: req.httpVersion,
			headers: req.headers,
			body: Buffer.concat(chunks).toString('utf8'),
		};
		const file = path.join(outDir, `request-${n}.json`);
		fs.writeFileSync(file + '.tmp', JSON.stringify(rec));
		fs.renameSync(file + '.tmp', file);
		res.writeHead(status, { 'Content-Type': 'application/json' });
		res.end(status >= 200 && status < 300 ? '{}' : '{"code":3,"message":"refused by the test receiver"}');
	});
});

server.listen(0, '127.0.0.1', () => {
	fs.writeFileSync(portFile + '.tmp', String(server.address().port) + '\n');
	fs.renameSync(portFile + '.tmp', portFile);
});
