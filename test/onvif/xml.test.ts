import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { readFault } from '../../src/onvif/soap.js';
import { attr, child, decodeXmlBytes, descendant, descendants, parseXml, path, serializeXml, textAt, tryParseXml, XmlParseError } from '../../src/onvif/xml.js';
import { renderDotTemplate } from '../helpers/onvif-responder.js';

const here = dirname(fileURLToPath(import.meta.url));
const upstream = join(here, '..', 'fixtures', 'onvif', 'agsh-onvif-v0.x');
const quirks = join(here, '..', 'fixtures', 'onvif', 'quirks');

const fixtureFiles = readdirSync(upstream).filter((f) => f !== 'LICENSE');
const TEMPLATE = /\{\{/;

describe('xml reader on every upstream fixture file', () => {
  it('finds all 78 files', () => {
    assert.equal(fixtureFiles.length, 78);
  });

  for (const file of fixtureFiles) {
    it(`${file}: parses to a SOAP envelope (templates after rendering) or fails with a clear XmlParseError`, () => {
      const raw = readFileSync(join(upstream, file));
      const result = tryParseXml(raw);
      const isTemplate = TEMPLATE.test(raw.toString('utf8'));
      if (!result.ok) {
        // Only the raw PullMessages template (a `<` inside `{{? Math.random() < 0.5 }}`) is unreadable
        // as stored; the error must say where.
        assert.equal(file, 'PullMessages.xml');
        assert.ok(result.error instanceof XmlParseError);
        assert.match(result.error.message, /line \d+, column \d+/);
      } else {
        assert.equal(result.root.name, 'Envelope');
        assert.ok(child(result.root, 'Body'), 'has a Body');
      }
      if (isTemplate) {
        const rendered = renderDotTemplate(raw.toString('utf8'), { hostname: '127.0.0.1', port: 10101, pullPointUrl: '/onvif/subscription?Idx=6' });
        const again = parseXml(rendered);
        assert.equal(again.name, 'Envelope');
        assert.doesNotMatch(rendered, /\{\{/);
      }
    });
  }

  it('reads the values the fixture README promises', () => {
    const read = (file: string) => parseXml(readFileSync(join(upstream, file)));
    const info = child(child(read('GetDeviceInformation.xml'), 'Body'), 'GetDeviceInformationResponse');
    assert.equal(textAt(info, 'Manufacturer'), 'Mockup Manufacturer');
    assert.equal(textAt(info, 'Model'), 'Mockup Model');
    assert.equal(textAt(info, 'FirmwareVersion'), 'Mockup_15_14_13');

    const stream = descendant(read('GetStreamUri.xml'), 'MediaUri');
    assert.equal(textAt(stream, 'Uri'), 'rtsp://192.168.68.111/h264main');
    // `&amp;` decoded, and the undeclared SOAP-ENV prefix tolerated.
    const snapshot = read('GetSnapshotUri.xml');
    assert.equal(textAt(descendant(snapshot, 'MediaUri'), 'Uri'), 'http://192.168.68.111/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1');
    assert.equal(snapshot.namespace, undefined, 'undeclared prefix resolves to no namespace');

    const profiles = descendants(read('GetProfiles.xml'), 'Profiles');
    assert.equal(profiles.length, 1);
    assert.equal(attr(profiles[0], 'token'), 'main');
    assert.equal(textAt(profiles[0], 'VideoEncoderConfiguration', 'Resolution', 'Width'), '1920');

    const probe = read('Probe.xml');
    assert.equal(probe.namespace, 'http://www.w3.org/2003/05/soap-envelope');
    assert.equal(textAt(path(probe, 'Body', 'ProbeMatches', 'ProbeMatch'), 'Types'), 'dn:NetworkVideoTransmitter tds:Device');

    const fault = readFault(descendant(read('Error.xml'), 'Fault')!);
    assert.equal(fault.code, 'SOAP_FAULT');
    assert.match(fault.detail, /fault code/);
    assert.match(fault.detail, /fault reason/);
  });

  it('parses the quirk fixtures', () => {
    for (const file of readdirSync(quirks)) {
      if (!file.endsWith('.xml')) continue;
      const result = tryParseXml(readFileSync(join(quirks, file)));
      assert.ok(result.ok, `${file}: ${result.ok ? '' : result.error.message}`);
    }
  });
});

describe('xml reader edge cases', () => {
  it('ignores prefixes for matching and resolves declared namespaces', () => {
    const root = parseXml('<a:Envelope xmlns:a="urn:x"><b:Body xmlns:b="urn:y"><Thing z:k="v" xmlns="urn:d">t</Thing></b:Body></a:Envelope>');
    const thing = path(root, 'Body', 'Thing')!;
    assert.equal(thing.namespace, 'urn:d');
    assert.equal(attr(thing, 'k'), 'v');
    assert.equal(child(root, 'Body')!.namespace, 'urn:y');
  });

  it('serializes reference parameters back with their namespaces (echoed as WS-Addressing headers)', () => {
    const root = parseXml(
      '<a:ReferenceParameters xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:dom0="http://www.axis.com/2009/event">' +
        '<dom0:SubscriptionId kind="x&amp;y">42 &lt;b&gt;</dom0:SubscriptionId></a:ReferenceParameters>',
    );
    assert.equal(serializeXml(root.children[0]!), '<dom0:SubscriptionId xmlns:dom0="http://www.axis.com/2009/event" kind="x&amp;y">42 &lt;b&gt;</dom0:SubscriptionId>');
    assert.equal(parseXml(serializeXml(root)).children[0]!.text, '42 <b>');
  });

  it('decodes entities, character references and CDATA; keeps unknown entities literally', () => {
    const root = parseXml('<r>a&lt;b&gt;&amp;&#65;&#x42;&nbsp;<![CDATA[<raw&>]]></r>');
    assert.equal(root.text, 'a<b>&AB&nbsp;<raw&>');
  });

  it('reads "utf-16" declared ASCII, UTF-8 BOM, real UTF-16 LE, and NUL padding after the root', () => {
    assert.equal(parseXml(Buffer.from('<?xml version="1.0" encoding="utf-16"?><r>x</r>')).text, 'x');
    assert.equal(parseXml(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<r>é</r>')])).text, 'é');
    assert.equal(parseXml(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<r>y</r>', 'utf16le')])).text, 'y');
    assert.equal(parseXml(Buffer.concat([Buffer.from('<r>z</r>'), Buffer.alloc(16)])).text, 'z');
    assert.equal(decodeXmlBytes(Buffer.from('<r/>', 'utf16le')), '<r/>');
  });

  it('fails with XmlParseError, never anything else, on broken input', () => {
    const broken = [
      '',
      'hello',
      '<a><b></a>',
      '<a>',
      '<a attr="x></a>',
      '<!-- only a comment',
      '<a/><b/>x',
      '<<<>>>',
      '\u0000\u0001\u0002',
      '<a>' + '<b>'.repeat(300) + '</b>'.repeat(300) + '</a>',
      '<?xml version=”1.0”',
    ];
    for (const input of broken) {
      const result = tryParseXml(input);
      if (input === '<a/><b/>x') {
        // Everything after the root element is ignored (a tolerated trailer).
        assert.ok(result.ok);
        continue;
      }
      assert.equal(result.ok, false, JSON.stringify(input.slice(0, 30)));
      assert.ok(!result.ok && result.error instanceof XmlParseError);
    }
    assert.throws(() => parseXml('<a><b></a>'), (error: unknown) => error instanceof XmlParseError && /does not match/.test(error.message));
  });

  it('survives random bytes without throwing anything but XmlParseError', () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const alphabet = '<>/="\' ?!-[]abc:&;#x\n';
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const len = Math.floor(random() * 60);
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(random() * alphabet.length)];
      const result = tryParseXml(s);
      if (!result.ok) assert.ok(result.error instanceof XmlParseError);
    }
  });
});
