#!/usr/bin/env node
// decode.js: checks OTLP/JSON traces against the official OpenTelemetry
// protobuf definitions and prints their spans, one JSON object per line.
//
// Usage: node decode.js FILE...   (FILE "-": standard input)
//
// Each non-empty line of each FILE must be one TracesData object in the
// OTLP/JSON encoding (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
// traceId/spanId/parentSpanId as lowercase hex (not base64), 64-bit integers
// as decimal strings or numbers, enums as numbers. The line is mapped to the
// protobuf message opentelemetry.proto.trace.v1.TracesData with protobufjs
// code generated from opentelemetry-proto (shipped in
// @opentelemetry/otlp-transformer), encoded to the binary wire format,
// decoded again, and compared with the input: a field the definitions do
// not have, a value of the wrong type or an id of the wrong length makes the
// round trip differ, and the script exits 1 naming the line and the path.
//
// Output, per span: {"resource":{k:v},"scope":{"name","version"},
// "traceId","spanId","parentSpanId","name","kind","startTimeUnixNano",
// "endTimeUnixNano","attributes":{k:v},"status":{"code","message"}}
// with attribute values as plain JSON (int64 as strings, arrays as arrays).
'use strict';

const fs = require('fs');
const path = require('path');
const root = require(path.join(path.dirname(require.resolve('@opentelemetry/otlp-transformer/package.json')),
	'build/src/generated/root.js'));
const TracesData = root.opentelemetry.proto.trace.v1.TracesData;

const ID_LEN = { traceId: 16, spanId: 8, parentSpanId: 8 };

function fail(where, msg) {
	process.stderr.write(`decode.js: ${where}: ${msg}\n`);
	process.exit(1);
}

// hexToBytes: the OTLP/JSON id mapping, strictly: lowercase hex of the
// id's size ("" allowed for parentSpanId).
function hexToBytes(where, key, v) {
	if (typeof v !== 'string') fail(where, `${key} is not a string`);
	if (key === 'parentSpanId' && v === '') return Buffer.alloc(0);
	if (!/^[0-9a-f]*$/.test(v) || v.length !== 2 * ID_LEN[key])
		fail(where, `${key} "${v}" is not ${2 * ID_LEN[key]} lowercase hex digits`);
	return Buffer.from(v, 'hex');
}

// mapIds: a copy of the parsed line with every span's (and link's) ids as bytes.
function mapIds(where, obj) {
	const copy = JSON.parse(JSON.stringify(obj));
	for (const rs of copy.resourceSpans || [])
		for (const ss of rs.scopeSpans || [])
			for (const sp of ss.spans || []) {
				for (const k of Object.keys(ID_LEN))
					if (k in sp) sp[k] = hexToBytes(where, k, sp[k]);
				for (const l of sp.links || [])
					for (const k of ['traceId', 'spanId'])
						if (k in l) l[k] = hexToBytes(where, k, l[k]);
			}
	return copy;
}

// canon: v with bytes as hex, numbers-as-strings kept as strings, for comparison.
function canon(v) {
	if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
	if (Array.isArray(v)) return v.map(canon);
	if (v && typeof v === 'object') {
		const o = {};
		for (const k of Object.keys(v).sort()) o[k] = canon(v[k]);
		return o;
	}
	if (typeof v === 'number' && Number.isInteger(v)) return v;
	return v;
}

// diff: the first path where a and b differ, or null.
function diff(a, b, p) {
	if (typeof a !== typeof b) return `${p} (${JSON.stringify(a)} became ${JSON.stringify(b)})`;
	if (a && typeof a === 'object') {
		const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
		for (const k of keys) {
			if (!(k in b)) return `${p}.${k} (not in the protobuf definition, or of the wrong type)`;
			if (!(k in a)) return `${p}.${k} (added by the round trip)`;
			const d = diff(a[k], b[k], `${p}.${k}`);
			if (d) return d;
		}
		return null;
	}
	return a === b ? null : `${p} (${JSON.stringify(a)} became ${JSON.stringify(b)})`;
}

// normalize: the input with int64 fields as strings and enum/default
// conventions of protobuf's JSON mapping, so it compares with toObject().
function normalize(o) {
	return JSON.parse(JSON.stringify(o), (k, v) => {
		if (['startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano', 'intValue'].includes(k)) return String(v);
		return v;
	});
}

function anyValue(v) {
	if ('stringValue' in v) return v.stringValue;
	if ('intValue' in v) return String(v.intValue);
	if ('boolValue' in v) return v.boolValue;
	if ('doubleValue' in v) return v.doubleValue;
	if ('arrayValue' in v) return (v.arrayValue.values || []).map(anyValue);
	if ('kvlistValue' in v) return attrs(v.kvlistValue.values);
	if ('bytesValue' in v) return Buffer.from(v.bytesValue, 'base64').toString('hex');
	return null;
}

function attrs(list) {
	const o = {};
	for (const kv of list || []) o[kv.key] = anyValue(kv.value || {});
	return o;
}

function decodeLine(where, line) {
	let obj;
	try {
		obj = JSON.parse(line);
	} catch (e) {
		fail(where, `not JSON: ${e.message}`);
	}
	if (!obj || typeof obj !== 'object' || Array.isArray(obj)) fail(where, 'not a JSON object');
	const msg = TracesData.fromObject(mapIds(where, obj));
	const wire = TracesData.encode(msg).finish();
	const back = TracesData.toObject(TracesData.decode(wire), { longs: String, enums: Number, bytes: Buffer });
	const d = diff(canon(normalize(obj)), canon(back), 'TracesData');
	if (d) fail(where, `does not round-trip through the protobuf definitions at ${d}`);
	const out = [];
	for (const rs of back.resourceSpans || []) {
		const resource = attrs(rs.resource && rs.resource.attributes);
		for (const ss of rs.scopeSpans || [])
			for (const sp of ss.spans || [])
				out.push({
					resource,
					scope: ss.scope || {},
					traceId: canon(sp.traceId),
					spanId: canon(sp.spanId),
					parentSpanId: sp.parentSpanId ? canon(sp.parentSpanId) : '',
					name: sp.name,
					kind: sp.kind,
					startTimeUnixNano: sp.startTimeUnixNano,
					endTimeUnixNano: sp.endTimeUnixNano,
					attributes: attrs(sp.attributes),
					status: sp.status || {},
				});
	}
	return out;
}

function main() {
	const files = process.argv.slice(2);
	if (!files.length) {
		process.stderr.write('usage: node decode.js FILE...\n');
		process.exit(100);
	}
	for (const f of files) {
		const text = fs.readFileSync(f === '-' ? 0 : f, 'utf8');
		const lines = text.split('\n');
		if (lines[lines.length - 1] === '') lines.pop();
		lines.forEach((line, i) => {
			if (line === '') fail(`${f}:${i + 1}`, 'empty line');
			for (const s of decodeLine(`${f}:${i + 1}`, line)) process.stdout.write(JSON.stringify(s) + '\n');
		});
	}
}

main();
